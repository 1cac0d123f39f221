"""Starting on demand, clean shutdown with a job running, and the CLI through the daemon."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from deepdream_protocol.client import Client, DaemonUnavailable
from deepdream_protocol.launcher import ensure_daemon
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import (
    TINY_MODELS,
    daemon_env,
    daemon_process,
    free_port,
    running_daemon,
    serve_command,
)
from tests.support.jobs import H, W, host_pixels, pump_until, wait_until

pytestmark = pytest.mark.daemon


def test_ensure_daemon_starts_one_when_none_answers(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    cmd = shlex.join(serve_command(port, tmp_path / "d.log"))
    for key, value in daemon_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("DEEPDREAM_DAEMON_CMD", cmd)
    hello = ensure_daemon(endpoint, timeout=120)
    try:
        assert hello["version"] == 1
        assert ensure_daemon(endpoint, timeout=5)["pid"] == hello["pid"]  # no second one
    finally:
        os.kill(hello["pid"], signal.SIGTERM)


def test_preloaded_model_is_warm_and_sigterm_ends_its_jobs_saying_it_stopped() -> None:
    with daemon_process(extra_args=("--preload", "tiny", "--precision", "float32")) as daemon:
        proc = daemon.proc
        with Client(daemon.endpoint, timeout=2) as c:
            wait_until(lambda: _answers(c), what="the daemon")
            wait_until(lambda: c.ping()["models"] == ["tiny"], what="the preloaded model")
            fmt = PixelFormat("RGB", "u8")
            seen: list[dict] = []
            running = c.submit({"model": "tiny", "iterations": 400, "octaves": 1},
                               host_pixels(fmt, 96, 96), 96, 96, fmt,
                               on_progress=lambda j, p: seen.append(p))
            queued = c.submit({"model": "tiny", "iterations": 0}, host_pixels(fmt), W, H, fmt)
            pump_until(lambda: any(p["step"] >= 1 for p in seen), c,
                       what="the first step")
            proc.send_signal(signal.SIGTERM)
            pump_until(lambda: running.finished and queued.finished, c,
                       what="both jobs to end")
        # the running job too: it used to end as "cancelled", which the artist had not asked
        for job in (running, queued):
            assert job.state == "error" and job.error.code == "shutdown"
            assert str(job.error) == "the daemon is shutting down"
        assert proc.wait(timeout=60) == 0
        text = daemon.log_text()
        assert "stopped" in text
        assert "preloaded tiny on cpu and warmed it up" in text
        assert "model tiny on cpu: float32, channels_last" in text  # --precision reached it


#: a daemon whose model loads take a minute (a first download, a slow disk): loaded first by
#: every Python started with this folder on its path, the daemon's only here
SLOW_LOAD = """
import time
from deepdream.models import registry

_load = registry.load


def load(*args, **kwargs):
    print("DD_LOADING", flush=True)
    time.sleep(60)
    return _load(*args, **kwargs)


