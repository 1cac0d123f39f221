"""Reaching the daemon: connect (starting it as the GIMP plug-in does when none answers) and
the blocking dream used by ``dream_layer``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from deepdream_protocol.client import Client, DaemonError, JobCancelled
from deepdream_protocol.launcher import ensure_daemon
from deepdream_protocol.messages import E_TOO_LARGE, first_line

from .job import PreparedDream
from .pixels import DreamError


def daemon_message(exc: Exception) -> str:
    """The client's error as one line that says it came from the daemon."""
    text = first_line(exc)
    text = text if "daemon" in text.lower() else f"DeepDream daemon: {text}"
    if getattr(exc, "code", None) == E_TOO_LARGE and "smaller" not in text:
        # over the daemon's --max-pixels: say what the artist can do about it (its
        # out-of-memory message says so already)
        text += "; select a smaller part of the layer and dream with Use selection on"
    return text


@contextlib.contextmanager
def daemon_errors() -> Iterator[None]:
    """The client's errors inside become DreamError: a cancel says so, the rest (and an
    unreadable config) say they came from the daemon."""
    try:
        yield
    except JobCancelled:
        raise DreamError("the dream was cancelled") from None
    except (DaemonError, ValueError) as exc:  # (ValueError: a hand-broken config file)
        raise DreamError(daemon_message(exc)) from None


def start_daemon_if_needed() -> dict[str, Any]:
    """Blocks until a daemon answers (DEEPDREAM_ENDPOINT / config / default endpoint),
    starting it with the installer's command or DEEPDREAM_DAEMON_CMD; returns its hello
    reply; raises DreamError."""
    with daemon_errors():
        return ensure_daemon()


@contextlib.contextmanager
def connected() -> Iterator[Client]:
    """A client whose daemon answered (started first if needed); closed on exit."""
    with daemon_errors():
        client = Client()  # a malformed endpoint or transport setting fails here
    try:
        with daemon_errors():
            ensure_daemon(client)
        yield client
    finally:
        client.close()


def dream_blocking(client: Client, settings: dict[str, Any], prepared: PreparedDream) -> bytes:
    """Send one prepared dream and wait for the result; daemon errors become DreamError."""
    rect = prepared.rect
    with daemon_errors():
        return client.dream(settings, prepared.pixels, rect.width, rect.height, prepared.fmt,
                            mask=prepared.mask)
