"""Reaching the daemon: connect (starting it as the GIMP plug-in does when none answers) and
the blocking dream used by ``dream_layer``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from deepdream_protocol.client import Client, DaemonError, JobCancelled
from deepdream_protocol.launcher import ensure_daemon

from .job import PreparedDream
from .pixels import DreamError


def daemon_message(exc: Exception) -> str:
    """The client's error as one line that says it came from the daemon."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return text if "daemon" in text.lower() else f"DeepDream daemon: {text}"


def start_daemon_if_needed() -> None:
    """Blocks until a daemon answers (DEEPDREAM_ENDPOINT / config / default endpoint),
    starting it with the installer's command or DEEPDREAM_DAEMON_CMD; raises DreamError."""
    try:
        ensure_daemon()
    except DaemonError as exc:
        raise DreamError(daemon_message(exc)) from None


@contextlib.contextmanager
def connected() -> Iterator[Client]:
    """A client whose daemon answered (started first if needed); closed on exit."""
    client = Client()
    try:
        try:
            ensure_daemon(client)
        except DaemonError as exc:
            raise DreamError(daemon_message(exc)) from None
        yield client
    finally:
        client.close()


def dream_blocking(client: Client, settings: dict[str, Any], prepared: PreparedDream) -> bytes:
    """Send one prepared dream and wait for the result; daemon errors become DreamError."""
    rect = prepared.rect
    try:
        return client.dream(settings, prepared.pixels, rect.width, rect.height, prepared.fmt,
                            mask=prepared.mask)
    except JobCancelled:
        raise DreamError("the dream was cancelled") from None
    except DaemonError as exc:
        raise DreamError(daemon_message(exc)) from None
