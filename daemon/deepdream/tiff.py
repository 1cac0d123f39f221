"""TIFF files Pillow cannot read or write: 16-, 32- and 64-bit samples, integer or float,
gray or RGB with or without alpha (what GIMP, Krita and scientific tools save).

Reads classic TIFF and BigTIFF strips (none, deflate, LZW, PackBits or LZMA compression;
horizontal or floating-point predictor) and writes baseline deflate TIFFs.  LZW and PackBits
are decoded here: tifffile, the usual library, needs the large imagecodecs package for LZW.
Errors are ``TiffError``, one line without the file name (``imageio`` adds it).
"""

from __future__ import annotations

import lzma
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np


class TiffError(ValueError):
    """The TIFF is damaged or of a kind this reader does not take; one line."""


# BYTE, SHORT, LONG, RATIONAL (two LONGs: numerator, denominator), UNDEFINED, LONG8
_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 5: "I", 7: "B", 16: "Q"}
RATIONAL = 5
ICC_PROFILE = 34675  # InterColorProfile (UNDEFINED bytes)


class _Layout:
    """A TIFF's byte order and offset size: classic (4-byte offsets, 12-byte IFD entries) or
    BigTIFF (8-byte offsets, 20-byte entries: large panoramas, tifffile's output)."""

    def __init__(self, head: bytes) -> None:
        self.endian = "<" if head[:2] == b"II" else ">"
        self.big = head[:4] in (b"II+\0", b"MM\0+")
        self.offset = self.endian + ("Q" if self.big else "I")  # an offset, or a count
        self.count = self.endian + ("Q" if self.big else "H")  # an IFD's number of entries
        self.entry = 20 if self.big else 12

    @staticmethod
    def of(head: bytes) -> _Layout | None:
        return _Layout(head) if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+") else None

    def first_ifd(self, head: bytes) -> int:
        return struct.unpack(self.offset, head[8:16] if self.big else head[4:8])[0]

    def read(self, f: BinaryIO, fmt: str) -> int:
        data = f.read(struct.calcsize(fmt))
        if len(data) < struct.calcsize(fmt):
            raise EOFError
        return struct.unpack(fmt, data)[0]


def tags(path: Path) -> tuple[str, dict[int, tuple[int, ...]]] | None:
    """Byte order and integer tags of a TIFF's first IFD; None if not a TIFF.  A tag whose
    value lies past the end of the file is left out (Pillow too reads such a file: the tags
    it needs are whole), and so a crafted count costs no memory."""
    with open(path, "rb") as f:
        head = f.read(16)
        layout = _Layout.of(head)
        if layout is None:
            return None
        end = os.fstat(f.fileno()).st_size
        e, inline = layout.endian, struct.calcsize(layout.offset)
        f.seek(layout.first_ifd(head))
        count = layout.read(f, layout.count)
        if layout.entry * count > end:
            raise TiffError("the file is damaged (its first image lists more tags than the "
                            "file holds)")
        raw = f.read(layout.entry * count)
        tags: dict[int, tuple[int, ...]] = {}
        for k in range(count):
            entry = raw[layout.entry * k:layout.entry * (k + 1)]
            code, kind = struct.unpack(e + "HH", entry[:4])
            (n,) = struct.unpack(layout.offset, entry[4:4 + inline])
            if kind not in _TIFF_TYPES:
                continue
            n *= 2 if kind == RATIONAL else 1  # (read as numerator, denominator, ...)
            size = struct.calcsize(_TIFF_TYPES[kind]) * n
            field = entry[4 + inline:]
            if size > inline:
                at = struct.unpack(layout.offset, field)[0]
                if at + size > end:
                    continue
                back = f.tell()
                f.seek(at)
                field = f.read(size)
                f.seek(back)
            if len(field) >= size:  # (an entry cut short by the end of the file: left out)
                tags[code] = struct.unpack(f"{e}{n}{_TIFF_TYPES[kind]}", field[:size])
    return e, tags


#: ``pages`` counts no further (a crafted chain of tiny pages would cost time and memory)
PAGES_COUNTED = 1000


