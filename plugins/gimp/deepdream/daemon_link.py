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
        with Client(timeout=JOB_TIMEOUT) as client:
            on_text("DeepDream: waiting for the daemon…")
            ensure_daemon(client.endpoint)  # starts it (config / DEEPDREAM_DAEMON_CMD) if silent
            client.hello()  # learns the daemon's pixel limit: too large is refused before sending
            on_text("DeepDream: dreaming…")
            return client.dream(settings, pixels, width, height, fmt, mask, mask_dtype,
                                on_progress=progress)
    except (DaemonError, ValueError) as e:
        raise LinkError(str(e)) from None
