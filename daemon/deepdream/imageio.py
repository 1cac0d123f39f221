"""Image files ⇄ float arrays (H, W, C) in [0, 1] for the command line.

8-bit files go through Pillow. Pillow has no 16-bit RGB(A), so 16-bit PNGs are decoded by
torchvision and written here, and 16-bit TIFFs are read and written here (strips; none,
deflate or LZW compression; horizontal predictor). Gray stays gray, alpha stays alpha.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import tempfile
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .pixelformat import clamp_unit

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


class ImageIOError(ValueError):
    """An image cannot be read or written; the message is one line naming the file."""


@dataclass(frozen=True)
class ImageInfo:
    bits: int  # 8 or 16 bits per sample in the file
    format: str  # PNG, JPEG, TIFF, ...
    # the file's embedded colour profile (a phone's Display P3, a camera's Adobe RGB): the
    # dream works on the stored values, and its file carries the same profile, so a
    # colour-managed viewer shows the colours the photo had
    icc_profile: bytes | None = None


# --- reading -----------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, ImageInfo]:
    """Read any Pillow-readable image; returns float32 (H, W, C), C = 1..4, and its depth."""
    path = Path(path)
    profile = None
    try:
        tiff = _tiff_tags(path)
        if tiff is not None and tiff[1].get(258, (8,))[0] == 16:
            image, bits, fmt = _read_tiff16(path, *tiff), 16, "TIFF"
            image = _upright(image, tiff[1].get(_ORIENTATION, (1,))[0])
            profile = bytes(tiff[1][_TIFF_ICC]) if _TIFF_ICC in tiff[1] else None
        else:
            with warnings.catch_warnings():
                # Pillow warns of a "decompression bomb" from 89 megapixels on; this is the
                # user's own file (the daemon has its own --max-pixels), and a size that
                # is too big is the error below.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    fmt = im.format or "?"
                    profile = im.info.get("icc_profile") or None
                    if fmt == "PNG" and _png_bit_depth(path) == 16:
                        image, bits = _read_png16(path), 16
                        image = _upright(image, im.getexif().get(_ORIENTATION, 1))
                    else:
                        image, bits = _from_pillow(im)
                        if im.mode in _CONVERTED_MODES:
                            # its profile is of the CMYK (Lab...) values, not of the RGB
                            # they were converted to: on the dream it would mislabel them
                            profile = None
    except FileNotFoundError:
        raise ImageIOError(f"{path}: no such file") from None
    except Image.DecompressionBombError:
        raise ImageIOError(f"{path}: the image is too big to read (over "
                           f"{2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels)") from None
    except UnidentifiedImageError:
        raise ImageIOError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as exc:
        if isinstance(exc, ImageIOError):
            raise
        raise ImageIOError(f"{path}: cannot read the image ({_first_line(exc)})") from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageIOError(f"{path}: the image has zero width or height")
    return image, ImageInfo(bits=bits, format=fmt, icc_profile=profile)


_ORIENTATION = 274  # the EXIF/TIFF tag: how the camera was held


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned as EXIF ``orientation`` says, as ImageOps.exif_transpose turns
    8-bit photos (that one cannot take 16-bit colour)."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    turn = turns.get(int(orientation))
    return np.ascontiguousarray(turn(image)) if turn is not None else image


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: modes _from_pillow converts to RGB from another colour model
_CONVERTED_MODES = ("CMYK", "LAB", "HSV", "YCbCr")


def _from_pillow(im: Image.Image) -> tuple[np.ndarray, int]:
    im = ImageOps.exif_transpose(im)  # photos shot upright come out upright
    mode = im.mode
    # a PNG's tRNS chunk: one colour of an RGB or gray image that is transparent
    keyed = mode in ("1", "L", "RGB", "P") and "transparency" in im.info
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im, dtype=np.float32)[..., None] / 65535.0, 16
    if mode == "I":
        return np.clip(np.asarray(im, dtype=np.float32), 0, 65535)[..., None] / 65535.0, 16
    if mode == "F":  # NaN -> 0 and the infinities clamped, as for a host's float frames
        return clamp_unit(np.array(im, dtype=np.float32))[..., None], 16
    if mode in ("1", "L") and not keyed:
        im = im.convert("L")
    elif mode in ("LA", "La", "PA") or (mode in ("1", "L") and keyed):
        im = im.convert("LA")
    elif mode in ("RGBA", "RGBa") or keyed:
        im = im.convert("RGBA")
    else:
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return (arr[..., None] if arr.ndim == 2 else arr), 8


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) >= 26 and head[12:16] == b"IHDR" else 8


def _read_png16(path: Path) -> np.ndarray:
    import torch
    from torchvision.io import ImageReadMode, decode_png

    raw = path.read_bytes()
    _verify_png(raw, path)  # libpng's error path can take the whole process down
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    with warnings.catch_warnings():
        # torchvision 0.29 announces a move of its decoders to TorchCodec; until then this
        # is the one 16-bit RGB PNG decoder we already depend on.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            chw = decode_png(data, mode=ImageReadMode.UNCHANGED)
        except RuntimeError as exc:
            raise ImageIOError(f"{path}: the PNG file is corrupt ({_first_line(exc)})") from None
    return chw.permute(1, 2, 0).numpy().astype(np.float32) / 65535.0


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG16_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def _verify_png(data: bytes, path: Path) -> None:
    """Check a 16-bit PNG in full before libpng sees it: every chunk's CRC, the IHDR, the
    whole zlib stream of the IDATs, its length and each row's filter byte.  libpng reports
    these by a longjmp that torchvision does not survive (the process segfaults)."""

    def corrupt(why: str) -> ImageIOError:
        return ImageIOError(f"{path}: the PNG file is corrupt ({why})")

    if data[:8] != _PNG_SIGNATURE:
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


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 7: "B", 16: "Q"}  # BYTE, SHORT, LONG, UNDEFINED, LONG8
_TIFF_ICC = 34675  # InterColorProfile (UNDEFINED bytes)


def _tiff_tags(path: Path) -> tuple[str, dict[int, tuple[int, ...]]] | None:
    """Byte order and integer tags of a classic TIFF's first IFD; None if not a TIFF."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:4] not in (b"II*\0", b"MM\0*"):
            return None
        e = "<" if head[:2] == b"II" else ">"
        f.seek(struct.unpack(e + "I", head[4:8])[0])
        (count,) = struct.unpack(e + "H", f.read(2))
        raw = f.read(12 * count)
        tags: dict[int, tuple[int, ...]] = {}
        for k in range(count):
            code, kind, n = struct.unpack(e + "HHI", raw[12 * k:12 * k + 8])
            if kind not in _TIFF_TYPES:
                continue
            size = struct.calcsize(_TIFF_TYPES[kind]) * n
            field = raw[12 * k + 8:12 * k + 12]
            if size > 4:
                back = f.tell()
                f.seek(struct.unpack(e + "I", field)[0])
                field = f.read(size)
                f.seek(back)
            tags[code] = struct.unpack(f"{e}{n}{_TIFF_TYPES[kind]}", field[:size])
    return e, tags


