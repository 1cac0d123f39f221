"""A daemon whose process ends under a job (killed, crashed, out of memory) is noticed as
soon as its connection closes, with both transports and both ways of waiting, instead of
after the liveness pings (``SILENCE_BEFORE_PING`` of silence, then the client's timeout:
30 s and more with the GIMP plug-in's 20 s).  A connection that closes is the only sign
taken: a daemon that is merely silent is still waited for, a result sent just before the
daemon exits still arrives, and an idle client whose daemon restarted carries on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deepdream_protocol.client import Client, DaemonUnavailable, Job, stopped_message
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import (
    REPO,
    Daemon,
    free_port,
    replace_daemon,
    start_daemon,
    stop_daemon,
)
from tests.support.jobs import H, W, host_pixels
from tests.support.stand_in import StandIn

pytestmark = pytest.mark.daemon

FMT = PixelFormat("RGBA", "u8")
ZERO = {"model": "tiny", "iterations": 0}
#: enough steps that the job is surely still running when the daemon is killed under it.
LONG_DREAM = {"model": "tiny", "layer": "inception3a", "iterations": 400, "octaves": 1}
#: the GIMP plug-in's job timeout (daemon_link.JOB_TIMEOUT): a ping unanswered this long.
JOB_TIMEOUT = 20.0
#: a generous bound on noticing a killed daemon (it takes well under a second): still below
#: what the pings alone take (SILENCE_BEFORE_PING 10 s + JOB_TIMEOUT 20 s), so only a closed
#: connection seen as such can meet it.
GONE_WITHIN = 15.0


@pytest.fixture
def own_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of this test's own, to kill."""
    daemon = start_daemon(tmp_path)
    try:
        yield daemon
    finally:
        stop_daemon(daemon.proc)


class Killer:
    """An ``on_progress`` that kills the daemon (SIGKILL: no clean shutdown) once its job
    runs, and remembers when."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.at: float | None = None

    def __call__(self, *_: object) -> None:
        if self.at is None:
            self.daemon.proc.kill()
            self.daemon.proc.wait()
            self.at = time.monotonic()

    def waited(self) -> float:
        assert self.at is not None, "the job never ran"
        return time.monotonic() - self.at


def pump(c: Client, job: Job, errors: list[BaseException], seconds: float) -> BaseException:
    """A plug-in's event loop (as Krita's docker runs it): process_events, then watch."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.process_events()
        if errors:
            return errors[0]
        try:
            c.watch(job)
        except DaemonUnavailable as exc:
            return exc
        if errors:
            return errors[0]
        time.sleep(0.02)
    raise AssertionError(f"no failure within {seconds:g} s")


@pytest.mark.parametrize("driven", ["blocking", "events"])
@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_daemon_killed_under_a_running_job_is_noticed_at_once(
        own_daemon: Daemon, transport: str, driven: str) -> None:
    killer = Killer(own_daemon)
    with Client(own_daemon.endpoint, transport=transport, timeout=JOB_TIMEOUT) as c:
        if driven == "blocking":
            with pytest.raises(DaemonUnavailable) as caught:
                c.dream(LONG_DREAM, host_pixels(FMT), W, H, FMT, on_progress=killer,
                        timeout=120)
            failure: BaseException = caught.value
        else:
            errors: list[BaseException] = []
            job = c.submit(LONG_DREAM, host_pixels(FMT), W, H, FMT, on_progress=killer,
                           on_error=lambda _job, exc: errors.append(exc))
            failure = pump(c, job, errors, 120)
        waited = killer.waited()
    assert isinstance(failure, DaemonUnavailable)
    assert str(failure) == stopped_message(own_daemon.endpoint)
    assert waited < GONE_WITHIN


def test_gimp_plugin_reports_a_killed_daemon_at_once(
        own_daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "plugins" / "gimp" / "deepdream"))
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", own_daemon.endpoint)
    import daemon_link

    killer = Killer(own_daemon)
    with pytest.raises(daemon_link.LinkError) as caught:
        daemon_link.dream(LONG_DREAM, host_pixels(FMT), W, H, FMT, None, "u8", killer,
                          lambda _text: None)
    waited = killer.waited()
    assert str(caught.value) == stopped_message(own_daemon.endpoint)
    assert waited < GONE_WITHIN


