"""Dream jobs through a real daemon: every pixel format, progress, cancel, several clients."""

from __future__ import annotations

import itertools
import os
import select
import subprocess
import sys

import numpy as np
import pytest
from deepdream.pixelformat import decode, encode
from deepdream_protocol.client import Client, DaemonError, Job, JobCancelled
from deepdream_protocol.pixels import DTYPES, LAYOUTS, TRANSFERS, PixelFormat

from tests.support.daemon import REPO, Daemon
from tests.support.jobs import H, W, host_pixels, pump_until, wait_until

pytestmark = pytest.mark.daemon

ZERO = {"model": "tiny", "iterations": 0}
SMALL_DREAM = {"model": "tiny", "layer": "inception3b", "iterations": 2, "octaves": 2,
               "seed": 7}
#: enough steps that a job is surely still running when we act on its first progress.
LONG_DREAM = {"model": "tiny", "layer": "inception3a", "iterations": 400, "octaves": 1}
ALL_FORMATS = [PixelFormat(*c) for c in itertools.product(LAYOUTS, DTYPES, TRANSFERS)]


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_zero_step_job_returns_every_format_byte_exact(daemon: Daemon, fmt: PixelFormat) -> None:
    pixels = host_pixels(fmt)
    with Client(daemon.endpoint, timeout=30) as c:
        assert c.dream(ZERO, pixels, W, H, fmt) == pixels


def test_a_dream_from_noise_on_a_clear_layer_comes_back_opaque(daemon: Daemon) -> None:
    fmt = PixelFormat("RGBA", "u8")
    clear = bytes(W * H * 4)  # a new, empty layer
    with Client(daemon.endpoint, timeout=60) as c:
        out = c.dream({**SMALL_DREAM, "from_noise": True}, clear, W, H, fmt)
    assert set(out[3::4]) == {255} and len(set(out)) > 2  # (it used to come back clear)


def test_catalog_lists_models_layers_and_presets(daemon: Daemon) -> None:
    with Client(daemon.endpoint, timeout=30) as c:
        catalog = c.catalog()
    tiny = catalog["models"]["tiny"]
    assert tiny["layers"]["inception4c"] == 512  # GoogLeNet's channel count there
    assert tiny["default_layer"] in tiny["layers"]
    assert {"googlenet", "vgg16"} <= set(catalog["models"])  # the built-ins, as in the CLI
    from deepdream.engine.presets import PRESETS

    assert set(catalog["presets"]) == set(PRESETS) and "classic" in PRESETS
    for preset in catalog["presets"].values():
        assert preset["description"] and isinstance(preset["settings"], dict)


@pytest.mark.parametrize("fmt", [PixelFormat("RGBA", "u8"), PixelFormat("G", "u16"),
                                 PixelFormat("BGRA", "f16", "linear")], ids=str)
def test_stdlib_transport_round_trips_like_pyzmq(daemon: Daemon, fmt: PixelFormat) -> None:
    pixels = host_pixels(fmt, seed=3)
    with Client(daemon.endpoint, transport="stdlib", timeout=30) as c:
        assert c.hello()["version"] == 1
        assert "tiny" in c.catalog()["models"]
        assert c.dream(ZERO, pixels, W, H, fmt) == pixels
        dreamed = c.dream(SMALL_DREAM, pixels, W, H, fmt)
    with Client(daemon.endpoint, transport="zmq", timeout=30) as c:
        assert c.dream(SMALL_DREAM, pixels, W, H, fmt) == dreamed != pixels


