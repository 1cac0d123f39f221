"""Files that are odd or hostile, and metadata that does not fit: each image reads as its
own tools show it, or is refused in one line; nothing costs memory out of proportion to the
image, and a dream is never lost to its metadata."""

from __future__ import annotations

import struct
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from deepdream import png16
from deepdream.imageio import ImageIOError, read_image, write_image
from PIL import Image


def _tiff(entries: list[tuple[int, int, int, int]], data: bytes = b"",
          big: bool = False) -> bytes:
    """A little-endian TIFF of one IFD right after the header, ``data`` after the IFD;
    entries are (tag, type, count, value or offset)."""
    if big:
        ifd = struct.pack("<Q", len(entries)) + b"".join(
            struct.pack("<HHQQ", *e) for e in entries) + struct.pack("<Q", 0)
        return b"II" + struct.pack("<HHHQ", 43, 8, 0, 16) + ifd + data
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", *e) for e in entries) + struct.pack("<I", 0)
    return b"II" + struct.pack("<HI", 42, 8) + ifd + data


def _gray16(width: int, height: int, compression: int, data_at: int,
            data_size: int) -> list[tuple[int, int, int, int]]:
    return [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 16), (259, 3, 1, compression),
            (262, 3, 1, 1), (273, 4, 1, data_at), (277, 3, 1, 1), (278, 4, 1, height),
            (279, 4, 1, data_size)]


def _lzw_growing(codes: int) -> bytes:
    """An LZW stream whose every code is the newest table entry, each one byte longer
    than the last: a few KB that would decode to hundreds of MB."""
    table, width, out = 258, 9, [(256, 9), (0, 9)]
    while len(out) < codes:
        if table + 1 >= (1 << width) and width < 12:
            width += 1
        out.append((min(table, 4095), width))
        table += 1
    acc = nbits = 0
    data = bytearray()
    for code, w in out:
        acc, nbits = (acc << w) | code, nbits + w
        while nbits >= 8:
            nbits -= 8
            data.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1
    return bytes(data + (bytes([(acc << (8 - nbits)) & 0xFF]) if nbits else b""))


def test_an_lzw_strip_decodes_no_more_than_its_image_holds(tmp_path: Path) -> None:
    """A 1x1 16-bit TIFF of 12 KB used to take about 100 MB to read (the strip was
    decoded whole, then cut to the image's two bytes; the table grew past LZW's 4096)."""
    data = _lzw_growing(8000)
    header = 8 + 2 + 12 * 9 + 4
    path = tmp_path / "bomb.tif"
    path.write_bytes(_tiff(_gray16(1, 1, 5, header, len(data)), data))
    tracemalloc.start()
    try:
        image, info = read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.shape == (1, 1, 1) and info.bits == 16
    assert peak < 5_000_000, peak


def test_a_tag_past_the_end_of_the_file_leaves_the_image_readable(tmp_path: Path) -> None:
    """An XMP tag whose value lies past the end (a damaged or cut-down file): Pillow reads
    the image, and so does the dream (it used to be refused for the tag); Pillow's warning
    is a note, not a Python warning."""
    pixels = bytes(range(2 * 2 * 3))
    entries = [(256, 4, 1, 2), (257, 4, 1, 2), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3), (278, 4, 1, 2),
               (279, 4, 1, len(pixels)), (700, 1, 123, 10_000)]
    header = 8 + 2 + 12 * len(entries) + 4
    entries[5] = (273, 4, 1, header)
    path = tmp_path / "xmp.tif"
    path.write_bytes(_tiff(entries, pixels))
    image, info = read_image(path)
    assert info.bits == 8
    assert info.note and info.note.startswith(f"{path}: ")  # Pillow's warning, told as a note
    assert np.array_equal(np.rint(image * 255).astype(np.uint8).reshape(-1), list(pixels))


