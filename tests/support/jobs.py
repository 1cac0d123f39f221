"""Helpers for tests that talk to a real daemon: test images in host formats, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from deepdream_protocol.pixels import PixelFormat

#: small enough for a loaded 2-core machine, big enough for two octaves of 32 px.
W, H = 64, 48
#: the shared test daemon refuses images over this many pixels (tests the limit cheaply).
MAX_PIXELS = 50_000


def host_pixels(fmt: PixelFormat, width: int = W, height: int = H, seed: int = 0) -> bytes:
    """A random image as a host would hand it over (floats include NaN, HDR and negatives)."""
    rng = np.random.default_rng(seed)
    n = width * height * fmt.channels
    if fmt.dtype == "u8":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if fmt.dtype == "u16":
        return rng.integers(0, 65536, n, dtype=np.uint16).astype("<u2").tobytes()
    values = rng.uniform(0.0, 1.0, n).astype("<f2" if fmt.dtype == "f16" else "<f4")
    values[:3] = [np.nan, 4.0, -0.5]  # values a float layer can hold and must keep
    return values.tobytes()


def wait_until(condition: Callable[[], object], timeout: float = 120.0,
               what: str = "condition") -> None:
    """Poll ``condition`` (a generous deadline only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pump_until(condition: Callable[[], object], *clients: Any, timeout: float = 120.0,
               what: str = "condition") -> None:
    """Drive the clients' event handling (as a GUI loop would) until ``condition`` holds."""
    def step() -> object:
        for client in clients:
            client.process_events()
        return condition()

    wait_until(step, timeout, what)
