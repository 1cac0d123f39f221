"""A GPU daemon remembers its last jobs' sizes and settings and, at its next start, dreams each
once so their graphs are captured before the artist's first try.

The file's keeping is tested as it is.  The worker runs in this process on a real Server
(bound on loopback, not serving) with real jobs on the CPU; CUDA graph capture cannot run
here, so ``fastpath.captures`` says yes, a stand-in for ``octave_graph`` records the shapes a
GPU would capture and answers "no graph" (the octave then runs eagerly, as it does when a
capture fails), and CUDA's synchronize does nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from deepdream import server
from deepdream.engine import DreamSettings, fastpath
from deepdream.jobs import Job
from deepdream.recent_jobs import KEEP, MAX_PIXELS, RecentJobs
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import TINY_MODELS, free_port
from tests.support.jobs import host_pixels, wait_until

CLASSIC = DreamSettings.from_dict({"model": "tiny", "iterations": 2, "octaves": 2}).to_dict()


def _settings(**changes: object) -> dict:
    return {**CLASSIC, **changes}


def test_the_last_jobs_are_kept_most_recent_first_without_seed_or_device(
        tmp_path: Path) -> None:
    path = tmp_path / "state" / "recent-jobs.json"
    recent = RecentJobs(path)
    for n in range(KEEP + 1):
        recent.remember(_settings(iterations=n + 1, seed=n, device="cuda:0"), 64, 48)
    recent.remember(_settings(iterations=2, seed=9), 64, 48)  # an earlier job again
    kept = RecentJobs(path).of_model("tiny")  # as the next daemon reads them
    assert [s["iterations"] for s, _, _ in kept] == [2, KEEP + 1, KEEP][:KEEP]
    assert all("seed" not in s and "device" not in s for s, _, _ in kept)
    assert {(w, h) for _, w, h in kept} == {(64, 48)}
    assert RecentJobs(path).of_model("googlenet") == []
    assert [p.name for p in path.parent.iterdir()] == ["recent-jobs.json"]  # no temp files


def test_a_huge_job_is_not_remembered(tmp_path: Path) -> None:
    recent = RecentJobs(tmp_path / "recent-jobs.json")
    recent.remember(CLASSIC, 8000, MAX_PIXELS // 8000 + 1)
    assert recent.of_model("tiny") == [] and not (tmp_path / "recent-jobs.json").exists()


@pytest.mark.parametrize("text", ["{not json", '{"jobs": 1}', '[{"settings": 3}]'])
def test_a_damaged_file_is_ignored_with_a_warning_and_replaced(
        tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "recent-jobs.json"
    path.write_text(text)
    recent = RecentJobs(path)
    assert recent.of_model("tiny") == []
    assert f"ignoring {path}" in caplog.text
    recent.remember(CLASSIC, 64, 48)
    assert json.loads(path.read_text())[0]["width"] == 64


@pytest.fixture
def gpu_stand_in(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []

    def octave_graph(model, objective, shape, *args, **kw) -> None:
        shapes.append(tuple(shape))

    monkeypatch.setattr(fastpath, "captures", lambda device: True)
    monkeypatch.setattr(fastpath, "octave_graph", octave_graph)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)  # (warm_up's)
    return shapes


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    made: list[server.Server] = []

    def make(preload: tuple[str, ...] = ()) -> server.Server:
        srv = server.Server(server.ServeOptions(
            port=free_port(), devices=("cpu",), models_file=str(TINY_MODELS), preload=preload,
            recent_jobs=tmp_path / "recent-jobs.json"))
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.queue.close()
        for w in srv.workers:
            w.join(30)
        srv._close()


def test_a_daemon_warms_up_for_its_last_jobs_at_the_next_start(
        make_server, gpu_stand_in: list[tuple[int, ...]],
        caplog: pytest.LogCaptureFixture) -> None:
    first = make_server()
    fmt = PixelFormat("RGBA", "u8")
    jobs = [(_settings(octaves=1), 80, 60), (_settings(norm="laplacian"), 48, 48),
            (_settings(), 80, 60)]
    worker = first.workers[0]
    worker.start()
    for n, (values, w, h) in enumerate(jobs):
        first.queue.put(Job(b"peer", str(n), DreamSettings.from_dict(values), fmt, w, h,
                            memoryview(host_pixels(fmt, w, h))))
    wait_until(lambda: first.queue.status() == ([], 0) and len(gpu_stand_in) == 3,
               timeout=60, what="the jobs")
    assert gpu_stand_in == [(1, 3, 60, 80), (1, 3, 43, 57), (1, 3, 60, 80)]  # laplacian: eager
    first.queue.close()
    worker.join(30)

    gpu_stand_in.clear()
    with caplog.at_level(logging.INFO, logger="deepdream.server"):
        second = make_server(preload=("tiny",))
        second.workers[0].start()
        wait_until(lambda: caplog.text.count("warmed up tiny for 80x60") == 2, timeout=120,
                   what="the warm-up for the recent jobs")
    # the 64x64 warm-up, then both remembered 80x60 jobs' octaves, most recent first
    assert gpu_stand_in == [(1, 3, 64, 64), (1, 3, 43, 57), (1, 3, 60, 80), (1, 3, 60, 80)]


def test_a_cpu_daemon_neither_remembers_nor_warms_up(
        make_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the CPU captures no graphs: nothing a warm-up at start would spare the first try
    path = tmp_path / "recent-jobs.json"
    RecentJobs(path).remember(CLASSIC, 40, 32)
    before = path.read_text()
    with caplog.at_level(logging.INFO, logger="deepdream.server"):
        srv = make_server(preload=("tiny",))
        srv.workers[0].start()
        wait_until(lambda: "preloaded tiny" in caplog.text, timeout=120, what="the preload")
        fmt = PixelFormat("RGB", "u8")
        srv.queue.put(Job(b"peer", "1", DreamSettings.from_dict(_settings(octaves=1)), fmt,
                          24, 16, memoryview(host_pixels(fmt, 24, 16))))
        wait_until(lambda: "job 1 done" in caplog.text, timeout=120, what="the job")
    assert "warm" not in caplog.text.replace("warmed it up", "")
    assert path.read_text() == before


def test_a_remembered_job_that_no_longer_dreams_is_skipped_in_one_line(
        make_server, tmp_path: Path, gpu_stand_in: list[tuple[int, ...]],
        caplog: pytest.LogCaptureFixture) -> None:
    # e.g. a models file changed since: the layer is gone
    RecentJobs(tmp_path / "recent-jobs.json").remember(_settings(layers=[["nope", 1.0]]),
                                                       40, 32)
    with caplog.at_level(logging.INFO, logger="deepdream.server"):
        srv = make_server(preload=("tiny",))
        srv.workers[0].start()
        wait_until(lambda: "cannot warm up tiny for 40x32" in caplog.text, timeout=120,
                   what="the warm-up's warning")
    line = next(r for r in caplog.records if "cannot warm up" in r.getMessage())
    assert "nope" in line.getMessage() and "\n" not in line.getMessage()
    assert srv.workers[0].is_alive()