def test_a_deep_tiffs_damaged_tag_is_a_note_too(tmp_path: Path) -> None:
    """(The 16-bit reader's Pillow pass for the EXIF warned on stderr instead.)"""
    pixels = np.arange(4, dtype="<u2").tobytes()
    entries = [*_gray16(2, 2, 1, 0, len(pixels)), (700, 1, 123, 10_000)]
    header = 8 + 2 + 12 * len(entries) + 4
    entries[5] = (273, 4, 1, header)
    path = tmp_path / "xmp16.tif"
    path.write_bytes(_tiff(entries, pixels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, info = read_image(path)
    assert info.bits == 16 and image.shape == (2, 2, 1)
    assert info.note and info.note.startswith(f"{path}: ")


@pytest.mark.parametrize("kind", [16, 2])  # LONG8 and ASCII, of a count no file could hold
def test_a_tag_count_no_file_could_hold_is_a_one_line_error(tmp_path: Path,
                                                            kind: int) -> None:
    """(It used to end in OverflowError, a traceback.)"""
    path = tmp_path / "count.tif"
    path.write_bytes(_tiff([(256, 4, 1, 1), (257, 4, 1, 1), (258, 3, 1, 16),
                            (700, kind, 2**62, 100)], big=True))
    with pytest.raises(ImageIOError) as err:
        read_image(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_palette_with_alpha_keeps_its_colours(tmp_path: Path) -> None:
    """A palette image with an alpha channel ("PA": TIFF, JPEG 2000) used to be read gray."""
    im = Image.new("PA", (4, 3))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putdata([(1, 200)] * 12)
    path = tmp_path / "pa.tif"
    im.save(path)
    image, _ = read_image(path)
    assert image.shape == (3, 4, 4)
    assert np.array_equal(np.rint(image[0, 0] * 255), [255, 0, 0, 200])


def _camera_exif(description: str = "") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS Test"  # Make, Model
    if description:
        exif[0x010E] = description  # ImageDescription (ImageJ, scanners write long ones)
    exif.get_ifd(0x8769)[0x9003] = "2026:11:27 09:00:00"  # DateTimeOriginal
    return exif


def test_a_pngs_exif_after_its_pixels_is_kept(tmp_path: Path) -> None:
    """The eXIf chunk may follow the image data; it was read before the pixels were, so
    it was lost."""
    plain = tmp_path / "plain.png"
    Image.new("RGB", (5, 4), (10, 20, 30)).save(plain)
    data = plain.read_bytes()
    end = data.rindex(b"IEND") - 4  # the IEND chunk's length field
    exif = _camera_exif().tobytes()[6:]  # (a PNG's eXIf holds no "Exif\0\0" header)
    path = tmp_path / "late.png"
    path.write_bytes(data[:end] + png16.chunk(b"eXIf", exif) + data[end:])
    _, info = read_image(path)
    assert info.exif is not None
    got = Image.Exif()
    got.load(info.exif)
    assert got[0x010F] == "Canon"


@pytest.mark.parametrize("dpi", [(300, 300), (72.5, 150), None])
def test_an_8_bit_tiffs_resolution_is_its_own(tmp_path: Path, dpi) -> None:
    """Pillow gives an 8-bit TIFF's resolution as fractions, which were dropped, and 1 dpi
    to a TIFF without one, which was written into the dream."""
    path = tmp_path / "scan.tif"
    Image.new("RGB", (6, 4)).save(path, **({"dpi": dpi} if dpi else {}))
    assert read_image(path)[1].dpi == (tuple(float(v) for v in dpi) if dpi else None)


def test_exif_too_long_for_a_jpeg_loses_its_longest_text_not_the_dream(
        tmp_path: Path) -> None:
    """A JPEG holds 64 KB of EXIF; a scanner's long description made the write fail after
    the dream, and nothing was saved."""
    out = tmp_path / "out.jpg"
    exif = _camera_exif("y" * 70_000).tobytes()
    write_image(out, np.full((4, 5, 3), 0.5, np.float32), exif=exif)
    with Image.open(out) as im:
        got = im.getexif()
    assert (got[0x010F], got[0x0110]) == ("Canon", "EOS Test")
    assert got.get_ifd(0x8769)[0x9003] == "2026:11:27 09:00:00"
    assert 0x010E not in got



def test_deep_samples_count_against_the_size_limit_by_their_bytes(tmp_path: Path) -> None:
    """A float64 RGBA TIFF passed the pixel limit with four times the memory of the largest
    16-bit RGBA one (about 19 GB at the limit, from a file of a few MB): refused in one
    line before anything is read.  The same size in 16 bits is within the limit."""
    from PIL import Image as PILImage

    side = int((2 * PILImage.MAX_IMAGE_PIXELS) ** 0.5 * 0.9)  # under the pixel limit
    entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 64), (259, 3, 1, 1),
               (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 4), (278, 4, 1, 1),
               (279, 4, 1, 0), (339, 3, 1, 3)]
    path = tmp_path / "huge.tif"
    path.write_bytes(_tiff(entries))
    with pytest.raises(ImageIOError, match="too big to read .* of 32 bytes each") as err:
        read_image(path)
    assert "\n" not in str(err.value)