def _read_tiff16(path: Path, endian: str, tags: dict[int, tuple[int, ...]]) -> np.ndarray:
    def tag(code: int, default: int) -> int:
        return tags.get(code, (default,))[0]

    if 322 in tags:
        raise ImageIOError(f"{path}: tiled 16-bit TIFFs are not supported; save it with strips")
    if tag(284, 1) != 1:
        raise ImageIOError(f"{path}: planar 16-bit TIFFs are not supported; save it interleaved")
    if tag(339, 1) not in (1, 2):
        raise ImageIOError(f"{path}: only integer 16-bit TIFF samples are supported")
    width, height, channels = tag(256, 0), tag(257, 0), tag(277, 1)
    photometric = tag(262, 2)
    if channels not in (1, 2, 3, 4) or photometric not in (0, 1, 2):
        raise ImageIOError(f"{path}: only gray or RGB TIFFs (with alpha) are supported")
    compression, predictor = tag(259, 1), tag(317, 1)
    rows_per_strip = tag(278, height) or height
    row_bytes = width * channels * 2
    out = bytearray()
    if 273 not in tags or 279 not in tags or len(tags[273]) != len(tags[279]):
        raise ImageIOError(f"{path}: the TIFF has no valid StripOffsets/StripByteCounts; "
                           "the file is damaged")
    with open(path, "rb") as f:
        for i, (offset, count) in enumerate(zip(tags[273], tags[279], strict=True)):
            f.seek(offset)
            strip = _decompress(f.read(count), compression, path)
            rows = min(rows_per_strip, height - i * rows_per_strip)
            out += strip[: rows * row_bytes]
    if len(out) < height * row_bytes:
        raise ImageIOError(f"{path}: the TIFF's image data is truncated")
    arr = np.frombuffer(bytes(out), dtype=f"{endian}u2", count=height * width * channels)
    arr = arr.reshape(height, width, channels)
    if predictor == 2:  # horizontal differencing: each sample stored as delta to its left
        arr = np.cumsum(arr, axis=1, dtype=np.uint16)
    image = arr.astype(np.float32) / 65535.0
    if photometric == 0:  # WhiteIsZero
        image[..., :1] = 1.0 - image[..., :1]
    return image


