"""The client against a real daemon when things go wrong: an image over the daemon's pixel
limit is refused before it is sent, and a daemon restarted under a running job is noticed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from deepdream_protocol import client as client_module
from deepdream_protocol.client import (
    Client,
    DaemonError,
    DaemonUnavailable,
    JobCancelled,
    stopped_message,
)
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import REPO, Daemon, replace_daemon, start_daemon, stop_daemon
from tests.support.jobs import MAX_PIXELS, H, W, host_pixels
from tests.support.stand_in import StandIn

pytestmark = pytest.mark.daemon

ZERO = {"model": "tiny", "iterations": 0}
FMT = PixelFormat("RGBA", "u8")
#: one row more than the shared test daemon's --max-pixels allows
BIG_W, BIG_H = 250, MAX_PIXELS // 250 + 1


def daemon_refusal(daemon: Daemon) -> str:
    """What the daemon itself answers to the oversized image (a client that never said hello
    does not know the limit, so the frame goes over and the daemon refuses it)."""
    with Client(daemon.endpoint, timeout=30) as c:
        with pytest.raises(DaemonError) as caught:
            c.dream(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT)
    assert caught.value.code == "too_large"
    return str(caught.value)


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_image_over_the_daemons_limit_is_refused_before_sending(daemon: Daemon,
                                                                transport: str) -> None:
    wording = daemon_refusal(daemon)
    logged = daemon.log_text().count(wording)
    with Client(daemon.endpoint, transport=transport, timeout=30) as c:
        assert c.hello()["max_pixels"] == MAX_PIXELS
        with pytest.raises(DaemonError) as caught:
            c.submit(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT)
        assert (caught.value.code, str(caught.value)) == ("too_large", wording)
        # the client still works, and an image at the limit still goes through
        fits = host_pixels(FMT, 250, MAX_PIXELS // 250)
        assert c.dream(ZERO, fits, 250, MAX_PIXELS // 250, FMT) == fits
        # a thin strip counts its short side as 32 (the dream grows it), here as there
        strip = MAX_PIXELS // 32 + 1
        with pytest.raises(DaemonError, match=f"^{strip}x3 counts as {32 * strip:,} pixels"):
            c.submit(ZERO, host_pixels(FMT, strip, 3), strip, 3, FMT)
        narrow = host_pixels(FMT, MAX_PIXELS // 32, 3)
        assert c.dream(ZERO, narrow, MAX_PIXELS // 32, 3, FMT) == narrow
    assert daemon.log_text().count(wording) == logged  # the daemon never saw the big one
    assert "counts as" not in daemon.log_text()


def test_gimp_link_refuses_an_image_over_the_limit_before_sending(
        daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "plugins" / "gimp" / "deepdream"))
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", daemon.endpoint)
    import daemon_link

    wording = daemon_refusal(daemon)
    logged = daemon.log_text().count(wording)
    with pytest.raises(daemon_link.LinkError, match=f"^{re.escape(wording)}$"):
        daemon_link.dream(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT, None, "u8",
                          lambda _f: None, lambda _t: None)
    assert daemon.log_text().count(wording) == logged


# -- a daemon restarted under a running job ---------------------------------------------------
class FakeDaemon(StandIn):
    """A ROUTER that accepts a job and then only answers pings, as a daemon that never heard
    of the job does; ``job_known`` None answers like a daemon from before that field.

    A stand-in: an older daemon cannot run here, and the exact replies make the client's
    side of each case certain.  The real daemon killed and restarted under a job, with both
    ways of waiting, is tested below."""

    def __init__(self, job_known: bool | None, result_after_pongs: int = 0) -> None:
        super().__init__()
        self.job_known, self.result_after_pongs = job_known, result_after_pongs
        self.pings: list[dict] = []
        self.pixels, self.job = b"", ""

    def answer(self, peer: bytes, header: dict, data: list[bytes]) -> None:
        reply = {"v": 1, **{k: header[k] for k in ("req", "job") if k in header}}
        if header["op"] == "submit":
            self.pixels, self.job = data[0], header["job"]
            self.send(peer, {**reply, "op": "accepted", "position": 0})
            self.send(peer, {**reply, "op": "progress", "fraction": 0.0})
        elif header["op"] == "ping":
            self.pings.append(header)
            pong = {**reply, "op": "pong", "state": "idle", "current": None}
            if self.job_known is not None:
                pong["job_known"] = self.job_known
            self.send(peer, pong)
            if len(self.pings) == self.result_after_pongs:
                self.send(peer, {"v": 1, "op": "result", "job": self.job}, self.pixels)


@pytest.fixture
def quick_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "SILENCE_BEFORE_PING", 0.2)


@pytest.mark.usefixtures("quick_pings")
def test_a_daemon_that_lost_the_job_ends_the_wait_with_one_line() -> None:
    pixels = host_pixels(FMT, 8, 8)
    with FakeDaemon(job_known=False) as fake, Client(fake.endpoint, timeout=0.5) as c:
        with pytest.raises(DaemonUnavailable) as caught:
            c.dream(ZERO, pixels, 8, 8, FMT, timeout=10)
    assert str(caught.value) == (f"the deepdream daemon at {fake.endpoint} restarted and lost "
                                 "this dream; try again")
    assert len(fake.pings) == 1 and fake.pings[0]["job"]  # the ping named the job


@pytest.mark.usefixtures("quick_pings")
def test_a_daemon_without_job_known_in_its_pong_is_still_waited_for() -> None:
    pixels = host_pixels(FMT, 8, 8)
    with FakeDaemon(job_known=None, result_after_pongs=3) as fake, \
            Client(fake.endpoint, timeout=0.5) as c:
        assert c.dream(ZERO, pixels, 8, 8, FMT, timeout=30) == pixels
    assert len(fake.pings) == 3



def pump_until_failure(c: Client, job: object, seconds: float,
                       errors: list[BaseException] | None = None) -> BaseException | None:
    """A plug-in's event loop (as Krita's docker runs it): process_events, then watch.  The
    failure watch raises, or the first one the job's on_error put in ``errors``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.process_events()
        if errors:
            return errors[0]
        try:
            c.watch(job)  # type: ignore[arg-type]
        except DaemonUnavailable as exc:
            return exc
        time.sleep(0.02)
    return None


