"""Host pixel bytes <-> the engine's float32 sRGB arrays: the only place pixels are converted.

The engine works on float32 (H, W, C) arrays, C in {1, 2, 3, 4} = G, GA, RGB, RGBA, sRGB-encoded
in [0, 1].  Hosts hand over interleaved little-endian samples in many layouts (see
``deepdream_protocol.pixels``).  ``decode`` reads them; ``encode`` writes the engine's result
back in exactly the format received.  Integers scale exactly (no 8-bit rounding of 16-bit
data), floats stay float, linear light is converted to sRGB for the engine and back.

Unchanged data is never re-quantised: alpha, and every sample whose float result equals what
``decode`` gave the engine, are copied from the original bytes, so a job that changes nothing
returns the input byte for byte (float NaNs, HDR values above 1 and all).
"""

from __future__ import annotations

import numpy as np
from deepdream_protocol.pixels import MASK_DTYPES, PixelFormat

_NUMPY = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f16": np.dtype("<f2"),
          "f32": np.dtype("<f4")}
# Same-size unsigned views: selecting samples through them copies bits, NaN payloads included.
_BITS = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f16": np.dtype("<u2"),
         "f32": np.dtype("<u4")}
_INT_MAX = {"u8": 255.0, "u16": 65535.0}
#: engine channel i is host channel _ORDER[layout][i]; the swaps are their own inverse.
_ORDER = {"RGBA": None, "BGRA": [2, 1, 0, 3], "RGB": None, "BGR": [2, 1, 0], "GA": None,
          "G": None}
# A byte -> float table is several times faster than dividing each sample.
_U8_TABLE = (np.arange(256, dtype=np.float32) / np.float32(255.0))


def _samples(data: bytes | memoryview, fmt: PixelFormat, width: int, height: int) -> np.ndarray:
    """A read-only (H, W, C) view of the host bytes in host channel order (no copy)."""
    expected = fmt.frame_size(width, height)
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if len(data) != expected:
        raise ValueError(f"pixel frame is {len(data)} bytes; {width}x{height} {fmt} needs "
                         f"{expected}")
    flat = np.frombuffer(data, dtype=_NUMPY[fmt.dtype])
    return flat.reshape(height, width, fmt.channels)


def _srgb_from_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * np.float32(12.92),
                    np.float32(1.055) * np.power(x, np.float32(1 / 2.4)) - np.float32(0.055))


def _linear_from_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / np.float32(12.92),
                    np.power((x + np.float32(0.055)) / np.float32(1.055), np.float32(2.4)))


def _colour(fmt: PixelFormat) -> slice:
    """The colour channels (everything but alpha) of an engine array."""
    return slice(0, fmt.channels - 1) if fmt.has_alpha else slice(0, fmt.channels)


def decode(data: bytes | memoryview, fmt: PixelFormat, width: int, height: int) -> np.ndarray:
    """Host bytes -> new float32 (H, W, C) array, engine channel order, sRGB, clipped to [0, 1]."""
    host = _samples(data, fmt, width, height)
    order = _ORDER[fmt.layout]
    if order is not None:
        host = host[..., order]
    if fmt.dtype == "u8":
        image = _U8_TABLE[host]
    elif fmt.dtype in _INT_MAX:
        image = host.astype(np.float32)
        image *= np.float32(1.0 / _INT_MAX[fmt.dtype])
    else:
        # Floats can hold NaN, negatives and HDR values above 1; the engine gets [0, 1].
        image = host.astype(np.float32)
        np.nan_to_num(image, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(image, 0.0, 1.0, out=image)
    if fmt.transfer == "linear":
        colour = _colour(fmt)
        image[..., colour] = _srgb_from_linear(image[..., colour])
    return image


def encode(image: np.ndarray, fmt: PixelFormat, original: bytes | memoryview,
           width: int, height: int, decoded: np.ndarray | None = None) -> bytes:
    """The engine's result -> bytes in ``fmt``, the format ``original`` arrived in.

    Samples equal to what ``decode(original)`` produced, and all alpha, are copied from
    ``original`` bit for bit; only changed samples are converted and quantised.
    ``decoded``: that ``decode(original)`` array if the caller still has it (saves a pass).
    """
    expected = (height, width, fmt.channels)
    if image.shape != expected:
        raise ValueError(f"engine returned shape {image.shape}, expected {expected}")
    out = np.asarray(image, dtype=np.float32)
    if decoded is None:
        decoded = decode(original, fmt, width, height)
    unchanged = out == decoded
    if fmt.has_alpha:
        unchanged[..., -1] = True
    converted = out
    if fmt.transfer == "linear":
        converted = out.copy()
        colour = _colour(fmt)
        converted[..., colour] = _linear_from_srgb(np.clip(converted[..., colour], 0.0, 1.0))
    if fmt.dtype in _INT_MAX:
        scaled = np.clip(converted, 0.0, 1.0) * np.float32(_INT_MAX[fmt.dtype])
        quantised = np.rint(scaled).astype(_NUMPY[fmt.dtype])
    else:
        quantised = converted.astype(_NUMPY[fmt.dtype])
    order = _ORDER[fmt.layout]
    if order is not None:
        quantised = quantised[..., order]
        unchanged = unchanged[..., order]
    host = _samples(original, fmt, width, height)
    bits = _BITS[fmt.dtype]
    merged = np.where(unchanged, host.view(bits), quantised.view(bits))
    return merged.astype(bits, copy=False).tobytes()


def decode_mask(data: bytes | memoryview, dtype: str, width: int, height: int) -> np.ndarray:
    """A mask frame (one sample per pixel, u8 0..255 or f32 0..1) -> float32 (H, W) in [0, 1]."""
    if dtype not in MASK_DTYPES:
        raise ValueError(f"unknown mask sample type {dtype!r}; expected one of {MASK_DTYPES}")
    size = 1 if dtype == "u8" else 4
    if len(data) != width * height * size:
        raise ValueError(f"mask frame is {len(data)} bytes; {width}x{height} {dtype} needs "
                         f"{width * height * size}")
    if dtype == "u8":
        return _U8_TABLE[np.frombuffer(data, dtype=np.uint8)].reshape(height, width)
    mask = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(height, width)
    np.nan_to_num(mask, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(mask, 0.0, 1.0, out=mask)