def reference_image() -> np.ndarray:
    """A float RGBA image with structure (a dream of noise is not a fair comparison)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([x / W, y / H, 0.5 + 0.4 * np.sin(x / 5) * np.cos(y / 7)], axis=-1)
    alpha = np.full((H, W, 1), 0.75, np.float32)
    return np.concatenate([rgb, alpha], axis=-1).astype(np.float32)


@pytest.mark.parametrize("fmt", [PixelFormat("BGRA", "u8"), PixelFormat("BGRA", "u16"),
                                 PixelFormat("RGBA", "f16", "linear"),
                                 PixelFormat("RGBA", "f32", "linear")], ids=str)
def test_dream_in_host_formats_matches_the_float_dream(daemon: Daemon, fmt: PixelFormat) -> None:
    image = reference_image()
    srgb_f32 = PixelFormat("RGBA", "f32")
    blank = bytes(srgb_f32.frame_size(W, H))
    ref_in = encode(image, srgb_f32, blank, W, H)
    # The same picture as the host would store it, quantised to its format.
    host_in = encode(image, fmt, bytes(fmt.frame_size(W, H)), W, H)
    with Client(daemon.endpoint, timeout=60) as c:
        ref_out = decode(c.dream(SMALL_DREAM, ref_in, W, H, srgb_f32), srgb_f32, W, H)
        host_out_bytes = c.dream(SMALL_DREAM, host_in, W, H, fmt)
    host_out = decode(host_out_bytes, fmt, W, H)
    assert np.abs(ref_out - image).mean() > 0.01  # it did dream
    assert np.abs(host_out - ref_out)[..., :3].mean() < 0.01
    sample = DTYPES[fmt.dtype]
    alpha_in = np.frombuffer(host_in, np.uint8).reshape(-1, 4 * sample)[:, 3 * sample:]
    alpha_out = np.frombuffer(host_out_bytes, np.uint8).reshape(-1, 4 * sample)[:, 3 * sample:]
    assert np.array_equal(alpha_in, alpha_out)


def test_masked_dream_leaves_unmasked_pixels_byte_identical(daemon: Daemon) -> None:
    fmt = PixelFormat("BGRA", "u16")
    pixels = host_pixels(fmt, seed=5)
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2:] = 255
    with Client(daemon.endpoint, timeout=60) as c:
        out = c.dream(SMALL_DREAM, pixels, W, H, fmt, mask=mask.tobytes())
    rows_in = np.frombuffer(pixels, np.uint8).reshape(H, W, 8)
    rows_out = np.frombuffer(out, np.uint8).reshape(H, W, 8)
    assert np.array_equal(rows_in[:, : W // 2], rows_out[:, : W // 2])
    assert not np.array_equal(rows_in[:, W // 2:], rows_out[:, W // 2:])


def test_progress_arrives_in_order_before_the_result(daemon: Daemon) -> None:
    events: list[tuple[str, object]] = []
    fmt = PixelFormat("RGBA", "u8")
    with Client(daemon.endpoint, timeout=60) as c:
        job = c.submit(SMALL_DREAM, host_pixels(fmt), W, H, fmt,
                       on_progress=lambda j, p: events.append(("progress", p)),
                       on_result=lambda j, data: events.append(("result", len(data))))
        pump_until(lambda: job.finished, c, what="the result")
    assert job.state == "done"
    assert events[-1] == ("result", fmt.frame_size(W, H))
    progress = [p for kind, p in events if kind == "progress"]
    steps = [(p["octave"], p["step"]) for p in progress]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    fractions = [p["fraction"] for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {(p["octaves"], p["steps"]) for p in progress[1:]} == {(2, 2)}


def submit_long(c: Client, seen: list[dict]) -> Job:
    fmt = PixelFormat("RGB", "u8")
    return c.submit(LONG_DREAM, host_pixels(fmt, 96, 96), 96, 96, fmt,
                    on_progress=lambda j, p: seen.append(p))


def test_cancel_stops_a_running_job_and_the_daemon_goes_on(daemon: Daemon) -> None:
    seen: list[dict] = []
    with Client(daemon.endpoint, timeout=30) as c:
        job = submit_long(c, seen)
        pump_until(lambda: any(p["step"] >= 1 for p in seen), c,
                   what="the first step")
        assert c.ping()["current"] == job.id
        c.cancel(job)
        pump_until(lambda: job.finished, c, what="the cancellation")
        assert job.state == "cancelled" and job.result is None
        fmt = PixelFormat("RGBA", "u8")
        pixels = host_pixels(fmt)
        assert c.dream(ZERO, pixels, W, H, fmt) == pixels
        wait_until(lambda: c.ping()["state"] == "idle", timeout=30, what="the daemon to idle")


def test_cancel_of_a_queued_job(daemon: Daemon) -> None:
    seen: list[dict] = []
    fmt = PixelFormat("RGBA", "u8")
    with Client(daemon.endpoint, timeout=30) as c:
        running = submit_long(c, seen)
        queued = c.submit(ZERO, host_pixels(fmt), W, H, fmt)
        pump_until(lambda: queued.state == "queued", c, what="accepted")
        assert queued.position == 1
        c.cancel(queued)
        pump_until(lambda: queued.finished, c, what="the cancellation")
        assert queued.state == "cancelled"
        c.cancel(running)
        pump_until(lambda: running.finished, c, what="the cancellation")
        assert running.state == "cancelled"


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_cancel_as_a_job_ends_gives_its_result_or_cancelled_never_an_error(
        daemon: Daemon, transport: str) -> None:
    # Cancel pressed just as the dream ends: the daemon's "no such job to cancel" used to
    # overtake the result on its way and end the job with that error (about 1 in 8 tries)
    fmt = PixelFormat("RGBA", "u8")
    pixels = host_pixels(fmt)
    ends = []
    with Client(daemon.endpoint, transport=transport, timeout=30) as c:
        for i in range(60):
            job = c.submit(ZERO, pixels, W, H, fmt)
            if i % 3:
                pump_until(lambda j=job: j.state != "sent", c, what="the job's first word")
            c.cancel(job)
            pump_until(lambda j=job: j.finished, c, what="the job's end")
            assert job.state in ("done", "cancelled"), job.error
            assert job.state == "cancelled" or job.result == pixels
            ends.append(job.state)
    assert "done" in ends  # (the cancels did cross the jobs' ends)


def test_two_clients_interleaved_each_get_only_their_own_results(daemon: Daemon) -> None:
    fmt = PixelFormat("BGRA", "u8")
    with Client(daemon.endpoint, timeout=30) as a, \
            Client(daemon.endpoint, transport="stdlib", timeout=30) as b:
        inputs = {name: [host_pixels(fmt, seed=10 * i + k) for k in range(3)]
                  for i, name in enumerate("ab")}
        jobs = []
        for k in range(3):  # a, b, a, b, ...: the daemon sees them interleaved
            for name, client in (("a", a), ("b", b)):
                jobs.append((name, k, client.submit(ZERO, inputs[name][k], W, H, fmt)))
        pump_until(lambda: all(j.finished for _, _, j in jobs), a, b, what="all six results")
    for name, k, job in jobs:
        assert job.state == "done" and job.result == inputs[name][k]


def test_client_that_disconnects_mid_job_gets_its_job_cancelled(daemon: Daemon) -> None:
    seen: list[dict] = []
    said = daemon.log_text().count("disconnected; 1 running job(s) cancelled, 0 queued")
    c = Client(daemon.endpoint, timeout=30)
    job = submit_long(c, seen)
    pump_until(lambda: any(p["step"] >= 1 for p in seen), c,
               what="the first step")
    c.close()
    finished = (f"job {job.id} cancelled", f"job {job.id} done")
    wait_until(lambda: any(line in daemon.log_text() for line in finished), what="job end")
    assert f"job {job.id} cancelled" in daemon.log_text()
    fmt = PixelFormat("RGBA", "u8")
    pixels = host_pixels(fmt)
    with Client(daemon.endpoint, timeout=30) as other:
        assert other.dream(ZERO, pixels, W, H, fmt) == pixels
    # said once (each message that could not reach it, its job's last word too, said it)
    assert daemon.log_text().count(
        "disconnected; 1 running job(s) cancelled, 0 queued") == said + 1


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_client_gone_with_only_queued_jobs_frees_their_places(daemon: Daemon,
                                                                 transport: str) -> None:
    """Another client's job runs on; the gone one's queued jobs used to fill the queue
    (busy for everyone) until it ended: the daemon only learns a client has gone when a
    message to it finds no connection, and a queued job was told nothing."""
    seen: list[dict] = []
    fmt = PixelFormat("RGBA", "u8")
    with Client(daemon.endpoint, timeout=30) as runner:
        running = submit_long(runner, seen)
        pump_until(lambda: seen, runner, what="the long job's start")
        with Client(daemon.endpoint, timeout=30, transport=transport) as leaver:
            queued = [leaver.submit(ZERO, host_pixels(fmt), W, H, fmt) for _ in range(16)]
            pump_until(lambda: all(j.state == "queued" for j in queued), leaver,
                       what="the queued jobs accepted")
        with Client(daemon.endpoint, timeout=30) as newcomer:
            wait_until(lambda: newcomer.ping()["queued"] == 0, what="the places freed")
            assert not running.finished  # freed before the running job ended
            pixels = host_pixels(fmt, seed=4)
            job = newcomer.submit(ZERO, pixels, W, H, fmt)  # no longer busy
            pump_until(lambda: job.state == "queued", newcomer, runner, what="accepted")
        assert "16 queued dropped" in daemon.log_text()
        runner.cancel(running)
        pump_until(lambda: running.finished, runner, what="the cancel")


def test_full_queue_refuses_more_jobs_as_busy(daemon: Daemon) -> None:
    seen: list[dict] = []
    fmt = PixelFormat("RGBA", "u8")
    with Client(daemon.endpoint, timeout=30) as c:
        running = submit_long(c, seen)
        waiting = [c.submit(ZERO, host_pixels(fmt), W, H, fmt) for _ in range(17)]
        pump_until(lambda: all(j.state != "sent" for j in waiting), c, what="all answers")
        refused = [j for j in waiting if j.state == "error"]
        assert len(refused) == 1 and refused[0] is waiting[-1]  # the queue holds 16
        assert refused[0].error.code == "busy" and "queue is full" in str(refused[0].error)
        c.cancel(running)
        pump_until(lambda: all(j.finished for j in [running, *waiting]), c, what="the rest")
        assert running.state == "cancelled"
        assert all(j.state == "done" for j in waiting[:-1])


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_event_loop_driven_by_the_fd_alone_sees_every_message(daemon: Daemon,
                                                               transport: str) -> None:
    # What Krita's QSocketNotifier / GLib's io watch do: sleep on the fd, then handle.
    fmt = PixelFormat("BGRA", "u8")
    pixels = host_pixels(fmt, seed=9)
    progress: list[float] = []
    with Client(daemon.endpoint, transport=transport, timeout=30) as c:
        job = c.submit(SMALL_DREAM, pixels, W, H, fmt,
                       on_progress=lambda j, p: progress.append(p["fraction"]))
        while not job.finished:
            if not c.pending():
                readable, _, _ = select.select([c.fileno()], [], [], 60)
                assert readable, "the fd never woke the loop though messages were due"
            c.process_events()
    assert job.state == "done" and job.result != pixels
    assert progress and progress[-1] == pytest.approx(1.0)


def test_client_in_a_python_without_pyzmq_numpy_or_compiled_msgpack(daemon: Daemon) -> None:
    # GIMP 3 on Windows runs plug-ins in MSYS2's Python: no PyPI wheels load there.
    code = """if True:
        import sys
        sys.modules["zmq"] = sys.modules["numpy"] = sys.modules["torch"] = None
        import msgpack
        assert msgpack.Packer.__module__ == "msgpack.fallback", msgpack.Packer.__module__
        from deepdream_protocol.client import Client
        with Client(sys.argv[1], timeout=30) as c:
            assert c.transport == "stdlib"
            pixels = bytes(range(256)) * 48
            fmt = {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"}
            out = c.dream({"model": "tiny", "iterations": 0}, pixels, 64, 48, fmt)
            print(c.hello()["version"], out == pixels)
    """
    env = {**os.environ, "MSGPACK_PUREPYTHON": "1", "PYTHONPATH": str(REPO / "shared")}
    env.pop("DEEPDREAM_TRANSPORT", None)
    out = subprocess.run([sys.executable, "-c", code, daemon.endpoint], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "True"], out.stderr


def test_blocking_dream_honours_should_cancel_and_timeout(daemon: Daemon) -> None:
    fmt = PixelFormat("RGB", "u8")
    pixels = host_pixels(fmt, 96, 96)
    seen: list[dict] = []
    cancelled = daemon.log_text().count(" cancelled")
    with Client(daemon.endpoint, timeout=30) as c:
        with pytest.raises(JobCancelled):
            c.dream(LONG_DREAM, pixels, 96, 96, fmt, on_progress=lambda j, p: seen.append(p),
                    should_cancel=lambda: len(seen) >= 2)
        with pytest.raises(DaemonError, match="did not finish within 0.5 s") as err:
            c.dream(LONG_DREAM, pixels, 96, 96, fmt, timeout=0.5)
        assert err.value.code == "timeout"
        # both jobs were stopped in the daemon, not left to run (the timeout cancels too)
        wait_until(lambda: daemon.log_text().count(" cancelled") == cancelled + 2,
                   timeout=60, what="the daemon to cancel both jobs")
        wait_until(lambda: c.ping()["state"] == "idle", timeout=30, what="the daemon to idle")


def test_ping_with_a_job_id_says_whether_the_daemon_has_that_job_of_this_client(
        daemon: Daemon) -> None:
    # how a client tells that a restarted daemon has lost its job (and will never answer it)
    import msgpack
    import zmq

    def ask(sock: zmq.Socket, header: dict, *frames: bytes, until: str = "pong") -> dict:
        sock.send_multipart([msgpack.packb({"v": 1, **header}), *frames])
        while True:
            assert sock.poll(30_000), f"no {until}"
            reply = msgpack.unpackb(sock.recv_multipart()[0])
            if reply["op"] in (until, "error"):
                return reply

    ctx = zmq.Context.instance()
    mine, other = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
    try:
        for sock in (mine, other):
            sock.linger = 0
            sock.connect(daemon.endpoint)
        fmt = PixelFormat("RGB", "u8")
        submit = {"op": "submit", "job": "long", "settings": LONG_DREAM,
                  "format": fmt.to_wire(), "width": 96, "height": 96}
        assert ask(mine, submit, host_pixels(fmt, 96, 96), until="accepted")["op"] == "accepted"
        pong = ask(mine, {"op": "ping", "job": "long", "req": 3})
        assert pong["job_known"] is True and pong["job"] == "long" and pong["req"] == 3
        assert ask(mine, {"op": "ping", "job": "never-sent"})["job_known"] is False
        assert ask(other, {"op": "ping", "job": "long"})["job_known"] is False  # not its job
        assert "job_known" not in ask(mine, {"op": "ping"})
        bad = ask(mine, {"op": "ping", "job": 7})
        assert bad["code"] == "bad_field" and "'job' must be str, got int" in bad["message"]
        assert ask(mine, {"op": "cancel", "job": "long"}, until="cancelled")["op"] == "cancelled"
        assert ask(mine, {"op": "ping", "job": "long"})["job_known"] is False  # over
    finally:
        mine.close()
        other.close()