@pytest.mark.usefixtures("quick_pings")
def test_an_event_driven_plugin_learns_the_daemon_lost_its_job() -> None:
    with FakeDaemon(job_known=False) as fake, Client(fake.endpoint, timeout=0.5) as c:
        job = c.submit(ZERO, host_pixels(FMT, 8, 8), 8, 8, FMT)
        failure = pump_until_failure(c, job, 10)
    assert failure is not None and "restarted and lost this dream" in str(failure)


@pytest.mark.usefixtures("quick_pings")
def test_an_event_driven_plugin_learns_the_daemon_is_gone() -> None:
    with FakeDaemon(job_known=True) as fake, Client(fake.endpoint, timeout=0.5) as c:
        job = c.submit(ZERO, host_pixels(FMT, 8, 8), 8, 8, FMT)
        assert pump_until_failure(c, job, 0.3) is None  # accepted, and pings are answered
        fake.stop.set()  # the daemon dies without a word
        fake.join()
        failure = pump_until_failure(c, job, 10)
    assert failure is not None and str(failure) == (
        f"the deepdream daemon at {fake.endpoint} stopped answering")


# -- the real thing: a daemon killed and restarted on the same port -------------------------
#: enough steps that the job is surely still running when the daemon is killed under it.
LONG_DREAM = {"model": "tiny", "layer": "inception3a", "iterations": 400, "octaves": 1}


