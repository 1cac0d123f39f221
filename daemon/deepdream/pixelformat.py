"""Host pixel bytes <-> the engine's float32 sRGB arrays: the only place pixels are converted.

The engine works on float32 (H, W, C) arrays, C in {1, 2, 3, 4} = G, GA, RGB, RGBA, sRGB-encoded
in [0, 1].  Hosts hand over interleaved little-endian samples in many layouts (see
``deepdream_protocol.pixels``).  ``decode`` reads them; ``encode`` writes the engine's result
back in exactly the format received.  Integers scale exactly (no 8-bit rounding of 16-bit
data), floats stay float, linear light is converted to sRGB for the engine and back.

A job that changes nothing returns the input byte for byte.  Alpha is always copied from
the original bytes.  Float and linear-light frames also copy every sample whose float result
equals what ``decode`` gave the engine (float NaNs, HDR values above 1 and all); integer
sRGB frames are quantised directly, since decode's b / max times max rounds back to b.

On a GPU, ``decode_for`` converts 8-bit sRGB frames (what hosts send for 8-bit layers) on
the device, and ``encode`` quantises their dream there: a quarter of float32's bytes cross
the bus each way, and the host does no per-sample work.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from deepdream_protocol.pixels import MASK_DTYPES, PixelFormat

if TYPE_CHECKING:  # torch is imported where a frame is converted on a device
    import torch

_NUMPY = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f16": np.dtype("<f2"),
          "f32": np.dtype("<f4")}
# Same-size unsigned views: selecting samples through them copies bits, NaN payloads included.
_BITS = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f16": np.dtype("<u2"),
         "f32": np.dtype("<u4")}
_INT_MAX = {"u8": 255.0, "u16": 65535.0}
#: engine channel i is host channel _ORDER[layout][i]; the swaps are their own inverse.
_ORDER = {"RGBA": None, "BGRA": [2, 1, 0, 3], "RGB": None, "BGR": [2, 1, 0], "GA": None,
          "G": None}
# Integer frames are quantised this many samples at a time: the float scratch stays in the
# CPU cache (measured ~25% faster than whole-frame passes at 1 MP) and a huge frame needs no
# full-size float temporary.
_BLOCK_SAMPLES = 1 << 17


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
        # take, not host[..., order]: that result lies channel-planar, and so would the image,
        # which makes every later pass over it slower than this small copy
        host = np.take(host, order, axis=2)
    if fmt.dtype == "u8":
        # One pass, casting as it goes; the same float32 b / 255 as a lookup table gives,
        # several times faster than indexing one.
        image = np.divide(host, np.float32(255.0), dtype=np.float32)
    elif fmt.dtype in _INT_MAX:
        image = np.multiply(host, np.float32(1.0 / _INT_MAX[fmt.dtype]), dtype=np.float32)
    else:
        # Floats can hold NaN, negatives and HDR values above 1; the engine gets [0, 1].
        image = clamp_unit(host.astype(np.float32))
    if fmt.transfer == "linear":
        colour = _colour(fmt)
        image[..., colour] = _srgb_from_linear(image[..., colour])
    return image


#: Frames up to this many pixels are converted on a GPU, where the host's conversion would be
#: a good share of a dream of tens of milliseconds.  A bigger frame dreams for seconds, and its
#: float copies (~56 bytes a pixel at a job's end) stay in host memory, not the GPU's.
DEVICE_PIXELS_MAX = 1 << 22  # 4 megapixels


def decode_for(device: torch.device | str, data: bytes | memoryview, fmt: PixelFormat,
               width: int, height: int) -> np.ndarray | torch.Tensor:
    """``decode`` where the dream will run: an 8-bit sRGB frame bound for a GPU goes up as its
    bytes (a quarter of float32's size) and is converted there, a float32 (H, W, C) tensor on
    ``device``; any other frame, one over DEVICE_PIXELS_MAX, or any on the CPU is decoded
    here (a numpy array)."""
    import torch

    device = torch.device(device)
    if (device.type == "cpu" or not _converts_on_device(fmt)
            or width * height > DEVICE_PIXELS_MAX):
        return decode(data, fmt, width, height)
    return _decode_on(device, data, fmt, width, height)


def _converts_on_device(fmt: PixelFormat) -> bool:
    # 8-bit sRGB, what Krita and GIMP hand over for 8-bit layers: b / 255 and back with no
    # compare (see _quantise).  Other frames need a merge with their own bits: host work.
    return fmt.dtype == "u8" and fmt.transfer == "srgb"


def _decode_on(device: torch.device, data: bytes | memoryview, fmt: PixelFormat, width: int,
               height: int) -> torch.Tensor:
    import torch

    host = _samples(data, fmt, width, height)
    # staged through (on CUDA pinned, cached) memory of torch's own: a tensor cannot view the
    # read-only frame, and from pinned memory the upload is one fast asynchronous copy
    pinned = device.type == "cuda"  # (torch keeps a pinned block until its copy is done)
    staging = torch.empty(host.shape, dtype=torch.uint8, pin_memory=pinned)
    np.copyto(staging.numpy(), host)
    frame = staging.to(device, non_blocking=pinned)
    order = _ORDER[fmt.layout]
    if order is not None:
        frame = frame[..., order]
    # decode's own floats for every byte value, looked up: the same to the bit (CUDA divides
    # by a number as a multiply by its reciprocal, 1 ulp off for half the values)
    table = torch.from_numpy(_byte_floats()).to(device)
    return table.index_select(0, frame.reshape(-1).int()).view(frame.shape)


@functools.cache
def _byte_floats() -> np.ndarray:
    """What ``decode`` makes of each 8-bit sample value 0..255."""
    return decode(bytes(range(256)), PixelFormat("G", "u8"), 256, 1).reshape(256)


def _quantise_on_device(image: torch.Tensor, fmt: PixelFormat, host: np.ndarray,
                        own_alpha: bool = False) -> bytes:
    """``_quantise`` of a float tensor on its own device, so only 8-bit samples come back."""
    import torch

    q = (image * 255.0).clamp_(0.0, 255.0).round_().to(torch.uint8)
    order = _ORDER[fmt.layout]
    if order is not None:
        q = q[..., order]
    result = q.cpu().numpy()
    if fmt.has_alpha and not own_alpha:
        result[..., -1] = host[..., -1]
    return result.tobytes()


def encode(image: np.ndarray | torch.Tensor, fmt: PixelFormat, original: bytes | memoryview,
           width: int, height: int, decoded: np.ndarray | torch.Tensor | None = None,
           own_alpha: bool = False) -> bytes:
    """The engine's result -> bytes in ``fmt``, the format ``original`` arrived in.

    Samples equal to what ``decode(original)`` produced, and all alpha, come back as in
    ``original`` bit for bit; only changed samples are converted and quantised.
    ``own_alpha``: the engine's alpha is the result's too (a dream from noise is a picture
    of its own, opaque where it is dreamed), converted like colour.  Integer
    sRGB frames need no compare (see ``_quantise``); floats and linear light are merged.
    ``decoded``: that ``decode(original)`` array if the caller still has it (saves a pass
    where a merge is needed).  ``image`` may be a tensor (the dream of a ``decode_for``
    frame): 8-bit frames are then quantised on its device, so only bytes come back.
    """
    expected = (height, width, fmt.channels)
    if tuple(image.shape) != expected:
        raise ValueError(f"engine returned shape {tuple(image.shape)}, expected {expected}")
    if not isinstance(image, np.ndarray):
        if _converts_on_device(fmt):
            return _quantise_on_device(image, fmt, _samples(original, fmt, width, height),
                                       own_alpha)
        image = image.cpu().numpy()
    if not isinstance(decoded, np.ndarray):
        decoded = None
    out = np.asarray(image, dtype=np.float32)
    if fmt.dtype in _INT_MAX and fmt.transfer == "srgb":
        return _quantise(out, fmt, _samples(original, fmt, width, height), own_alpha)
    if decoded is None:
        decoded = decode(original, fmt, width, height)
    unchanged = out == decoded
    if fmt.has_alpha and not own_alpha:
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


def _quantise(out: np.ndarray, fmt: PixelFormat, host: np.ndarray,
              own_alpha: bool = False) -> bytes:
    """u8 / u16 sRGB: every colour sample quantised to nearest, alpha copied from ``host``.

    No compare with the decoded input is needed: for every integer b, rounding decode's
    float32 b / max times max gives b back (tests check all 65536 u16 and 256 u8 values), so
    an unchanged sample comes back bit for bit anyway.
    """
    height, width, channels = host.shape
    top = np.float32(_INT_MAX[fmt.dtype])
    order = _ORDER[fmt.layout]
    result = np.empty(host.shape, dtype=host.dtype)
    rows = max(1, _BLOCK_SAMPLES // (width * channels))
    scratch = np.empty((min(rows, height), width, channels), dtype=np.float32)
    engine_order = None if order is None else np.empty(scratch.shape, dtype=host.dtype)
    for y in range(0, height, rows):
        block = out[y:y + rows]
        s = scratch[:len(block)]
        # the whole pixel, alpha included: contiguous passes beat strided colour-only ones
        np.multiply(block, top, out=s)
        np.clip(s, 0.0, top, out=s)
        if engine_order is None:
            np.rint(s, out=result[y:y + rows], casting="unsafe")
        else:
            q = engine_order[:len(block)]
            np.rint(s, out=q, casting="unsafe")
            for host_channel, engine_channel in enumerate(order):  # 2x faster than q[..., order]
                result[y:y + rows, :, host_channel] = q[..., engine_channel]
    if fmt.has_alpha and not own_alpha:
        result[..., -1] = host[..., -1]
    return result.tobytes()


_LAYOUT_BY_CHANNELS = {1: "G", 2: "GA", 3: "RGB", 4: "RGBA"}


def float_frame(image: np.ndarray) -> tuple[bytes, PixelFormat]:
    """An engine image (float (H, W, C) sRGB) as a float32 sRGB frame and its format: the
    engine's own values, so a daemon dreams exactly what this process would."""
    fmt = PixelFormat(_LAYOUT_BY_CHANNELS[image.shape[2]], "f32", "srgb")
    return np.ascontiguousarray(image, dtype="<f4").tobytes(), fmt


def float_mask(mask: np.ndarray) -> bytes:
    """A float (H, W) mask in [0, 1] as an ``f32`` mask frame (``decode_mask`` reads it)."""
    return np.ascontiguousarray(mask, dtype="<f4").tobytes()


def decode_mask(data: bytes | memoryview, dtype: str, width: int, height: int) -> np.ndarray:
    """A mask frame (one sample per pixel, u8 0..255 or f32 0..1) -> float32 (H, W) in [0, 1]."""
    if dtype not in MASK_DTYPES:
        raise ValueError(f"unknown mask sample type {dtype!r}; expected one of {MASK_DTYPES}")
    size = 1 if dtype == "u8" else 4
    if len(data) != width * height * size:
        raise ValueError(f"mask frame is {len(data)} bytes; {width}x{height} {dtype} needs "
                         f"{width * height * size}")
    if dtype == "u8":
        samples = np.frombuffer(data, dtype=np.uint8).reshape(height, width)
        return np.divide(samples, np.float32(255.0), dtype=np.float32)
    return clamp_unit(np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(height, width))


def clamp_unit(samples: np.ndarray) -> np.ndarray:
    """Float samples into [0, 1] in place, the one rule for every float frame or file:
    NaN -> 0, +inf and anything above 1 -> 1, -inf and anything below 0 -> 0."""
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(samples, 0.0, 1.0, out=samples)
