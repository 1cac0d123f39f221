"""Krita pixel I/O: which wire format a node's bytes are in, the region to dream, the mask.

Works on Krita's ``Node``/``Selection`` objects by duck typing and imports nothing from Krita,
so the pure parts can be unit-tested outside Krita.  No pixel math: bytes go out and come
back exactly in Krita's own layout; the daemon does every conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deepdream_protocol.pixels import PixelFormat

_DTYPES = {"U8": "u8", "U16": "u16", "F16": "f16", "F32": "f32"}
# Profile-name fragments that mean linear light (Krita's default float and 16-bit RGB
# profile is sRGB-elle-V2-g10.icc, "scRGB (linear)" and the lcms "linear gamma" one also).
_LINEAR_HINTS = ("g10", "linear", "scrgb")
# Where Krita converts models the daemon cannot read (CMYK, Lab, XYZ, YCbCr) for the dream.
_WORK_PROFILE_INTEGER = "sRGB-elle-V2-srgbtrc.icc"
_WORK_PROFILE_FLOAT = "sRGB-elle-V2-g10.icc"


class DreamError(RuntimeError):
    """A one-line, user-facing reason why a dream could not be done."""


def transfer_for(profile: str) -> str:
    """'linear' when the profile's name says linear light, else 'srgb'."""
    name = profile.lower()
    return "linear" if any(hint in name for hint in _LINEAR_HINTS) else "srgb"


def wire_format(model: str, depth: str, profile: str) -> PixelFormat | None:
    """The PixelFormat of ``pixelData`` bytes, or None when Krita must convert them first."""
    dtype = _DTYPES.get(depth)
    if dtype is None:
        raise DreamError(f"unsupported colour depth {depth!r}")
    if model == "RGBA":
        # Krita stores integer RGBA as B,G,R,A and float RGBA as R,G,B,A.
        layout = "BGRA" if depth in ("U8", "U16") else "RGBA"
    elif model == "GRAYA":
        layout = "GA"
    else:
        return None
    return PixelFormat(layout, dtype, transfer_for(profile))


def working_space(depth: str) -> tuple[str, str, str]:
    """The RGBA colour space (same depth) a CMYK/Lab/... layer is converted to for dreaming."""
    profile = _WORK_PROFILE_FLOAT if depth.startswith("F") else _WORK_PROFILE_INTEGER
    return ("RGBA", depth, profile)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @classmethod
    def of(cls, qrect: Any) -> Rect:
        return cls(qrect.x(), qrect.y(), qrect.width(), qrect.height())

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersected(self, other: Rect) -> Rect:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def args(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)


def read(node: Any, rect: Rect) -> bytes:
    """``rect`` of a node's pixels, or of a selection's mask (one u8 per pixel)."""
    return bytes(node.pixelData(*rect.args()))


def write(node: Any, data: bytes, rect: Rect) -> None:
    # Krita 5.2 returns False (and writes nothing) for data of the wrong size; older: None
    if node.setPixelData(data, *rect.args()) is False:
        raise DreamError("Krita refused the dreamed pixels")


def splice_unmasked(original: bytes, dreamed: bytes, mask: bytes, bytes_per_pixel: int) -> bytes:
    """``dreamed`` with every pixel whose mask is 0 taken back from ``original``: the
    pixels a selection left out, as the layer has them now (the user may have painted there
    meanwhile, and a round trip through RGBA for a CMYK/Lab layer would nudge them).
    """
    if len(original) != len(dreamed) or len(mask) * bytes_per_pixel != len(dreamed):
        raise DreamError("internal error: mask and pixel sizes disagree")
    out = bytearray(dreamed)
    for run in re.finditer(rb"\x00+", mask):
        a, b = run.start() * bytes_per_pixel, run.end() * bytes_per_pixel
        out[a:b] = original[a:b]
    return bytes(out)
