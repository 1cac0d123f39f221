"""Start a real ``python -m deepdream serve`` process on a free loopback port for a test.

Used by the daemon tests, the GIMP and Krita real-host tests and the benchmarks::

    with running_daemon() as endpoint:       # "tcp://127.0.0.1:PORT"
        ...
    with daemon_process() as daemon:         # the endpoint, the process and its log file
        daemon.proc.send_signal(signal.SIGTERM)

The daemon runs with tests/support/tiny_models.toml (a random-initialised GoogLeNet) unless
another models file is given, and logs into a temporary folder.  It is ready when it answers
a hello (with ``--curve`` in ``extra_args``: when its port accepts connections).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgpack
import zmq

REPO = Path(__file__).resolve().parents[2]
from tests.support import TINY_MODELS  # noqa: E402  (re-exported: tests import it from here)

#: the first start imports torch and builds the model; on a loaded 2-core box that is slow.
START_TIMEOUT = 120.0

ModelsFile = str | os.PathLike[str] | None


@dataclass
class Daemon:
    """A started daemon: where it answers, its process and the file it logs to."""

    endpoint: str
    log: Path
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a daemon subprocess needs to import the uninstalled packages."""
    paths = [str(REPO / "daemon"), str(REPO / "shared")]
    base = dict(os.environ)
    if base.get("PYTHONPATH"):
        paths.append(base["PYTHONPATH"])
    base["PYTHONPATH"] = os.pathsep.join(paths)
    base.pop("DEEPDREAM_ENDPOINT", None)
    # on a GPU host a daemon would compile ahead by default: child processes under tests
    base.setdefault("DEEPDREAM_COMPILE", "0")
    base.update(env or {})
    return base


def serve_command(port: int, log_file: str | os.PathLike[str], models_file: ModelsFile = None,
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The command line of a daemon on loopback ``port`` logging to ``log_file``."""
    return [sys.executable, "-m", "deepdream", "serve", "--port", str(port),
            "--models-file", str(models_file or TINY_MODELS), "--log-file", str(log_file),
            *extra_args]


def answers_hello(endpoint: str, timeout: float = 1.0) -> bool:
    """True when a daemon at ``endpoint`` answers a hello within ``timeout`` seconds."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndtimeo = int(timeout * 1000)  # a refused handshake leaves no pipe to send on
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb({"v": 1, "op": "hello", "req": 0}))
        return bool(sock.poll(int(timeout * 1000)))
    except zmq.Again:
        return False
    finally:
        sock.close()


def accepts_tcp(port: int) -> bool:
    """True when something listens on the loopback port (all a Curve daemon lets us see)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def start_daemon(folder: Path, models_file: ModelsFile = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None,
                 timeout: float = START_TIMEOUT, port: int | None = None) -> Daemon:
    """Start a daemon that keeps its state, log (daemon.log) and stderr (stderr.log) in
    ``folder``, on ``port`` (default: a free one), and return it once it is ready.

    Raises RuntimeError with the daemon's own stderr (and stops it) if it exits or is not
    ready within ``timeout`` seconds.  Stopping it afterwards is the caller's part.
    """
    port = port or free_port()
    log, stderr = folder / "daemon.log", folder / "stderr.log"
    cmd = serve_command(port, log, models_file, extra_args)
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                env=daemon_env({"XDG_STATE_HOME": str(folder), **(env or {})}))
    daemon = Daemon(f"tcp://127.0.0.1:{port}", log, proc)
    deadline = time.monotonic() + timeout
    curve = "--curve" in extra_args
    while not (accepts_tcp(port) if curve else answers_hello(daemon.endpoint)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_daemon(proc)
            raise RuntimeError(f"daemon did not start ({' '.join(cmd)}):\n"
                               + stderr.read_text(errors="replace")[-4000:])
        time.sleep(0.05)  # a refused TCP connect returns at once: don't spin a core
    return daemon


def replace_daemon(old: Daemon, folder: Path) -> Daemon:
    """Kill ``old`` (as a crash would) and start another daemon on its port, keeping its
    state, log and stderr in ``folder``; returned once it answers."""
    old.proc.kill()
    old.proc.wait()
    folder.mkdir(parents=True, exist_ok=True)
    return start_daemon(folder, port=int(old.endpoint.rpartition(":")[2]))


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean shutdown), and SIGKILL if it lingers; nothing if it has ended."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def daemon_process(models_file: ModelsFile = None, extra_args: Sequence[str] = (),
                   env: Mapping[str, str] | None = None) -> Iterator[Daemon]:
    """Run a daemon (see start_daemon) for the duration of the block and yield it.

    On exit the daemon, unless the block ended it already, gets SIGTERM and is killed if it
    lingers; its temporary folder (and log) goes too.
    """
    with tempfile.TemporaryDirectory(prefix="deepdream-daemon-") as tmp:
        daemon = start_daemon(Path(tmp), models_file, extra_args, env)
        try:
            yield daemon
        finally:
            stop_daemon(daemon.proc)


@contextlib.contextmanager
def running_daemon(models_file: ModelsFile = None, extra_args: Sequence[str] = (),
                   env: Mapping[str, str] | None = None) -> Iterator[str]:
    """daemon_process, for a block that needs only the endpoint."""
    with daemon_process(models_file, extra_args, env) as daemon:
        yield daemon.endpoint