@pytest.mark.parametrize("driven", ["blocking", "events"])
@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_daemon_restarted_under_a_running_job_is_reported(
        tmp_path: Path, transport: str, driven: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways a client waits: ``dream`` (GIMP, the CLI) and ``submit`` with the host's
    own event loop calling ``process_events`` and ``watch`` (Krita's docker)."""
    monkeypatch.setattr(client_module, "SILENCE_BEFORE_PING", 0.5)
    (tmp_path / "first").mkdir()
    first = start_daemon(tmp_path / "first")
    second: list[Daemon] = []

    def restart_daemon(_job: object, _info: object) -> None:
        """Once the job runs: kill the daemon and start a new one on the same port."""
        if not second:
            second.append(replace_daemon(first, tmp_path / "second"))

    try:
        with Client(first.endpoint, transport=transport, timeout=2) as c:
            if driven == "blocking":
                with pytest.raises(DaemonUnavailable) as caught:
                    c.dream(LONG_DREAM, host_pixels(FMT), W, H, FMT,
                            on_progress=restart_daemon, timeout=30)
                failure = caught.value
            else:
                errors: list[BaseException] = []
                job = c.submit(LONG_DREAM, host_pixels(FMT), W, H, FMT,
                               on_progress=restart_daemon,
                               on_error=lambda _job, exc: errors.append(exc))
                failure = pump_until_failure(c, job, 30, errors)
                assert isinstance(failure, DaemonUnavailable)
    finally:
        stop_daemon(first.proc)
        for daemon in second:
            stop_daemon(daemon.proc)
    assert second, "the job never ran"
    # both transports see the old connection close (pyzmq through its socket monitor, though
    # it reconnects to the new daemon at once): the job went with the old daemon
    assert str(failure) == stopped_message(first.endpoint)


# -- a large layer still crossing the network -------------------------------------------------
class SlowLinkDaemon(StandIn):
    """Accepts a job only ``after`` seconds from its arrival: as a daemon on another
    computer does once a large frame has crossed a slow network (pyzmq's send only queues
    it, so the client's clock runs from the submit)."""

    def __init__(self, after: float) -> None:
        super().__init__()
        self.after = after

    def answer(self, peer: bytes, header: dict, data: list[bytes]) -> None:
        if header["op"] == "submit":
            time.sleep(self.after)
            self.send(peer, {"v": 1, "job": header["job"], "op": "result"}, data[0])


def test_a_large_layer_gets_time_to_cross_before_its_acceptance_is_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Krita's docker (a 5-s timeout) said "did not accept the job within 5 s" for a
    4096x4096 16-bit layer to a daemon over Wi-Fi, every time: the upload alone takes ~13 s.
    (A slow network cannot be made here: the link's rate is scaled down instead.)"""
    monkeypatch.setattr(client_module, "SLOWEST_LINK", 16 * 16 * 4 / 3.0)  # 16x16 RGBA: 3 s
    pixels = host_pixels(FMT, 16, 16)
    with SlowLinkDaemon(after=1.5) as fake, Client(fake.endpoint, timeout=0.5) as c:
        assert c.dream(ZERO, pixels, 16, 16, FMT, timeout=30) == pixels
    small = host_pixels(FMT, 2, 2)  # 16 bytes cross at once: 0.5 s + 0.01 s and no more
    with SlowLinkDaemon(after=1.5) as fake, Client(fake.endpoint, timeout=0.5) as c:
        with pytest.raises(DaemonUnavailable, match="did not accept the job within 0.5 s"):
            c.dream(ZERO, small, 2, 2, FMT, timeout=30)


# -- a callback that runs the host's event loop ---------------------------------------------
class BurstDaemon(StandIn):
    """Answers a job with its acceptance, a progress report and the result at once."""

    def answer(self, peer: bytes, header: dict, data: list[bytes]) -> None:
        if header["op"] == "submit":
            reply = {"v": 1, "job": header["job"]}
            self.send(peer, {**reply, "op": "accepted", "position": 0})
            self.send(peer, {**reply, "op": "progress", "fraction": 0.5})
            self.send(peer, {**reply, "op": "result"}, data[0])


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_progress_callback_that_runs_the_event_loop_and_ends_the_job(transport: str) -> None:
    """Krita's docker: a slot on the progress signal ran an event loop (Image › Crop does),
    in which the plug-in's timer handled the result and closed the client; the outer
    ``process_events`` then read on from the closed connection, and the docker said "the
    dream failed: 'NoneType' object has no attribute 'recv_multipart'" (seen on CI)."""
    pixels = host_pixels(FMT, 8, 8)
    results: list[bytes] = []
    with BurstDaemon() as fake:
        c = Client(fake.endpoint, transport=transport, timeout=5)

        def nested_event_loop(_job: object, _info: object) -> None:
            c.process_events()  # the timer's pump, run from inside the slot

        def done(_job: object, data: bytes) -> None:
            results.append(data)
            c.close()  # as the plug-in does once the outcome is in

        job = c.submit(ZERO, pixels, 8, 8, FMT, on_progress=nested_event_loop, on_result=done)
        deadline = time.monotonic() + 10
        while not job.finished and time.monotonic() < deadline:
            c.process_events()
            time.sleep(0.01)
    assert job.state == "done" and results == [pixels]
    c.close()  # and closing again is harmless


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_blocking_dream_whose_callback_closes_the_client_ends_at_once(transport: str) -> None:
    """``dream`` waited on: the next wait opened a new connection, which heard nothing, and
    after 10 s said the daemon "restarted and lost this dream"."""
    with BurstDaemon() as fake:
        c = Client(fake.endpoint, transport=transport, timeout=2)
        started = time.monotonic()
        with pytest.raises(JobCancelled):
            c.dream(ZERO, host_pixels(FMT, 8, 8), 8, 8, FMT,
                    on_progress=lambda _job, _info: c.close())
        assert time.monotonic() - started < 2  # (not after the liveness pings)