def pages(path: Path) -> int:
    """How many images (IFDs) a TIFF chains, up to PAGES_COUNTED + 1: ``read_deep``
    reads the first only.  A loop or an offset past the end stops the count (the first page
    may still read)."""
    seen: set[int] = set()
    with open(path, "rb") as f:
        head = f.read(16)
        layout = _Layout.of(head)
        if layout is None:
            return 1
        offset = layout.first_ifd(head)
        try:
            while offset and offset not in seen and len(seen) <= PAGES_COUNTED:
                f.seek(offset)
                count = layout.read(f, layout.count)
                f.seek(offset + struct.calcsize(layout.count) + layout.entry * count)
                link = layout.read(f, layout.offset)
                seen.add(offset)
                offset = link
        except EOFError:
            pass
    return max(1, len(seen))


#: BitsPerSample read here (Pillow reads 8 bits, and 32 for gray only)
DEEP_BITS = (16, 32, 64)
#: (SampleFormat, BitsPerSample) -> numpy type; SampleFormat 1 unsigned, 2 signed, 3 float
_TIFF_SAMPLES = {(1, 16): "u2", (2, 16): "i2", (3, 16): "f2", (1, 32): "u4", (2, 32): "i4",
                 (3, 32): "f4", (1, 64): "u8", (2, 64): "i8", (3, 64): "f8"}


#: compressions a TIFF predictor goes with: LZW, deflate (both codes), LZMA
_PREDICTED = (5, 8, 32946, 34925)


def read_deep(path: Path, endian: str,
                    tags: dict[int, tuple[int, ...]]) -> tuple[np.ndarray, bool]:
    """A 16-, 32- or 64-bit TIFF's samples, (H, W, C) of their own type, and whether that
    type says where white is (unsigned 16-bit)."""
    def tag(code: int, default: int) -> int:
        return tags.get(code, (default,))[0]

    bits, sample_format = tag(258, 8), tag(339, 1)
    if any(b != bits for b in tags.get(258, ())):
        raise TiffError("TIFFs whose channels have different depths are not "
                           "supported")
    if 322 in tags:
        raise TiffError(f"tiled {bits}-bit TIFFs are not supported; save it with "
                           "strips")
    if tag(284, 1) != 1:
        raise TiffError(f"planar {bits}-bit TIFFs are not supported; save it "
                           "interleaved")
    if (sample_format, bits) not in _TIFF_SAMPLES:
        raise TiffError(f"{bits}-bit TIFF samples of format {sample_format} are "
                           "not supported; save it as 16-bit integers or 32-bit floats")
    width, height, channels = tag(256, 0), tag(257, 0), tag(277, 1)
    photometric = tag(262, 2)
    if channels not in (1, 2, 3, 4) or photometric not in (0, 1, 2) or (
            photometric == 2 and channels < 3):
        raise TiffError("only gray or RGB TIFFs (with alpha) are supported")
    compression, predictor = tag(259, 1), tag(317, 1)
    rows_per_strip = tag(278, height) or height
    size = bits // 8
    row_bytes = width * channels * size
    if 273 not in tags or 279 not in tags or len(tags[273]) != len(tags[279]):
        raise TiffError("the TIFF has no valid StripOffsets/StripByteCounts; "
                           "the file is damaged")
    out = bytearray()
    with open(path, "rb") as f:
        for i, (offset, count) in enumerate(zip(tags[273], tags[279], strict=True)):
            rows = min(rows_per_strip, height - i * rows_per_strip)
            if rows <= 0:
                break
            f.seek(offset)
            strip = _decompress(f.read(count), compression, bits, rows * row_bytes)
            out += strip[: rows * row_bytes]
    if len(out) < height * row_bytes:
        raise TiffError("the TIFF's image data is truncated")
    raw = np.frombuffer(bytes(out), dtype=np.uint8, count=height * row_bytes)
    dtype = np.dtype(_TIFF_SAMPLES[sample_format, bits]).newbyteorder(endian)
    if compression not in _PREDICTED:
        predictor = 1  # (libtiff writes the tag but predicts only before these)
    if predictor == 3:  # floating point: each row's bytes split by significance, differenced
        rows = raw.reshape(height, width * size, channels)
        rows = np.cumsum(rows, axis=1, dtype=np.uint8)  # (wraps around, as the encoder's)
        planes = rows.reshape(height, size, width * channels)  # most significant plane first
        raw = np.ascontiguousarray(planes.transpose(0, 2, 1))
        dtype = dtype.newbyteorder(">")
    arr = raw.view(dtype).reshape(height, width, channels)
    if predictor == 2:  # horizontal differencing: each sample stored as delta to its left
        if dtype.kind == "f":
            raise TiffError("the TIFF's predictor does not fit float samples")
        arr = np.cumsum(arr, axis=1, dtype=arr.dtype.newbyteorder("="))
    elif predictor not in (1, 3):
        raise TiffError(f"TIFF predictor {predictor} is not supported")
    return arr.astype(arr.dtype.newbyteorder("="), copy=False), (sample_format, bits) == (1, 16)


