"""Host pixel bytes <-> engine float sRGB: exact scaling, channel order, linear light, and
bit-identical return of everything the engine did not change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from deepdream import pixelformat
from deepdream.pixelformat import decode, decode_mask, encode
from deepdream_protocol.pixels import DTYPES, LAYOUTS, TRANSFERS, PixelFormat

ALL_FORMATS = [PixelFormat(*combo) for combo in itertools.product(LAYOUTS, DTYPES, TRANSFERS)]
W, H = 7, 5


def random_bytes(fmt: PixelFormat, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if fmt.dtype in ("u8", "u16"):
        return rng.integers(0, 256, fmt.frame_size(W, H), dtype=np.uint8).tobytes()
    dtype = "<f2" if fmt.dtype == "f16" else "<f4"
    values = rng.uniform(-0.25, 1.5, W * H * fmt.channels).astype(dtype)
    values[:4] = [np.nan, np.inf, -0.0, 3.0]  # what a float layer can really hold
    return values.tobytes()


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_unchanged_image_comes_back_byte_identical(fmt: PixelFormat) -> None:
    data = random_bytes(fmt)
    image = decode(data, fmt, W, H)
    assert image.dtype == np.float32 and image.shape == (H, W, fmt.channels)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert encode(image, fmt, data, W, H) == data


@pytest.mark.parametrize("fmt", [f for f in ALL_FORMATS if f.has_alpha], ids=str)
def test_alpha_is_never_changed_by_the_engine(fmt: PixelFormat) -> None:
    data = random_bytes(fmt, seed=1)
    image = decode(data, fmt, W, H)
    image[...] = 0.5  # the engine touched every sample, alpha included
    out = np.frombuffer(encode(image, fmt, data, W, H), dtype=np.uint8)
    sample = DTYPES[fmt.dtype]
    pixels_in = np.frombuffer(data, np.uint8).reshape(W * H, -1)
    pixels_out = out.reshape(W * H, -1)
    assert np.array_equal(pixels_out[:, -sample:], pixels_in[:, -sample:])
    assert not np.array_equal(pixels_out[:, :-sample], pixels_in[:, :-sample])


def test_encode_with_the_decoded_input_given_matches_encode_without() -> None:
    fmt = PixelFormat("BGRA", "u16", "linear")
    data = random_bytes(fmt, seed=2)
    decoded = decode(data, fmt, W, H)
    dreamed = decoded.copy()
    dreamed[1:3] = 0.25
    assert encode(dreamed, fmt, data, W, H, decoded=decoded) == encode(dreamed, fmt, data, W, H)


def test_bgra_is_reordered_to_rgba_and_back() -> None:
    fmt = PixelFormat("BGRA", "u8", "srgb")
    data = bytes([10, 20, 30, 40])
    image = decode(data, fmt, 1, 1)
    assert np.allclose(image[0, 0], np.array([30, 20, 10, 40]) / 255)
    image[0, 0, 0] = 200 / 255  # engine changes red
    assert encode(image, fmt, data, 1, 1) == bytes([10, 20, 200, 40])


def test_every_16_bit_value_survives_quantisation_exactly() -> None:
    # Decoded from one frame, encoded against another: every sample goes through the
    # float -> u16 path, and none may be rounded to 8 bits or off by one.
    fmt = PixelFormat("G", "u16", "srgb")
    values = np.arange(65536, dtype="<u2")
    image = decode(values.tobytes(), fmt, 256, 256)
    other = np.zeros(65536, dtype="<u2").tobytes()
    assert encode(image, fmt, other, 256, 256) == values.tobytes()


def test_small_change_to_16_bit_image_is_not_rounded_to_8_bits() -> None:
    fmt = PixelFormat("RGB", "u16", "srgb")
    values = np.array([1000, 30001, 65000], dtype="<u2")
    image = decode(values.tobytes(), fmt, 1, 1)
    out = encode(image + np.float32(3 / 65535), fmt, values.tobytes(), 1, 1)
    assert np.frombuffer(out, "<u2").tolist() == [1003, 30004, 65003]


def test_linear_light_is_seen_as_srgb_by_the_engine_and_restored() -> None:
    fmt = PixelFormat("RGBA", "f32", "linear")
    linear_half_grey = 0.21404114  # sRGB 0.5
    data = np.array([linear_half_grey, 0.0, 1.0, 0.25], dtype="<f4").tobytes()
    image = decode(data, fmt, 1, 1)
    assert image[0, 0, 0] == pytest.approx(0.5, abs=1e-5)
    assert image[0, 0, 3] == pytest.approx(0.25)  # alpha is not a colour: no transfer curve
    image[0, 0, 1] = 0.5
    out = np.frombuffer(encode(image, fmt, data, 1, 1), "<f4")
    assert out[1] == pytest.approx(linear_half_grey, abs=1e-5)
    assert out[0] == np.float32(linear_half_grey) and out[3] == np.float32(0.25)


def test_linear_f16_result_stays_float_with_fine_steps() -> None:
    fmt = PixelFormat("GA", "f16", "linear")
    data = np.array([0.5, 1.0], dtype="<f2").tobytes()
    image = decode(data, fmt, 1, 1)
    image[0, 0, 0] += np.float32(0.001)
    out = np.frombuffer(encode(image, fmt, data, 1, 1), "<f2")
    assert out[0] != np.float16(0.5) and abs(float(out[0]) - 0.5) < 0.005


@pytest.mark.parametrize("size", [0, 27, 29])
def test_frame_of_wrong_length_is_a_clear_error(size: int) -> None:
    fmt = PixelFormat("RGB", "u8", "srgb")
    with pytest.raises(ValueError, match=r"pixel frame is \d+ bytes; 3x3 RGB u8 srgb needs 27"):
        decode(bytes(size) if size != 27 else bytes(26), fmt, 3, 3)


def test_engine_result_of_wrong_shape_is_refused() -> None:
    fmt = PixelFormat("RGBA", "u8", "srgb")
    with pytest.raises(ValueError, match="engine returned shape"):
        encode(np.zeros((2, 2, 3), np.float32), fmt, bytes(16), 2, 2)


def test_masks_in_both_sample_types() -> None:
    mask = decode_mask(bytes([0, 255, 51, 102]), "u8", 2, 2)
    assert mask.shape == (2, 2)
    assert mask.ravel().tolist() == pytest.approx([0.0, 1.0, 0.2, 0.4])
    floats = np.array([np.nan, 2.0, -1.0, 0.5], "<f4").tobytes()
    assert decode_mask(floats, "f32", 4, 1).tolist() == [[0.0, 1.0, 0.0, 0.5]]
    with pytest.raises(ValueError, match="mask frame is 3 bytes"):
        decode_mask(bytes(3), "u8", 2, 2)
    with pytest.raises(ValueError, match="unknown mask sample type"):
        decode_mask(bytes(4), "u16", 2, 1)


# dtype, and where the frame is converted: "device" is decode_for's GPU path (torch), run
# here on the CPU as there is no GPU; bench/check_fastpath_cuda.py runs it on CUDA.
INTEGER_PATHS = [("u8", "host"), ("u16", "host"), ("u8", "device")]


def decoded(data: bytes, fmt: PixelFormat, width: int, height: int, where: str):
    if where == "host":
        return decode(data, fmt, width, height)
    return pixelformat._decode_on(torch.device("cpu"), data, fmt, width, height)


@pytest.mark.parametrize("fmt", [f for f in ALL_FORMATS if f.has_alpha], ids=str)
def test_a_dream_from_noise_brings_its_own_alpha(fmt: PixelFormat) -> None:
    """Its picture is opaque where dreamed (engine.dream): the alpha is taken from it."""
    data = bytes(len(random_bytes(fmt)))  # all clear
    image = decode(data, fmt, W, H)
    image[..., -1] = 1.0
    for result in (image, torch.from_numpy(image)):  # (a tensor: 8-bit on its device)
        back = decode(encode(result, fmt, data, W, H, own_alpha=True), fmt, W, H)
        assert np.all(back[..., -1] == 1.0)


@pytest.mark.parametrize("layout", ["RGBA", "BGRA"])
@pytest.mark.parametrize(("dtype", "where"), INTEGER_PATHS)
def test_unchanged_integer_frame_is_byte_identical_through_the_quantising_path(
        layout: str, dtype: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Integer sRGB frames are quantised without comparing to the input: every possible
    # sample value must still come back as it was.  Small blocks: several, the last partial.
    monkeypatch.setattr(pixelformat, "_BLOCK_SAMPLES", 3 * 128 * 4)
    fmt = PixelFormat(layout, dtype, "srgb")
    top = 255 if dtype == "u8" else 65535
    values = np.arange(128 * 128 * 4) % (top + 1)
    data = values.astype(f"<u{DTYPES[dtype]}").tobytes()
    image = decoded(data, fmt, 128, 128, where)
    assert encode(image, fmt, data, 128, 128) == data


@pytest.mark.parametrize("layout", ["RGBA", "BGRA"])
@pytest.mark.parametrize(("dtype", "where"), INTEGER_PATHS)
def test_changed_integer_sample_is_rounded_to_nearest(layout: str, dtype: str,
                                                      where: str) -> None:
    fmt = PixelFormat(layout, dtype, "srgb")
    top = 255 if dtype == "u8" else 65535
    sample = f"<u{DTYPES[dtype]}"
    pixels = np.array([[100, 100, 100, 7], [100, 100, 100, 9]])  # colour 100, alpha 7 and 9
    data = pixels.astype(sample).tobytes()
    image = decode(data, fmt, 2, 1)
    # engine order R, G, B, A: nudges just under and over half a level, and out of range
    image[0, 0, :3] = (np.array([100.49, 100.51, 99.51]) / top).astype(np.float32)
    image[0, 1, :3] = np.array([-0.5, 1.5, np.float32(99.49 / top)], dtype=np.float32)
    image[..., 3] = 0.5  # alpha is never taken from the engine
    result = image if where == "host" else torch.from_numpy(image)
    out = np.frombuffer(encode(result, fmt, data, 2, 1), sample).reshape(2, 4)
    colour = [[100, 101, 100], [0, top, 99]]
    if layout == "BGRA":
        colour = [c[::-1] for c in colour]
    assert out[:, :3].tolist() == colour
    assert out[:, 3].tolist() == [7, 9]


@pytest.mark.parametrize("dtype", ["f16", "f32"])
def test_float_nan_and_infinities_clamp_one_way(dtype: str) -> None:
    fmt = PixelFormat("G", dtype, "srgb")
    values = np.array([np.inf, -np.inf, np.nan, 1.5, -0.5], "<f2" if dtype == "f16" else "<f4")
    assert decode(values.tobytes(), fmt, 5, 1).ravel().tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("fmt", [PixelFormat(layout, "u8") for layout in LAYOUTS], ids=str)
def test_8_bit_frame_decoded_on_the_device_is_the_host_decode(fmt: PixelFormat) -> None:
    data = random_bytes(fmt)
    image = decoded(data, fmt, W, H, "device")
    assert image.dtype == torch.float32 and image.is_contiguous()
    assert np.array_equal(image.numpy(), decode(data, fmt, W, H))
    assert encode(image, fmt, data, W, H) == data


def test_decode_for_keeps_cpu_jobs_big_frames_and_frames_needing_a_merge_on_the_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    u8 = PixelFormat("RGBA", "u8")
    assert isinstance(pixelformat.decode_for("cpu", random_bytes(u8), u8, W, H), np.ndarray)
    monkeypatch.setattr(pixelformat, "DEVICE_PIXELS_MAX", W * H - 1)
    assert isinstance(pixelformat.decode_for("cuda", random_bytes(u8), u8, W, H), np.ndarray)
    monkeypatch.undo()
    for fmt in (PixelFormat("RGBA", "u16"), PixelFormat("RGBA", "u8", "linear"),
                PixelFormat("BGRA", "f32")):
        data = random_bytes(fmt)
        # decided before any device is touched: no CUDA is needed (none is here)
        image = pixelformat.decode_for("cuda", data, fmt, W, H)
        assert isinstance(image, np.ndarray)
        assert np.array_equal(image, decode(data, fmt, W, H))


def test_a_tensor_result_of_a_frame_decoded_on_the_host_is_encoded_the_host_way() -> None:
    fmt = PixelFormat("BGRA", "f16", "linear")
    data = random_bytes(fmt, seed=3)
    image = decode(data, fmt, W, H)
    image[1:3] = 0.25
    assert encode(torch.from_numpy(image), fmt, data, W, H) == encode(image, fmt, data, W, H)
