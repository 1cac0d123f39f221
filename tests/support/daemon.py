"""Start a real ``python -m deepdream serve`` process on a free loopback port for a test.

Used by the daemon tests and by the GIMP and Krita real-host tests::

    with running_daemon() as endpoint:       # "tcp://127.0.0.1:PORT"
        ...

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
from pathlib import Path

import msgpack
import zmq

REPO = Path(__file__).resolve().parents[2]
from tests.support import TINY_MODELS  # noqa: E402  (re-exported: tests import it from here)

#: the first start imports torch and builds the model; on a loaded 2-core box that is slow.
START_TIMEOUT = 120.0


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
    base.update(env or {})
    return base


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


@contextlib.contextmanager
def running_daemon(models_file: str | os.PathLike[str] | None = None,
                   extra_args: Sequence[str] = (),
                   env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run a daemon for the duration of the block and yield its endpoint.

    Raises RuntimeError with the daemon's own stderr if it exits or does not answer.
    On exit the daemon gets SIGTERM (a clean shutdown) and is killed if it lingers.
    """
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="deepdream-daemon-") as tmp:
        log = Path(tmp) / "stderr.log"
        cmd = [sys.executable, "-m", "deepdream", "serve", "--port", str(port),
               "--models-file", str(models_file or TINY_MODELS),
               "--log-file", str(Path(tmp) / "daemon.log"), *extra_args]
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                    env=daemon_env({"XDG_STATE_HOME": tmp, **(env or {})}))
        try:
            deadline = time.monotonic() + START_TIMEOUT
            curve = "--curve" in extra_args
            while not (accepts_tcp(port) if curve else answers_hello(endpoint)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daemon did not start ({' '.join(cmd)}):\n"
                                       + log.read_text(errors="replace")[-4000:])
            yield endpoint
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