def _decompress(data: bytes, compression: int, path: Path) -> bytes:
    if compression == 1:
        return data
    if compression in (8, 32946):
        return zlib.decompress(data)
    if compression == 5:
        return _lzw_decode(data)
    raise ImageIOError(
        f"{path}: 16-bit TIFF compression {compression} is not supported; save it "
        "uncompressed, with deflate or with LZW"
    )


def _lzw_decode(data: bytes) -> bytes:
    """TIFF's LZW (MSB-first codes, early change), as libtiff writes it."""
    out = bytearray()
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    bits, width, pos, prev = 0, 9, 0, b""
    bitbuf = 0
    nbits = len(data) * 8
    while pos + width <= nbits:
        while bits < width:
            bitbuf = (bitbuf << 8) | data[pos // 8]
            bits += 8
            pos += 8
        bits -= width
        code = (bitbuf >> bits) & ((1 << width) - 1)
        if code == 257:  # end of information
            break
        if code == 256:  # clear
            table = table[:258]
            width, prev = 9, b""
            continue
        if code < len(table):
            entry = table[code]
            if prev:
                table.append(prev + entry[:1])
        elif prev:
            entry = prev + prev[:1]
            table.append(entry)
        else:
            raise ValueError("corrupt LZW data")
        out += entry
        prev = entry
        if len(table) + 1 >= (1 << width) and width < 12:
            width += 1
    return bytes(out)


# --- writing -----------------------------------------------------------------------------


def output_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageIOError(
            f"{path}: unknown output type {suffix or '(none)'!r}; use .png, .jpg or .tif"
        )
    return FORMATS[suffix]


def check_output(path: str | os.PathLike[str], channels: int) -> str:
    """Everything about an output path that can be checked before the work: its type, its
    folder, that it is no folder itself, that the format keeps ``channels``; the format."""
    fmt = output_format(path)
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ImageIOError(f"{path} is a folder; give a file name to save to")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ImageIOError(f"{path}: the folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageIOError(f"{path}: cannot write into the folder {folder}")
    if fmt == "JPEG" and channels in (2, 4):
        raise ImageIOError(f"{path}: JPEG cannot keep the alpha channel; write .png or .tif")
    return fmt


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` should get: that of the file it replaces, else what the umask
    gives a new file (mkstemp's 0600 would hide the result from everyone else)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_image(path: str | os.PathLike[str], image: np.ndarray, bits: int = 8,
                text: Mapping[str, str] | None = None,
                icc_profile: bytes | None = None) -> None:
    """Write float (H, W, C) in [0, 1] as PNG, JPEG or TIFF (by extension), 8 or 16 bits.

    ``text``: Latin-1 key/value notes stored in a PNG (tEXt chunks; ``png_text`` reads them).
    ``icc_profile``: the colour profile to embed (``ImageInfo.icc_profile`` of the input).
    Written to a temporary file and renamed, so a failure never leaves a partial file.
    """
    path = Path(path)
    fmt = check_output(path, image.shape[2])
    if fmt == "JPEG":
        bits = 8
    if text and fmt != "PNG":
        raise ImageIOError(f"{path}: only PNG files keep text notes")
    notes = dict(text or {})
    fd, tmp = tempfile.mkstemp(prefix=".deepdream-", suffix=path.suffix, dir=path.parent or ".")
    try:
        os.chmod(tmp, _new_file_mode(path))
        with os.fdopen(fd, "wb") as f:
            if bits == 16 and fmt == "PNG":
                f.write(_encode_png16(quantise(image, 16), notes, icc_profile))
            elif bits == 16:
                f.write(_encode_tiff16(quantise(image, 16), icc_profile))
            else:
                samples = quantise(image, 8)
                im = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples,
                                     _PIL_MODES[samples.shape[2]])
                options: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
                if icc_profile:
                    options["icc_profile"] = icc_profile
                if notes:
                    options["pnginfo"] = PngImagePlugin.PngInfo()
                    for key, value in notes.items():
                        options["pnginfo"].add_text(key, value)
                im.save(f, fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def quantise(image: np.ndarray, bits: int) -> np.ndarray:
    """[0, 1] samples as the 8- or 16-bit integers ``write_image`` stores (clipped, rounded)."""
    top = 65535.0 if bits == 16 else 255.0
    scaled = np.rint(np.clip(image, 0.0, 1.0) * top)
    return scaled.astype(np.uint16 if bits == 16 else np.uint8)


def _encode_png16(samples: np.ndarray, text: Mapping[str, str] | None = None,
                  icc_profile: bytes | None = None) -> bytes:
    h, w, c = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = samples.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)  # filter 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    notes = b"".join(_png_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
                     for k, v in (text or {}).items())
    if icc_profile:  # (name, compression method 0, the zlib'd profile; before the data)
        notes += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + notes
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def png_text(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text notes (tEXt/iTXt/zTXt before the image data) of a PNG; {} for other files."""
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", None) if im.format == "PNG" else None
            return {k: v for k, v in (text or {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return {}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_tiff16(samples: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    """Little-endian baseline TIFF: deflate strips of about 64 KiB, then the IFD."""
    h, w, c = samples.shape
    data = samples.astype("<u2")
    rows_per_strip = max(1, 65536 // (w * c * 2))
    strips = [zlib.compress(data[y:y + rows_per_strip].tobytes(), 6)
              for y in range(0, h, rows_per_strip)]
    offsets, at = [], 8
    for strip in strips:
        offsets.append(at)
        at += len(strip)
    body = b"".join(strips) + b"\0" * (len(b"".join(strips)) % 2)
    short, long_ = "H", "I"
    entries: list[tuple[int, str, list[int]]] = [
        (256, long_, [w]), (257, long_, [h]), (258, short, [16] * c), (259, short, [8]),
        (262, short, [1 if c <= 2 else 2]), (273, long_, offsets), (277, short, [c]),
        (278, long_, [rows_per_strip]), (279, long_, [len(s) for s in strips]),
        (284, short, [1]),
    ]
    if c in (2, 4):
        entries.append((338, short, [2]))  # the extra sample is unassociated alpha
    if icc_profile:  # the highest tag, so its odd-sized bytes come after the other values
        entries.append((_TIFF_ICC, "B", list(icc_profile)))
    ifd_at = 8 + len(body)
    values_at = ifd_at + 2 + 12 * len(entries) + 4
    ifd, values = struct.pack("<H", len(entries)), b""
    for code, kind, vals in entries:
        packed = struct.pack(f"<{len(vals)}{kind}", *vals)
        type_id = {short: 3, long_: 4, "B": 7}[kind]
        if len(packed) <= 4:
            ifd += struct.pack("<HHI", code, type_id, len(vals)) + packed.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", code, type_id, len(vals), values_at + len(values))
            values += packed
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", ifd_at) + body + ifd + values