def unpremultiply(image: np.ndarray) -> np.ndarray:
    """[0, 1] colour premultiplied by the alpha (the last channel) as straight colour."""
    alpha = image[..., -1:]
    colour = np.divide(image[..., :-1], alpha, out=np.zeros_like(image[..., :-1]),
                       where=alpha > 0)
    return np.concatenate([np.clip(colour, 0.0, 1.0), alpha], axis=-1)


def _decompress(data: bytes, compression: int, bits: int, size: int) -> bytes:
    """One strip's bytes; ``size``: how many it should have (a bound on what to inflate)."""
    if compression == 1:
        return data
    if compression in (8, 32946):
        inflate = zlib.decompressobj()
        return inflate.decompress(data, size)
    if compression == 5:
        return _lzw_decode(data, size)
    if compression == 32773:
        return _packbits_decode(data, size)
    if compression == 34925:
        return lzma.LZMADecompressor().decompress(data, size)
    raise TiffError(
        f"{bits}-bit TIFF compression {compression} is not supported; save it "
        "uncompressed, with deflate or with LZW"
    )


def _packbits_decode(data: bytes, size: int) -> bytes:
    """TIFF's PackBits: a count byte n, then n + 1 literal bytes (n < 128) or one byte
    repeated 257 - n times (n > 128); 128 is nothing."""
    out, pos = bytearray(), 0
    while pos < len(data) and len(out) < size:
        n = data[pos]
        if n < 128:
            out += data[pos + 1:pos + 2 + n]
            pos += 2 + n
        elif n > 128:
            out += data[pos + 1:pos + 2] * (257 - n)
            pos += 2
        else:
            pos += 1
    return bytes(out)


#: LZW's codes are at most 12 bits: a table never holds more entries
_LZW_TABLE = 4096


