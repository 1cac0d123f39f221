"""Image files keep their depth, gray stays gray, alpha stays alpha; bad files are clear
one-line errors and a failed write leaves nothing behind."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Iterator
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


def test_jpeg_keeps_the_colour_at_full_resolution(tmp_path: Path) -> None:
    """4:4:4, not Pillow's default 4:2:0, which halves the dream's coloured detail."""
    from PIL import JpegImagePlugin

    write_image(tmp_path / "x.jpg", samples(16, 16, 3))
    with Image.open(tmp_path / "x.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0


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


# --- samples that are not 8- or 16-bit levels: where white is follows from their range -----


def _tiff(path: Path, values: np.ndarray) -> Path:
    """A TIFF of ``values``' own sample type (the 32-bit and float files scientific tools,
    GIMP and Krita save), (H, W, C)."""
    from deepdream import tiff

    path.write_bytes(tiff.encode(values))
    return path


_RAMP = np.linspace(0.0, 1.0, 6 * 8 * 3).reshape(6, 8, 3)


@pytest.mark.parametrize(("white", "dtype", "bits"), [
    (255, np.uint32, 8),  # 8-bit values kept in 32 bits: not near-black
    (65535, np.uint32, 16),  # 16-bit values (ImageJ, cameras): not white past 1/65535
    (2**32 - 1, np.uint32, 16),  # the full 32-bit range: not white nearly everywhere
    (1_000_000, np.int32, 16),  # counts: the brightest sample is white
])
def test_32_bit_integer_tiffs_are_read_by_the_range_they_use(tmp_path: Path, white: int,
                                                             dtype: type, bits: int) -> None:
    values = np.rint(_RAMP * white).astype(dtype)
    image, info = read_image(_tiff(tmp_path / "i.tif", values))
    assert image.shape == (6, 8, 3) and info.bits == bits
    assert np.allclose(image, _RAMP, atol=1 / 255 if bits == 8 else 1e-4)
    assert info.note is not None and "32-bit integer" in info.note and "\n" not in info.note


def test_a_pillow_int32_gray_tiff_of_16_bit_values_is_not_white(tmp_path: Path) -> None:
    values = np.rint(_RAMP[..., 0] * 65535).astype(np.int32)
    Image.fromarray(values, "I").save(tmp_path / "g.tif")
    image, info = read_image(tmp_path / "g.tif")
    assert info.bits == 16 and np.allclose(image[..., 0], _RAMP[..., 0], atol=1e-4)


@pytest.mark.parametrize(("scale", "noted"), [(1.0, False), (255.0, True), (65535.0, True)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_float_tiffs_of_0_1_or_0_255_levels(tmp_path: Path, scale: float, noted: bool,
                                            channels: int) -> None:
    values = (_RAMP[..., :1].repeat(4, axis=2)[..., :channels] * scale).astype(np.float32)
    image, info = read_image(_tiff(tmp_path / "f.tif", values))
    assert image.shape == (6, 8, channels) and info.bits == 16
    assert np.allclose(image, values / scale, atol=1e-6)
    assert (info.note is not None) == noted


def test_pillows_gray_float_tiff_of_0_255_is_not_white(tmp_path: Path) -> None:
    Image.fromarray((_RAMP[..., 0] * 255).astype(np.float32), "F").save(tmp_path / "f.tif")
    image, info = read_image(tmp_path / "f.tif")
    assert np.allclose(image[..., 0], _RAMP[..., 0], atol=1e-6) and "0-255" in info.note


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_half_and_double_float_tiffs(tmp_path: Path, dtype: type) -> None:
    image, info = read_image(_tiff(tmp_path / "f.tif", _RAMP.astype(dtype)))
    assert info.bits == 16 and np.allclose(image, _RAMP, atol=1e-3)


@pytest.mark.parametrize("compression", ["tiff_adobe_deflate", "tiff_lzw", "packbits"])
def test_float_tiffs_with_the_floating_point_predictor(tmp_path: Path, compression: str) -> None:
    values = (_RAMP[..., 0] * 200).astype(np.float32)
    Image.fromarray(values, "F").save(tmp_path / "p.tif", compression=compression,
                                      tiffinfo={317: 3})
    image, _ = read_image(tmp_path / "p.tif")
    assert np.allclose(image[..., 0], values / 255, atol=1e-6)


def test_signed_16_bit_tiff_below_zero_is_black_not_white(tmp_path: Path) -> None:
    values = np.array([[[-1], [0], [1000], [30000]]], np.int16)
    image, info = read_image(_tiff(tmp_path / "s.tif", values))
    assert image[0, :, 0].tolist() == pytest.approx([0, 0, 1000 / 65535, 30000 / 65535])
    assert "below zero" in info.note


def test_premultiplied_alpha_in_a_deep_tiff_is_undone(tmp_path: Path) -> None:
    rgba = np.array([[[0.25, 0.5, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    data = bytearray(_tiff(tmp_path / "a.tif", rgba).read_bytes())
    at = data.find(struct.pack("<HHII", 338, 3, 1, 2))
    data[at:at + 12] = struct.pack("<HHII", 338, 3, 1, 1)  # ExtraSamples: associated alpha
    (tmp_path / "a.tif").write_bytes(bytes(data))
    image, _ = read_image(tmp_path / "a.tif")
    assert image.ravel().tolist() == [0.5, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]


def test_an_unspecified_extra_channel_of_a_deep_tiff_is_not_alpha(tmp_path: Path) -> None:
    """(A saved selection, say: 8-bit files already read without it; a 16-bit one made it
    alpha, half the dream transparent, or refused as JPEG.)"""
    rgbx = np.zeros((2, 3, 4), np.uint16)
    rgbx[..., :3] = 30000
    data = bytearray(_tiff(tmp_path / "x.tif", rgbx).read_bytes())
    at = data.find(struct.pack("<HHII", 338, 3, 1, 2))
    data[at:at + 12] = struct.pack("<HHII", 338, 3, 1, 0)  # ExtraSamples: unspecified
    (tmp_path / "x.tif").write_bytes(bytes(data))
    image, info = read_image(tmp_path / "x.tif")
    assert image.shape == (2, 3, 3) and info.bits == 16
    assert np.allclose(image, 30000 / 65535)


def _bigtiff(path: Path, samples: np.ndarray) -> Path:
    """A little-endian BigTIFF (8-byte offsets, 20-byte entries) of (H, W, C) uint16, one
    strip, as tifffile writes large files."""
    height, width, channels = samples.shape
    body = samples.astype("<u2").tobytes()
    entries = [(256, 4, [width]), (257, 4, [height]), (258, 3, [16] * channels),
               (259, 3, [1]), (262, 3, [2 if channels >= 3 else 1]), (273, 16, [16]),
               (277, 3, [channels]), (278, 4, [height]), (279, 16, [len(body)]),
               (284, 3, [1])]
    ifd_at = 16 + len(body)
    values_at = ifd_at + 8 + 20 * len(entries) + 8
    ifd, values = struct.pack("<Q", len(entries)), b""
    for code, kind, numbers in entries:
        packed = struct.pack(f"<{len(numbers)}{ {3: 'H', 4: 'I', 16: 'Q'}[kind] }", *numbers)
        if len(packed) <= 8:
            ifd += struct.pack("<HHQ", code, kind, len(numbers)) + packed.ljust(8, b"\0")
        else:
            ifd += struct.pack("<HHQQ", code, kind, len(numbers), values_at + len(values))
            values += packed
    ifd += struct.pack("<Q", 0)
    path.write_bytes(b"II+\0" + struct.pack("<HHQ", 8, 0, ifd_at) + body + ifd + values)
    return path


@pytest.mark.parametrize("channels", [1, 3])
def test_a_16_bit_bigtiff_keeps_its_16_bits(tmp_path: Path, channels: int) -> None:
    """Pillow read a 16-bit RGB BigTIFF as 8-bit, without a word."""
    samples = np.random.default_rng(1).integers(0, 65536, (6, 7, channels)).astype(np.uint16)
    image, info = read_image(_bigtiff(tmp_path / "big.tif", samples))
    assert (info.bits, info.note) == (16, None)
    assert np.array_equal(np.rint(image * 65535).astype(np.uint16), samples)


@pytest.mark.parametrize(("values", "words"), [
    (-np.arange(1, 13, dtype=np.int32).reshape(3, 4, 1), "every 32-bit integer sample is zero "
     "or negative"),
    (np.full((3, 4, 1), np.nan, np.float32), "no sample is a number"),
])
def test_samples_that_can_only_be_black_are_a_one_line_error(tmp_path: Path, values: np.ndarray,
                                                             words: str) -> None:
    with pytest.raises(ImageIOError, match=words) as info:
        read_image(_tiff(tmp_path / "b.tif", values))
    assert "\n" not in str(info.value) and "b.tif" in str(info.value)


def test_an_animation_is_read_as_its_first_frame_with_a_note(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    image, info = read_image(tmp_path / "a.gif")
    assert image.shape == (6, 8, 3) and image[..., 0].max() == 0
    assert info.note is not None and "first of its 3 frames" in info.note


@pytest.mark.parametrize("next_ifd", ["itself", "past the end"])
def test_a_deep_tiff_whose_ifd_chain_is_damaged_still_reads_as_one_page(
        tmp_path: Path, next_ifd: str) -> None:
    data = bytearray(_tiff(tmp_path / "d.tif", _RAMP.astype(np.uint16)).read_bytes())
    (ifd_at,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd_at)
    struct.pack_into("<I", data, ifd_at + 2 + 12 * count,
                     ifd_at if next_ifd == "itself" else len(data) + 100)
    (tmp_path / "d.tif").write_bytes(data)
    image, info = read_image(tmp_path / "d.tif")
    assert image.shape == (6, 8, 3) and info.note is None  # no note of other frames


def test_a_deep_tiff_with_a_long_chain_of_pages_is_counted_only_so_far(tmp_path: Path) -> None:
    """A crafted file of many tiny pages would otherwise cost time and memory to count."""
    from deepdream import tiff

    data = bytearray(_tiff(tmp_path / "d.tif", _RAMP.astype(np.uint16)).read_bytes())
    (ifd_at,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd_at)
    link = ifd_at + 2 + 12 * count
    for _ in range(3 * tiff.PAGES_COUNTED):  # empty pages, each naming the next
        data += b"\0" * (len(data) % 2)  # (a TIFF's offsets are even)
        struct.pack_into("<I", data, link, len(data))
        data += struct.pack("<HI", 0, 0)
        link = len(data) - 4
    (tmp_path / "d.tif").write_bytes(data)
    image, info = read_image(tmp_path / "d.tif")
    assert image.shape == (6, 8, 3)
    assert info.note is not None
    assert f"first of its more than {tiff.PAGES_COUNTED} frames" in info.note


# --- writing: through symbolic links, never over a write-protected file ------------------


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "t.png"
    target.write_bytes(b"old")
    link = tmp_path / "l.png"
    link.symlink_to(target)
    write_image(link, samples(5, 6, 3))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_image(target)[0].shape == (5, 6, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png", "real"]
    dangling = tmp_path / "d.png"  # a link to a file not made yet: that file is made
    dangling.symlink_to("real/new.png")
    write_image(dangling, samples(5, 6, 3))
    assert dangling.is_symlink() and (tmp_path / "real" / "new.png").is_file()


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("through_link", [False, True])
def test_a_write_protected_file_is_refused_not_replaced(tmp_path: Path,
                                                        through_link: bool) -> None:
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"precious")
    kept.chmod(0o444)  # (refused even for root: nobody may write it)
    path = kept
    if through_link:
        path = tmp_path / "link.png"
        path.symlink_to(kept)
    with pytest.raises(ImageIOError, match="write-protected") as info:
        write_image(path, samples(4, 4, 3))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert kept.read_bytes() == b"precious" and kept.stat().st_mode & 0o777 == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["kept.png"] + (["link.png"] if through_link else []))


@pytest.mark.skipif(os.name == "nt", reason="POSIX hard links")
def test_a_file_with_hard_links_changes_under_every_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"old")
    os.link(first, second)
    write_image(first, samples(4, 5, 3))
    assert os.path.samefile(first, second) and read_image(second)[0].shape == (4, 5, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_a_folder_given_as_output_says_so(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match="is a folder; give a file name"):
        write_image(tmp_path, samples(4, 4, 3))
    # a name ending in a slash means a folder: not quietly a file of that name (cp refuses)
    with pytest.raises(ImageIOError, match="ends in a slash"):
        write_image(f"{tmp_path / 'new.png'}/", samples(4, 4, 3))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 KiB file system: a full disk (mounting one needs root on Linux)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("linked", [False, True])
def test_a_full_disk_keeps_the_old_file_and_names_it(full_disk: Path, linked: bool) -> None:
    """A file with a second name is rewritten in place: it used to be overwritten until the
    disk was full, leaving a truncated picture under both names, and the error named none."""
    old = full_disk / "out.png"
    write_image(old, samples(8, 8, 3))
    before = old.read_bytes()
    if linked:
        os.link(old, full_disk / "link.png")
    noise = np.random.default_rng(0).random((200, 200, 3), dtype=np.float32)  # ~120 KB PNG
    with pytest.raises(ImageIOError) as info:
        write_image(old, noise)
    assert str(info.value) == f"{old}: cannot save: No space left on device"
    assert old.read_bytes() == before
    assert sorted(p.name for p in full_disk.iterdir()) == (
        ["link.png", "out.png"] if linked else ["out.png"])  # no temporary file left


def _cmyk_profile(inks: list[tuple[float, float, float]]) -> bytes:
    """A printer profile (ICC v2: CMYK to XYZ by a lut16 A2B0 table) whose cyan, magenta
    and yellow inks have these linear RGB colours; a mix is their product, K is black."""
    import itertools

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    to_xyz = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                       [0.0139322, 0.0971045, 0.7141733]])  # linear sRGB to XYZ (D50)
    clut = b""
    for corner in itertools.product((0, 1), repeat=4):  # the first channel varies slowest
        rgb = np.prod([ink for on, ink in zip(corner, [*inks, (0.0, 0.0, 0.0)], strict=True)
                       if on] or [(1.0, 1.0, 1.0)], axis=0)
        clut += struct.pack(">3H", *(min(65535, round(v * 32768)) for v in to_xyz @ rgb))
    ramp = struct.pack(">2H", 0, 65535)
    a2b0 = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(
        s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1)) + struct.pack(">HH", 2, 2) + ramp * 4
        + clut + ramp * 3)
    white = s15(0.9642) + s15(1.0) + s15(0.8249)
    desc = b"desc" + bytes(4) + struct.pack(">I", 5) + b"cmyk\0" + bytes(78)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + white), (b"A2B0", a2b0)]
    at = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", at + len(body), len(data))
        body += data
    header = (struct.pack(">I", at + len(body)) + bytes(4) + b"\x02\x10\0\0prtrCMYKXYZ "
              + bytes(12) + b"acsp" + bytes(28) + white + bytes(48))
    return header + table + body


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_a_cmyk_image_is_converted_through_its_profile(tmp_path: Path, ext: str) -> None:
    """Pillow's own CMYK to RGB ignores the profile: cyan ink came out (0, 255, 255)."""
    profile = _cmyk_profile([(0.0, 0.45, 0.85), (0.9, 0.05, 0.4), (1.0, 0.9, 0.05)])
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / f"c.{ext}", quality=100,
                                                    icc_profile=profile)
    image, info = read_image(tmp_path / f"c.{ext}")
    assert image.shape == (8, 8, 3) and info.icc_profile is None
    assert np.allclose(image[4, 4] * 255, [0, 179, 237], atol=4)  # the ink, in sRGB


@pytest.mark.parametrize(("channels", "key"), [(3, (1000, 2000, 3000)), (1, (1234,))])
def test_16_bit_pngs_with_a_transparent_colour_keep_it(tmp_path: Path, channels: int,
                                                        key: tuple[int, ...]) -> None:
    """As in 8-bit PNGs (above): the tRNS chunk's colour, here in 16-bit levels, is clear."""
    from deepdream import png16

    values = np.full((2, 3, channels), 40000, np.uint16)
    values[0, 0] = key
    data = png16.encode(values)
    at = data.index(b"IDAT") - 4
    data = data[:at] + png16.chunk(b"tRNS", struct.pack(f">{channels}H", *key)) + data[at:]
    (tmp_path / "t.png").write_bytes(data)
    image, info = read_image(tmp_path / "t.png")
    assert info.bits == 16 and image.shape == (2, 3, channels + 1)
    assert image[0, 0, -1] == 0 and image[..., -1].sum() == 5