registry.load = load
"""


@pytest.mark.parametrize("signals", [1, 2])
def test_a_stop_while_a_model_loads_ends_the_daemon_in_time(tmp_path: Path,
                                                           signals: int) -> None:
    """It used to wait out the load (no cancel reaches it), then end the job as a lost
    connection; a second SIGTERM or Ctrl-C did nothing."""
    import time

    (tmp_path / "sitecustomize.py").write_text(SLOW_LOAD)
    paths = os.pathsep.join([str(tmp_path), daemon_env()["PYTHONPATH"]])
    with daemon_process(env={"PYTHONPATH": paths}) as daemon:
        with Client(daemon.endpoint, timeout=5) as c:
            fmt = PixelFormat("RGB", "u8")
            seen: list[dict] = []
            job = c.submit({"model": "tiny", "iterations": 1, "octaves": 1},
                           host_pixels(fmt), W, H, fmt, on_progress=lambda j, p: seen.append(p))
            pump_until(lambda: seen, c, what="the job to leave the queue (the load begins)")
            stopped = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            if signals == 2:
                time.sleep(0.5)
                daemon.proc.send_signal(signal.SIGINT)  # the artist insists: at once
            code = daemon.proc.wait(timeout=40)
            took = time.monotonic() - stopped
            if signals == 1:
                pump_until(lambda: job.finished, c, what="the job's end")
                assert job.state == "error" and job.error.code == "shutdown", job.error
                assert code == 0 and took < 25, took  # (10 s for the job, not the load's 60)
                assert "did not stop within 10 s; leaving it" in daemon.log_text()
            else:
                assert code == -signal.SIGINT and took < 5, took


def _jobs(c: Client) -> int:
    pong = c.ping()
    return len(pong["running"]) + pong["queued"]


def _answers(c: Client) -> bool:
    try:
        c.hello()
        return True
    except Exception:
        return False


@pytest.mark.parametrize("case", ["classic", "relative-guide", "noise-without-steps"])
def test_dream_through_the_daemon_equals_the_in_process_dream(
        tmp_path: Path, case: str) -> None:
    from PIL import Image

    def photo(name: str, seed: int) -> None:
        rgb = np.frombuffer(host_pixels(PixelFormat("RGB", "u8"), 64, 48, seed=seed), np.uint8)
        Image.fromarray(rgb.reshape(48, 64, 3)).save(tmp_path / name)

    photo("in.png", 0)
    common = ["--model", "tiny", "--models-file", str(TINY_MODELS), "--iterations", "2",
              "--octaves", "2", "--seed", "5", "-q"]
    if case == "relative-guide":  # named from the user's folder; the daemon runs elsewhere
        photo("g.png", 1)
        common += ["--guide", "g.png"]
    if case == "noise-without-steps":  # the start, pure noise (the daemon once sent the photo)
        common += ["--from-noise", "--iterations", "0"]
    env = daemon_env()

    def dream(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "deepdream", "dream", *args, "in.png",
                               *common], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    dream("-o", "local.png")
    with running_daemon() as endpoint:
        dream("-o", "remote.png", "--daemon", endpoint)
    a = Image.open(tmp_path / "local.png")
    b = Image.open(tmp_path / "remote.png")
    assert a.mode == b.mode and a.size == b.size
    assert a.tobytes() == b.tobytes()


def test_daemon_dying_mid_job_is_a_clear_error_on_both_transports() -> None:
    fmt = PixelFormat("RGB", "u8")
    pixels = host_pixels(fmt, 96, 96)
    errors: dict[str, BaseException] = {}
    running = threading.Event()

    def dream(endpoint: str, transport: str) -> None:
        with Client(endpoint, transport=transport, timeout=2) as c:
            try:
                c.dream({"model": "tiny", "iterations": 400, "octaves": 1}, pixels, 96, 96,
                        fmt, on_progress=lambda j, p: p["step"] >= 1 and running.set())
            except BaseException as exc:
                errors[transport] = exc

    with daemon_process() as daemon:
        threads = [threading.Thread(target=dream, args=(daemon.endpoint, t))
                   for t in ("zmq", "stdlib")]
        with Client(daemon.endpoint, timeout=2) as watcher:
            wait_until(lambda: _answers(watcher), what="the daemon")
            for t in threads:
                t.start()
            wait_until(lambda: running.is_set() and _jobs(watcher) == 2,
                       what="one job running and one queued")
        daemon.proc.kill()  # no clean shutdown: the process is simply gone
        for t in threads:
            t.join(timeout=120)
    assert isinstance(errors["stdlib"], DaemonUnavailable)
    assert "lost the deepdream daemon" in str(errors["stdlib"])
    assert isinstance(errors["zmq"], DaemonUnavailable)
    assert "stopped answering" in str(errors["zmq"])


def test_dream_through_an_absent_daemon_is_a_one_line_error(tmp_path: Path) -> None:
    from PIL import Image

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.new("RGB", (64, 48), (10, 120, 200)).save(src)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    out = subprocess.run([sys.executable, "-m", "deepdream", "dream", "--daemon", endpoint,
                          str(src), "-o", str(dst), "--iterations", "1"], env=daemon_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.startswith("deepdream: error: daemon: no answer from the deepdream "
                                 f"daemon at {endpoint}")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not dst.exists()


def test_serve_compile_stands_for_a_mistyped_deepdream_compile(tmp_path: Path) -> None:
    # as --precision does for DEEPDREAM_PRECISION: the option given, the variable is not read
    with daemon_process(extra_args=("--compile", "off"),
                        env={"DEEPDREAM_COMPILE": "ahaed"}) as daemon:
        with Client(daemon.endpoint, timeout=30) as client:
            assert client.hello()["pid"] == daemon.proc.pid
        assert "unknown compile mode" not in daemon.log.read_text()


@pytest.mark.parametrize(("args", "says"), [
    (("--compile",), "compiled steps on (--compile)"),
    (("--compile", "ahead"), "compiled steps ahead on (--compile ahead)"),
    (("--compile", "off"), None)])
def test_serve_compile_says_so_and_still_dreams_where_it_does_not_apply(
        args: tuple[str, ...], says: str | None, tmp_path: Path) -> None:
    # --compile applies to CUDA graphs only (none here): the daemon logs that it is on and
    # dreams as always; the compiled step itself is checked on a GPU (bench/gpu_check.sh).
    # The command line wins over the environment's other mode.  The compiled steps go to
    # the user's cache folder, where a reboot leaves them (no TORCHINDUCTOR_CACHE_DIR set).
    other = {"DEEPDREAM_COMPILE": "ahead" if args == ("--compile",) else "1",
             "TORCHINDUCTOR_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path)}
    with daemon_process(extra_args=args, env=other) as daemon:
        with Client(daemon.endpoint, timeout=30) as client:
            fmt = PixelFormat("RGBA", "u8")
            out = client.dream({"model": "tiny", "iterations": 1, "octaves": 1},
                               host_pixels(fmt, W, H), W, H, fmt)
        log = daemon.log.read_text()
    assert len(out) == W * H * 4 and out != host_pixels(fmt, W, H)
    if says is None:  # off, over the environment's DEEPDREAM_COMPILE=1
        assert "compiled steps" not in log
        return
    assert says in log
    if sys.platform.startswith("linux"):
        assert f"compiled steps are kept in {tmp_path / 'deepdream' / 'torchinductor'}" in log