def _lzw_decode(data: bytes, size: int) -> bytes:
    """TIFF's LZW (MSB-first codes, early change), as libtiff writes it; no more than
    ``size`` bytes (a crafted strip of a 1x1 image must not fill the memory)."""
    out = bytearray()
    table: list[bytes] = [bytes([i]) for i in range(256)] + [b"", b""]
    bits, width, pos, prev = 0, 9, 0, b""
    bitbuf = 0
    nbits = len(data) * 8
    while pos + width <= nbits and len(out) < size:
        while bits < width:
            bitbuf = (bitbuf << 8) | data[pos // 8]
            bits += 8
            pos += 8
        bits -= width
        code = (bitbuf >> bits) & ((1 << width) - 1)
        bitbuf &= (1 << bits) - 1  # only the unread bits: a growing buffer made it quadratic
        if code == 257:  # end of information
            break
        if code == 256:  # clear
            table = table[:258]
            width, prev = 9, b""
            continue
        if code < len(table):
            entry = table[code]
            if prev and len(table) < _LZW_TABLE:
                table.append(prev + entry[:1])
        elif prev and code == len(table) < _LZW_TABLE:
            entry = prev + prev[:1]
            table.append(entry)
        else:
            raise ValueError("corrupt LZW data")
        out += entry
        prev = entry
        if len(table) + 1 >= (1 << width) and width < 12:
            width += 1
    return bytes(out[:size])


def encode(samples: np.ndarray, icc_profile: bytes | None = None,
           dpi: tuple[float, float] | None = None,
           tags_at: Callable[[int], bytes] | None = None) -> bytes:
    """Little-endian baseline TIFF of ``samples``' own type (16-bit unsigned for the
    dreams; others for tests): deflate strips of about 64 KiB, then the IFD.

    ``tags_at(offset)``: more tags (the photo's camera, date and place), as a little-endian
    IFD serialised to start at ``offset`` (its values and sub-IFDs placed from there): it
    goes after the strips, and its entries into the image's IFD."""
    h, w, c = samples.shape
    data = samples.astype(samples.dtype.newbyteorder("<"))
    size = data.dtype.itemsize
    sample_format = {"u": 1, "i": 2, "f": 3}[data.dtype.kind]
    rows_per_strip = max(1, 65536 // (w * c * size))
    strips = [zlib.compress(data[y:y + rows_per_strip].tobytes(), 6)
              for y in range(0, h, rows_per_strip)]
    offsets, at = [], 8
    for strip in strips:
        offsets.append(at)
        at += len(strip)
    body = b"".join(strips) + b"\0" * (len(b"".join(strips)) % 2)
    short, long_ = "H", "I"
    entries: list[tuple[int, str, list[int]]] = [
        (256, long_, [w]), (257, long_, [h]), (258, short, [8 * size] * c), (259, short, [8]),
        (262, short, [1 if c <= 2 else 2]), (273, long_, offsets), (277, short, [c]),
        (278, long_, [rows_per_strip]), (279, long_, [len(s) for s in strips]),
        (284, short, [1]),
    ]
    if sample_format != 1:
        entries.append((339, short, [sample_format] * c))
    if c in (2, 4):
        entries.append((338, short, [2]))  # the extra sample is unassociated alpha
    if dpi:  # X and YResolution (in hundredths), ResolutionUnit: inch
        entries += [(282, "R", [round(dpi[0] * 100), 100]),
                    (283, "R", [round(dpi[1] * 100), 100]), (296, short, [2])]
    if icc_profile:
        entries.append((ICC_PROFILE, "B", list(icc_profile)))
    more, more_entries = b"", {}  # (the tags from ``tags_at``, and its raw entries)
    if tags_at is not None:
        more = tags_at(8 + len(body))
        own = {code for code, _, _ in entries}
        for i in range(struct.unpack_from("<H", more)[0]):
            entry = more[2 + 12 * i:14 + 12 * i]
            code = struct.unpack_from("<H", entry)[0]
            if code not in own:  # (how the pixels are stored is the image's own to say)
                more_entries[code] = entry
        more += b"\0" * (len(more) % 2)  # (the IFD starts on a word boundary)
    ifd_at = 8 + len(body) + len(more)
    values_at = ifd_at + 2 + 12 * (len(entries) + len(more_entries)) + 4
    packed_entries, values = dict(more_entries), b""
    for code, kind, vals in entries:
        packed = struct.pack(f"<{len(vals)}{'I' if kind == 'R' else kind}", *vals)
        type_id = {short: 3, long_: 4, "R": RATIONAL, "B": 7}[kind]
        count = len(vals) // 2 if kind == "R" else len(vals)
        if len(packed) <= 4:
            packed_entries[code] = (struct.pack("<HHI", code, type_id, count)
                                    + packed.ljust(4, b"\0"))
        else:
            packed_entries[code] = struct.pack("<HHII", code, type_id, count,
                                               values_at + len(values))
            values += packed
            values += b"\0" * (len(values) % 2)  # (each value on a word boundary)
    # (TIFF wants the tags in ascending order)
    ifd = (struct.pack("<H", len(packed_entries))
           + b"".join(packed_entries[code] for code in sorted(packed_entries))
           + struct.pack("<I", 0))
    return b"II*\0" + struct.pack("<I", ifd_at) + body + more + ifd + values
