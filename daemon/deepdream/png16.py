"""16-bit PNGs, which Pillow cannot hold in colour: decoded by torchvision (after a full check
here, since libpng's error path can take the process down), encoded here.  Errors are
``PngError``, one line without the file name (``imageio`` adds it)."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from deepdream_protocol.messages import first_line


class PngError(ValueError):
    """The PNG is damaged; one line."""


def bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) >= 26 and head[12:16] == b"IHDR" else 8


def read(path: Path) -> np.ndarray:
    import torch
    from torchvision.io import ImageReadMode, decode_png

    raw = path.read_bytes()
    _verify(raw)  # libpng's error path can take the whole process down
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    with warnings.catch_warnings():
        # torchvision 0.29 announces a move of its decoders to TorchCodec; until then this
        # is the one 16-bit RGB PNG decoder we already depend on.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            chw = decode_png(data, mode=ImageReadMode.UNCHANGED)
        except RuntimeError as exc:
            raise PngError(f"the PNG file is corrupt ({first_line(exc)})") from None
    return chw.permute(1, 2, 0).numpy().astype(np.float32) / 65535.0


SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG16_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def keyed(image: np.ndarray, key: Any) -> np.ndarray:
    """A 16-bit gray or RGB PNG with a tRNS chunk (``key``: its one transparent colour, in
    16-bit levels) with that colour's pixels clear, as the 8-bit files are read."""
    if key is None or isinstance(key, bytes) or image.shape[2] not in (1, 3):
        return image
    levels = np.rint(image * 65535.0)
    wanted = np.asarray(key, np.float32).reshape(-1)
    if wanted.size != image.shape[2]:
        return image
    clear = np.all(levels == wanted, axis=-1, keepdims=True)
    return np.concatenate([image, (~clear).astype(np.float32)], axis=-1)


def _verify(data: bytes) -> None:
    """Check a 16-bit PNG in full before libpng sees it: every chunk's CRC, the IHDR, the
    whole zlib stream of the IDATs, its length and each row's filter byte.  libpng reports
    these by a longjmp that torchvision does not survive (the process segfaults)."""

    def corrupt(why: str) -> PngError:
        return PngError(f"the PNG file is corrupt ({why})")

    if data[:8] != SIGNATURE:
        raise corrupt("no PNG signature")
    pos, ihdr, idat, seen_iend = 8, b"", bytearray(), False
    while pos < len(data):
        if pos + 12 > len(data):
            raise corrupt("truncated chunk")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise corrupt(f"{kind.decode('latin-1')!r} chunk cut short; the file is truncated")
        body = data[pos + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4:end])[0]:
            raise corrupt(f"bad checksum in the {kind.decode('latin-1')!r} chunk")
        if pos == 8 and kind != b"IHDR":
            raise corrupt("the first chunk is not IHDR")
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            seen_iend = True
            break
        pos = end
    if not seen_iend:
        raise corrupt("no IEND chunk; the file is truncated")
    if len(ihdr) != 13:
        raise corrupt("bad IHDR chunk")
    width, height, depth, colour, method, filter_method, interlace = struct.unpack(
        ">IIBBBBB", ihdr)
    if (depth != 16 or colour not in _PNG16_CHANNELS or method or filter_method
            or interlace > 1 or not 0 < width < 2**31 or not 0 < height < 2**31):
        raise corrupt("bad IHDR chunk")
    pixel_bytes = 2 * _PNG16_CHANNELS[colour]
    passes = [(width, height)] if interlace == 0 else [
        (-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7]
    passes = [(w, h) for w, h in passes if w > 0 and h > 0]
    expected = sum(h * (1 + w * pixel_bytes) for w, h in passes)
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(bytes(idat), expected + 1)
    except zlib.error as exc:
        raise corrupt(f"image data: {exc}") from None
    if len(raw) > expected:
        raise corrupt("more image data than the image's size")
    if len(raw) < expected or not inflate.eof:
        raise corrupt("image data cut short")
    at = 0
    for w, h in passes:
        stride = 1 + w * pixel_bytes
        filters = np.frombuffer(raw, np.uint8, count=h * stride, offset=at)[::stride]
        if filters.max(initial=0) > 4:
            raise corrupt("bad row filter")
        at += h * stride


def encode(samples: np.ndarray, text: Mapping[str, str] | None = None,
           icc_profile: bytes | None = None, dpi: tuple[float, float] | None = None,
           exif: bytes | None = None) -> bytes:
    """A 16-bit PNG; ``dpi`` goes in pHYs, ``exif`` (with or without its "Exif\\0\\0") in
    eXIf."""
    h, w, c = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = samples.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)  # filter 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    notes = b"".join(chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
                     for k, v in (text or {}).items())
    if icc_profile:  # (name, compression method 0, the zlib'd profile; before the data)
        notes += chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile))
    if dpi:  # pixels per metre, unit 1 (metre)
        notes += chunk(b"pHYs", struct.pack(">IIB", *(round(v / 0.0254) for v in dpi), 1))
    if exif:
        notes += chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))
    return (SIGNATURE + chunk(b"IHDR", ihdr) + notes
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
