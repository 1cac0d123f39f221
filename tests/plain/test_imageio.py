"""Image files keep their depth, gray stays gray, alpha stays alpha; bad files are clear
one-line errors and a failed write leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from deepdream.imageio import ImageIOError, read_image, write_image
from PIL import Image


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
