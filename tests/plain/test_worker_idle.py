"""A daemon worker between jobs: it hands the last job's memory back after RELEASE_AFTER_S,
and while compile_ahead has work it ticks it about every AHEAD_POLL_S, telling it whether a
job waits.  The worker runs in this process on a real Server (bound on loopback, not
serving); the jobs it runs and compile_ahead's work are stand-ins (what they do is tested in
the daemon and compile_ahead tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from deepdream import accel, server
from deepdream import worker as workers
from deepdream.engine import compile_ahead
from deepdream.jobs import Job

from tests.support.daemon import free_port
from tests.support.jobs import wait_until


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[workers.Worker]:
    srv = server.Server(server.ServeOptions(port=free_port(), devices=("cpu",)))
    w = srv.workers[0]
    ran: list[Job] = []
    monkeypatch.setattr(w, "_run", lambda job, out: ran.append(job))
    w.ran = ran  # type: ignore[attr-defined]
    try:
        yield w
    finally:
        srv.queue.close()
        w.join(10)
        srv._close()


def _job(n: int) -> Job:
    return Job(b"peer", str(n), None, None, 1, 1, memoryview(b""))  # type: ignore[arg-type]


def test_idle_worker_releases_memory_once_after_a_job(
        worker: workers.Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    released = threading.Event()
    calls: list[float] = []
    monkeypatch.setattr(workers, "RELEASE_AFTER_S", 0.3)
    monkeypatch.setattr(accel, "release_memory",
                        lambda: (calls.append(time.monotonic()), released.set()))
    worker.start()
    time.sleep(0.4)
    assert not calls  # nothing was held before the first job
    worker.server.queue.put(_job(1))
    done = time.monotonic()
    assert released.wait(30)
    time.sleep(0.7)
    assert len(worker.ran) == 1 and len(calls) == 1
    assert calls[0] - done >= 0.25


def test_idle_worker_ticks_compile_ahead_while_it_has_work(
        worker: workers.Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "AHEAD_POLL_S", 0.05)
    monkeypatch.setattr(workers, "CAPTURE_AFTER_S", 0.0)
    ticks: list[bool] = []
    monkeypatch.setattr(compile_ahead, "busy", lambda: len(ticks) < 6)
    monkeypatch.setattr(compile_ahead, "tick",
                        lambda device, job_waiting: ticks.append(job_waiting()))
    worker.start()
    wait_until(lambda: len(ticks) == 6, timeout=30, what="six ticks")
    time.sleep(0.3)  # six poll periods more
    assert ticks == [False] * 6  # polled while busy, then not again; no job was waiting
    worker.server.queue.put(_job(2))
    wait_until(lambda: len(worker.ran) == 1, timeout=30, what="the job")
    assert len(ticks) == 6


def test_compile_ahead_is_told_when_a_job_waits_and_its_failure_stops_only_it(
        worker: workers.Worker, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[bool] = []
    stopped = threading.Event()

    def tick(device, job_waiting) -> bool:
        seen.append(job_waiting())
        if len(seen) == 3:
            raise RuntimeError("a bug in compile_ahead")
        return False

    monkeypatch.setattr(compile_ahead, "busy", lambda: not stopped.is_set())
    monkeypatch.setattr(compile_ahead, "tick", tick)
    monkeypatch.setattr(compile_ahead, "stop", stopped.set)
    monkeypatch.setattr(worker, "_run", lambda job, out: (worker.ran.append(job),
                                                          time.sleep(0.2)))
    for n in range(3):  # the second and third wait while the first runs
        worker.server.queue.put(_job(n))
    worker.start()
    assert stopped.wait(30)
    wait_until(lambda: len(worker.ran) == 3, timeout=30, what="the jobs to go on")
    assert seen[:2] == [True, True] and len(seen) == 3
    assert "compiling ahead failed; it is off until the daemon restarts" in caplog.text


def test_compile_ahead_captures_only_a_while_after_the_last_job(
        worker: workers.Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a result the artist often asks again: a capture then (seconds long)
    would make that try wait, so compile_ahead hears "a job waits" for CAPTURE_AFTER_S."""
    monkeypatch.setattr(workers, "AHEAD_POLL_S", 0.05)
    monkeypatch.setattr(workers, "CAPTURE_AFTER_S", 2.0)
    ticks: list[tuple[float, bool]] = []
    monkeypatch.setattr(compile_ahead, "busy", lambda: True)
    monkeypatch.setattr(compile_ahead, "tick", lambda device, job_waiting: ticks.append(
        (time.monotonic(), job_waiting())))
    worker.start()
    wait_until(lambda: len(ticks) >= 3, timeout=30, what="ticks")
    assert all(not waiting for _, waiting in ticks)  # no job yet: captures may run
    worker.server.queue.put(_job(1))
    wait_until(lambda: len(worker.ran) == 1, timeout=30, what="the job")
    ended = time.monotonic()
    wait_until(lambda: ticks[-1][0] - ended > 2.3, timeout=30, what="ticks past the pause")
    after = [(t - ended, waiting) for t, waiting in ticks if t > ended]
    assert all(waiting for t, waiting in after if t < 1.0)  # held back after the job
    assert not after[-1][1]  # and free again


def test_an_idle_worker_keeps_nothing_of_its_last_job(worker: workers.Worker,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The job (its frame, mask, guide) stayed referenced until the next one came."""
    import gc
    import weakref

    monkeypatch.setattr(worker, "_run", lambda job, out: worker.ran.append(job.id))
    job = _job(1)
    gone = weakref.ref(job)
    worker.server.queue.put(job)
    del job
    worker.start()
    wait_until(lambda: worker.ran == ["1"], timeout=30, what="the job")
    wait_until(lambda: gc.collect() is not None and gone() is None, timeout=10,
               what="the job let go")


def test_idle_models_are_unloaded_and_their_memory_given_back(
        worker: workers.Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """--unload-after: the unload runs on the worker, which then returns the memory (a
    preloaded model stayed held by the worker too, so it was never freed)."""
    import gc
    import weakref

    import torch
    from deepdream.engine import fastpath

    models: list[weakref.ref] = []

    def load(name: str) -> torch.nn.Module:
        model = torch.nn.Linear(4, 4)
        model.device = torch.device("cpu")  # (what a DreamModel says of itself)
        models.append(weakref.ref(model))
        return model

    released: list[str] = []
    monkeypatch.setattr(worker.cache, "_load", load)
    monkeypatch.setattr(worker.cache, "_version", lambda name: None)  # (no models file here)
    monkeypatch.setattr(fastpath, "warm_up", lambda model, device: None)
    monkeypatch.setattr(worker.server.opts, "preload", ("tiny",))
    monkeypatch.setattr(workers, "UNLOAD_POLL_S", 0.05)
    monkeypatch.setattr(accel, "release_memory", lambda: released.append("host"))
    monkeypatch.setattr(accel, "release_device_cache", lambda device: released.append("device"))
    worker.cache.idle_seconds = 0.3
    worker.start()
    wait_until(lambda: models, timeout=30, what="the preload")
    wait_until(lambda: worker.cache.names() == [], timeout=30, what="the unload")
    wait_until(lambda: released[:2] == ["host", "device"], timeout=10, what="the release")
    wait_until(lambda: gc.collect() is not None and models[0]() is None, timeout=10,
               what="the preloaded model freed")