def test_an_idle_client_carries_on_with_a_daemon_restarted_on_its_port(
        tmp_path: Path) -> None:
    """Nothing was lost when the daemon went while the client had no job: the next request
    goes to the new daemon, with neither transport blaming it on the old connection."""
    (tmp_path / "first").mkdir()
    first = start_daemon(tmp_path / "first")
    second: Daemon | None = None
    clients = {t: Client(first.endpoint, transport=t, timeout=30) for t in ("zmq", "stdlib")}
    try:
        for c in clients.values():
            c.hello()
        second = replace_daemon(first, tmp_path / "second")
        pixels = host_pixels(FMT, 8, 8)
        for c in clients.values():
            assert c.hello()["pid"] == second.proc.pid
            assert c.dream(ZERO, pixels, 8, 8, FMT) == pixels
    finally:
        for c in clients.values():
            c.close()
        stop_daemon(first.proc)
        if second is not None:
            stop_daemon(second.proc)


def test_a_dream_that_found_no_daemon_leaves_no_job_behind(tmp_path: Path) -> None:
    """A dream sent while no daemon listened fails; the client then dreams with the
    daemon started later, and carries on when that one is restarted between dreams (a job
    of the failed send used to stay on the client's books: the restart then failed the next
    dream as 'lost with the daemon')."""
    port = free_port()
    clients = {t: Client(f"tcp://127.0.0.1:{port}", transport=t, timeout=3)
               for t in ("zmq", "stdlib")}
    pixels = host_pixels(FMT, 8, 8)
    first = second = None
    try:
        for c in clients.values():
            with pytest.raises(DaemonUnavailable):
                c.dream(ZERO, pixels, 8, 8, FMT)
        (tmp_path / "first").mkdir()
        first = start_daemon(tmp_path / "first", port=port)
        for c in clients.values():
            c.timeout = 30
            assert c.dream(ZERO, pixels, 8, 8, FMT) == pixels
        # only those: a failed dream is not left queued for a daemon started later (pyzmq
        # queues a message until a connection comes up; it used to be dreamed then)
        assert len(re.findall(r"INFO job \S+ from ", first.log_text())) == 2, first.log_text()
        second = replace_daemon(first, tmp_path / "second")
        for transport, c in clients.items():
            assert c.dream(ZERO, pixels, 8, 8, FMT) == pixels, transport
    finally:
        for c in clients.values():
            c.close()
        for daemon in (first, second):
            if daemon is not None:
                stop_daemon(daemon.proc)


# -- a stand-in daemon: exact timing of its replies and of its end --------------------------
class ScriptedDaemon(StandIn):
    """A ROUTER that accepts one job, stays silent ``silent_for`` seconds (as a daemon
    loading a model or compiling, with no progress to report), sends the result and, with
    ``exit_after_result``, closes at once, as a daemon stopped right after the job would."""

    def __init__(self, silent_for: float, exit_after_result: bool) -> None:
        super().__init__()
        self.silent_for, self.exit_after_result = silent_for, exit_after_result

    def answer(self, peer: bytes, header: dict[str, Any], data: list[bytes]) -> bool:
        reply: dict[str, Any] = {"v": 1, "job": header.get("job"), "req": header.get("req")}
        if header["op"] == "ping":
            self.send(peer, {**reply, "op": "pong", "state": "busy", "current": None,
                             "job_known": True})
        elif header["op"] == "submit":
            self.send(peer, {**reply, "op": "accepted", "position": 0})
            if self.stop.wait(self.silent_for):
                return True
            self.send(peer, {**reply, "op": "result"}, data[0])
            if self.exit_after_result:
                self.router.close(linger=5000)  # the result goes out, then the close
                return True
        return False


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_result_sent_just_before_the_daemon_exits_still_arrives(transport: str) -> None:
    pixels = host_pixels(FMT, 8, 8)
    with ScriptedDaemon(silent_for=0.2, exit_after_result=True) as fake, \
            Client(fake.endpoint, transport=transport, timeout=30) as c:
        assert c.dream(ZERO, pixels, 8, 8, FMT, timeout=60) == pixels
        fake.join(timeout=30)


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_silent_daemon_whose_connection_stays_up_is_waited_for(transport: str) -> None:
    """Silence is no closed connection: only the pings (after SILENCE_BEFORE_PING, 10 s)
    may judge it, and this one answers them."""
    pixels = host_pixels(FMT, 8, 8)
    results: list[bytes] = []
    with ScriptedDaemon(silent_for=3.0, exit_after_result=False) as fake, \
            Client(fake.endpoint, transport=transport, timeout=2) as c:
        job = c.submit(ZERO, pixels, 8, 8, FMT, on_result=lambda _j, data: results.append(data))
        deadline = time.monotonic() + 60
        while not job.finished and time.monotonic() < deadline:
            c.process_events()
            c.watch(job)  # would raise DaemonUnavailable if the daemon were taken for dead
            time.sleep(0.02)
    assert results == [pixels]
