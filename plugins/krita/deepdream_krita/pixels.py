"""Krita pixel I/O: which wire format a node's bytes are in, the region to dream, the mask.

Works on Krita's ``Node``/``Selection`` objects by duck typing and imports nothing from Krita,
so the pure parts can be unit-tested outside Krita.  No pixel math: bytes go out and come
back exactly in Krita's own layout; the daemon does every conversion.
"""

from __future__ import annotations

from typing import Any

from deepdream_protocol.layer_changes import Rect
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


def read(node: Any, rect: Rect) -> bytes:
    """``rect`` of a node's pixels, or of a selection's mask (one u8 per pixel)."""
    return bytes(node.pixelData(*rect.args()))


def write(node: Any, data: bytes, rect: Rect) -> None:
    # Krita 5.2 returns False (and writes nothing) for data of the wrong size; older: None
    if node.setPixelData(data, *rect.args()) is False:
        raise DreamError("Krita refused the dreamed pixels")
