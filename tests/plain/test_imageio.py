"""Image files keep their depth, gray stays gray, alpha stays alpha; bad files are clear
one-line errors and a failed write leaves nothing behind."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from deepdream.imageio import ImageIOError, read_image, write_image
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def samples(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 65536, (h, w, c)) / 65535).astype(np.float32)


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_round_trip_keeps_depth_and_channels(tmp_path: Path, ext: str, bits: int,
                                             channels: int) -> None:
    image = samples(13, 17, channels)
    path = tmp_path / f"x.{ext}"
    write_image(path, image, bits=bits)
    back, info = read_image(path)
    assert info.bits == bits and back.shape == image.shape
    top = 65535 if bits == 16 else 255
    assert np.array_equal(np.rint(back * top), np.rint(image * top))


def _profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


@pytest.mark.parametrize(("ext", "bits", "channels"), [
    ("png", 8, 3), ("png", 16, 4), ("jpg", 8, 3), ("tif", 8, 3), ("tif", 16, 1), ("tif", 16, 3)])
def test_the_colour_profile_is_kept(tmp_path: Path, ext: str, bits: int, channels: int) -> None:
    """A photo's embedded profile (a phone's Display P3, a camera's Adobe RGB) goes into the
    file written, so colour-managed programs show its colours as they were."""
    profile = _profile()
    path = tmp_path / f"x.{ext}"
    write_image(path, samples(13, 17, channels), bits=bits, icc_profile=profile)
    assert read_image(path)[1].icc_profile == profile
    if (ext, bits, channels) != ("tif", 16, 3):  # (Pillow cannot open 16-bit RGB TIFFs)
        with Image.open(path) as im:
            assert im.info.get("icc_profile") == profile  # what other programs see
    write_image(path, samples(13, 17, channels), bits=bits)
    assert read_image(path)[1].icc_profile is None


def test_16_bit_files_other_programs_read(tmp_path: Path) -> None:
    image = samples(9, 11, 3)
    write_image(tmp_path / "x.png", image, bits=16)
    write_image(tmp_path / "g.tif", image[..., :1], bits=16)
    assert Image.open(tmp_path / "x.png").mode == "RGB"  # a valid PNG (Pillow shows 8 bits)
    gray = np.asarray(Image.open(tmp_path / "g.tif"))
    assert gray.dtype == np.uint16 and np.array_equal(gray, np.rint(image[..., 0] * 65535))


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate", None])
def test_compressed_16_bit_tiffs_from_other_programs(tmp_path: Path, compression) -> None:
    values = np.random.default_rng(1).integers(0, 65536, (40, 50)).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "c.tif", compression=compression)
    back, info = read_image(tmp_path / "c.tif")
    assert info.bits == 16 and np.array_equal(np.rint(back[..., 0] * 65535), values)


def test_jpeg_is_8_bit_and_refuses_alpha(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", samples(16, 16, 3), bits=16)
    assert read_image(tmp_path / "x.jpg")[1].bits == 8
    with pytest.raises(ImageIOError, match="JPEG cannot keep the alpha channel"):
        write_image(tmp_path / "y.jpg", samples(16, 16, 4))
    assert not (tmp_path / "y.jpg").exists()


def test_palette_images_with_transparency_keep_it(tmp_path: Path) -> None:
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.info["transparency"] = 0
    im.putpixel((0, 0), 0)
    im.save(tmp_path / "p.png", transparency=0)
    image, _ = read_image(tmp_path / "p.png")
    assert image.shape == (4, 4, 4) and image[0, 0, 3] == 0 and image[1, 1, 3] == 1


@pytest.mark.parametrize(("mode", "clear", "channels"), [("RGB", (255, 0, 0), 4), ("L", 7, 2)])
def test_rgb_and_gray_pngs_with_a_transparent_colour_keep_it(tmp_path: Path, mode: str,
                                                              clear: object, channels: int) -> None:
    """A PNG's tRNS chunk makes one colour transparent in RGB and gray images too, not only
    in palette ones."""
    im = Image.new(mode, (4, 4), clear)
    im.putpixel((1, 1), (0, 200, 30) if mode == "RGB" else 99)
    im.save(tmp_path / "t.png", transparency=clear)
    image, _ = read_image(tmp_path / "t.png")
    assert image.shape == (4, 4, channels)
    assert image[0, 0, -1] == 0 and image[1, 1, -1] == 1


def test_a_cmyk_photos_profile_is_not_put_on_its_rgb_dream(tmp_path: Path) -> None:
    """A CMYK JPEG is read as RGB; its CMYK profile does not describe those pixels, and an
    RGB file carrying it is one colour-managed programs refuse or show wrongly."""
    cmyk_profile = bytearray(_profile())
    cmyk_profile[16:20] = b"CMYK"  # the header's data colour space
    Image.new("CMYK", (8, 6), (0, 200, 200, 0)).save(tmp_path / "c.jpg",
                                                       icc_profile=bytes(cmyk_profile))
    image, info = read_image(tmp_path / "c.jpg")
    assert image.shape == (6, 8, 3) and info.icc_profile is None
    write_image(tmp_path / "out.png", image, icc_profile=info.icc_profile)
    with Image.open(tmp_path / "out.png") as out:
        assert "icc_profile" not in out.info


@pytest.mark.parametrize(("content", "words"), [
    (None, "no such file"),
    (b"", "not an image file"),
    (b"hello, not an image", "not an image file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "not an image file"),
])
def test_unreadable_files(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageIOError, match=words) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_unknown_output_type_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match="unknown output type '.bmpx'"):
        write_image(tmp_path / "x.bmpx", samples(4, 4, 3))
    assert list(tmp_path.iterdir()) == []


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, type, body) of each chunk of a PNG file."""
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((pos, data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _corrupt_16_bit_png(tmp_path: Path, how: str) -> Path:
    path = tmp_path / "corrupt16.png"
    write_image(path, samples(40, 50, 3), bits=16)
    data = bytearray(path.read_bytes())
    pos, _, body = next(c for c in _png_chunks(bytes(data)) if c[1] == b"IDAT")
    if how == "truncated":
        del data[len(data) // 2:]
    else:  # overwrite bytes in the middle of the compressed image data
        start = pos + 8 + len(body) // 2
        data[start:start + 16] = b"\xa5" * 16
        if how == "overwritten, checksum fixed":  # only the zlib stream can tell
            new = bytes(data[pos + 4:pos + 8 + len(body)])
            data[pos + 8 + len(body):pos + 12 + len(body)] = struct.pack(">I", zlib.crc32(new))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how", ["overwritten", "overwritten, checksum fixed", "truncated"])
def test_corrupt_16_bit_png_is_a_one_line_error_not_a_crash(tmp_path: Path, how: str) -> None:
    path = _corrupt_16_bit_png(tmp_path, how)
    # libpng's own error path used to segfault the process: read it in a child
    code = ("import sys\nfrom deepdream.imageio import ImageIOError, read_image\n"
            "try:\n    read_image(sys.argv[1])\nexcept ImageIOError as e:\n"
            "    print(e)\n    sys.exit(2)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "daemon"),
                                                        str(ROOT / "shared")])}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stdout.startswith(f"{path}: the PNG file is corrupt")
    assert done.stdout.count("\n") == 1 and done.stderr == ""


def test_interlaced_16_bit_png_still_reads(tmp_path: Path) -> None:
    image = samples(13, 17, 4)
    q = np.rint(image * 65535).astype(">u2")
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):  # Adam7
        sub = q[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    (tmp_path / "i.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 17, 13, 16, 6, 0, 0, 1))
        + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    back, info = read_image(tmp_path / "i.png")
    assert info.bits == 16 and np.array_equal(np.rint(back * 65535), q.astype(np.float64))


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims a size (and holds no pixels)."""
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", body) + _chunk(b"IDAT", b"")
                     + _chunk(b"IEND", b""))
    return path


def test_an_image_over_pillows_size_limit_is_one_line(tmp_path: Path) -> None:
    path = _png_header_only(tmp_path / "huge.png", 30000, 30000)
    with pytest.raises(ImageIOError, match="huge.png: the image is too big") as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_no_decompression_bomb_warning_for_the_users_own_big_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_image(tmp_path / "big.png", samples(30, 40, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 pixels: between 1x and 2x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, _ = read_image(tmp_path / "big.png")
    assert image.shape == (30, 40, 3)


@pytest.mark.parametrize("drop", [273, 279])
def test_a_16_bit_tiff_without_strips_is_one_line(tmp_path: Path, drop: int) -> None:
    path = tmp_path / "x.tif"
    write_image(path, samples(8, 8, 1), bits=16)
    data = bytearray(path.read_bytes())
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for k in range(count):
        at = ifd + 2 + 12 * k
        if struct.unpack("<H", data[at:at + 2])[0] == drop:
            data[at:at + 2] = struct.pack("<H", 65000)  # an unknown private tag instead
    path.write_bytes(bytes(data))
    with pytest.raises(ImageIOError, match="x.tif: the TIFF has no valid StripOffsets"):
        read_image(path)


def test_float_tiff_nan_and_infinities_clamp_like_host_float_frames(tmp_path: Path) -> None:
    values = np.array([[np.inf, -np.inf, np.nan, 0.5, 2.0, -1.0]], np.float32)
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    image, info = read_image(tmp_path / "f.tif")
    assert info.bits == 16 and image.ravel().tolist() == [1.0, 0.0, 0.0, 0.5, 1.0, 0.0]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_photos_come_out_upright_like_8_bit_ones(tmp_path: Path, orientation: int,
                                                        ext: str) -> None:
    """A camera's orientation tag turns a 16-bit photo as Pillow turns an 8-bit one."""
    values = np.random.default_rng(orientation).integers(0, 256, (6, 10)).astype(np.uint8)
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(values).save(tmp_path / "e8.png", exif=exif)
    wide = values.astype(np.uint16) * 257  # the same picture in 16 bits
    if ext == "png":
        Image.fromarray(wide).save(tmp_path / "e16.png", exif=exif)
    else:
        Image.fromarray(wide).save(tmp_path / "e16.tif", tiffinfo={274: orientation})
    upright8, _ = read_image(tmp_path / "e8.png")
    upright16, info = read_image(tmp_path / f"e16.{ext}")
    assert info.bits == 16 and upright16.shape == upright8.shape
    assert np.allclose(upright16, upright8, atol=1e-6)
