"""The plug-in's thin link to the daemon: start it when none answers, run one job, and turn
every failure into one line the user can act on."""

from __future__ import annotations

from collections.abc import Callable

from deepdream_protocol.client import Client, DaemonError
from deepdream_protocol.launcher import ensure_daemon
from deepdream_protocol.pixels import PixelFormat

#: seconds the daemon may take to accept a job or answer a ping; generous, because a big
#: frame takes a while to arrive and a busy machine slows the daemon's reply.
JOB_TIMEOUT = 20.0
HELLO_TIMEOUT = 2.0  # a running daemon answers hello at once, whatever it is doing


class LinkError(Exception):
    """One line naming the problem (daemon unreachable, model missing, out of memory…)."""


def dream(settings: dict, pixels: bytes, width: int, height: int, fmt: PixelFormat,
          mask: bytes | None, mask_dtype: str,
          on_progress: Callable[[float], object],
          on_text: Callable[[str], object]) -> bytes:
    """The dreamed pixels, in ``fmt``; raises LinkError."""
    def progress(job: object, info: dict) -> None:
        on_progress(float(info.get("fraction", 0.0)))

    try:
        # a short wait for the first hello, so a silent daemon is started without delay
        with Client(timeout=HELLO_TIMEOUT) as client:
            on_text("DeepDream: waiting for the daemon…")
            # starts it (config / DEEPDREAM_DAEMON_CMD) if silent; the hello also tells the
            # daemon's pixel limit, so a too-large image is refused before it is sent
            ensure_daemon(client)
            client.timeout = JOB_TIMEOUT
            on_text("DeepDream: dreaming…")
            return client.dream(settings, pixels, width, height, fmt, mask, mask_dtype,
                                on_progress=progress)
    except (DaemonError, ValueError) as e:
        raise LinkError(str(e)) from None
