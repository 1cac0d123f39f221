"""The dream loop on a small random-weight GoogLeNet: octaves, detail carry, mask, alpha,
gray, strength, seeds, cancel/progress and its errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deepdream.engine import Cancelled, DreamError, DreamSettings, SettingsError, dream
from deepdream.engine.dream import octave_sizes

FAST = {"model": "tiny", "layer": "inception3b", "iterations": 3, "octaves": 2,
        "octave_scale": 1.5, "jitter": 8, "seed": 1}


def settings(**changes: object) -> DreamSettings:
    return DreamSettings.from_dict({**FAST, **changes})


def record_inputs(model) -> tuple[list[torch.Tensor], object]:
    """Every tensor the model is run on (a forward pre-hook on the real model)."""
    seen: list[torch.Tensor] = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    return seen, handle


def test_octave_sizes_grow_by_the_scale_up_to_full_size() -> None:
    sizes = octave_sizes(300, 420, octaves=4, scale=1.4)
    assert sizes[-1] == (300, 420)
    assert len(sizes) == 4
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:], strict=False):
        assert h1 / h0 == pytest.approx(1.4, rel=0.02) and w1 / w0 == pytest.approx(1.4, rel=0.02)


def test_octaves_too_small_to_hold_detail_are_left_out() -> None:
    assert octave_sizes(40, 60, octaves=4, scale=1.4) == [(40, 60)]  # 29x43 is under 32
    assert octave_sizes(64, 64, octaves=4, scale=2.0) == [(32, 32), (64, 64)]
    assert octave_sizes(10, 10, octaves=5, scale=2.0) == [(10, 10)]


def test_a_scale_that_rounds_to_the_full_size_adds_no_second_full_size_octave(
        tiny_model, make_image) -> None:
    """Scale 1.0 (allowed) made two full-size octaves, the image added to itself: with no
    step at all the result was washed out towards white."""
    assert octave_sizes(64, 64, octaves=3, scale=1.0) == [(64, 64)]
    assert octave_sizes(96, 96, octaves=2, scale=1.004) == [(96, 96)]
    img = make_image(64, 64)
    out = dream(img, tiny_model, settings(octaves=3, octave_scale=1.0, step=0.0))
    assert np.abs(out - img).max() < 1e-6


def test_dream_runs_each_octave_smallest_first(tiny_model, make_image) -> None:
    img = make_image(72, 96)
    seen, handle = record_inputs(tiny_model)
    try:
        dream(img, tiny_model, settings(octaves=3, iterations=2, jitter=0, tile=512))
    finally:
        handle.remove()
    shapes = [tuple(t.shape[-2:]) for t in seen]
    expected = [s for s in octave_sizes(72, 96, 3, 1.5) for _ in range(2)]
    assert shapes == expected


def test_detail_dreamed_at_a_small_octave_is_carried_to_the_next(tiny_model, make_image) -> None:
    img = make_image(64, 64)
    seen, handle = record_inputs(tiny_model)
    try:
        dream(img, tiny_model, settings(octaves=2, octave_scale=2.0, iterations=3, jitter=0,
                                        tile=512))
    finally:
        handle.remove()
    first_full = seen[3][0].permute(1, 2, 0).numpy()  # start of the full-size octave
    carried = first_full - img
    assert np.abs(carried).mean() > 1e-3, "the full-size octave started from the plain image"
    # what was carried is exactly some 32x32 detail scaled up (least squares finds it)
    basis = torch.eye(32 * 32).reshape(-1, 1, 32, 32)
    up = F.interpolate(basis, size=(64, 64), mode="bilinear").reshape(32 * 32, -1).T
    target = torch.from_numpy(carried).reshape(-1, 3).double()
    solution = torch.linalg.lstsq(up.double(), target).solution
    residual = up.double() @ solution - target
    assert residual.abs().max() < 1e-5


def test_dream_changes_the_image_and_keeps_shape_dtype_and_range(tiny_model, make_image) -> None:
    img = make_image(48, 64)
    before = img.copy()
    out = dream(img, tiny_model, settings())
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out - img).mean() > 0.005
    assert np.array_equal(img, before), "the caller's image was modified"


def test_same_seed_same_dream_other_seed_other_dream(tiny_model, make_image) -> None:
    img = make_image(48, 48)
    a = dream(img, tiny_model, settings(seed=3))
    b = dream(img, tiny_model, settings(seed=3))
    c = dream(img, tiny_model, settings(seed=4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_zero_mask_pixels_come_back_bit_identical(tiny_model, make_image) -> None:
    img = make_image(48, 64)
    mask = np.zeros((48, 64), np.float32)
    mask[:, 32:] = 1.0
    mask[:, 24:32] = np.linspace(0, 1, 10, dtype=np.float32)[1:-1]  # feathered edge
    out = dream(img, tiny_model, settings(), mask=mask)
    assert np.array_equal(out[:, :24], img[:, :24])
    full = dream(img, tiny_model, settings())
    assert np.allclose(out[:, 32:], full[:, 32:], atol=1e-6)
    ramp = np.abs(out[:, 24:32] - img[:, 24:32]).mean(axis=(0, 2))
    assert 0 < ramp[0] < ramp[-1]


def test_strength_blends_the_dream_over_the_original(tiny_model, make_image) -> None:
    img = make_image(40, 40)
    full = dream(img, tiny_model, settings())
    half = dream(img, tiny_model, settings(strength=0.5))
    assert np.allclose(half, img + 0.5 * (full - img), atol=1e-6)
    assert np.array_equal(dream(img, tiny_model, settings(strength=0.0)), img)


@pytest.mark.parametrize("channels", [4, 2])
def test_alpha_is_passed_through_untouched(tiny_model, make_image, channels: int) -> None:
    img = make_image(40, 48, channels)
    img[..., -1] = np.linspace(0, 1, 48, dtype=np.float32)[None, :]
    out = dream(img, tiny_model, settings())
    assert np.array_equal(out[..., -1], img[..., -1])
    assert not np.array_equal(out[..., :-1], img[..., :-1])


def test_gray_is_dreamed_and_stays_gray(tiny_model, make_image) -> None:
    gray = make_image(40, 48, 1)
    out = dream(gray, tiny_model, settings())
    assert out.shape == (40, 48, 1)
    assert np.abs(out - gray).mean() > 0.005


@pytest.mark.parametrize("channels", [4, 1])
def test_a_tensor_is_dreamed_like_the_same_array_and_stays_a_tensor(
        tiny_model, make_image, channels: int) -> None:
    # the daemon hands 8-bit frames over as tensors already on the model's device (here the
    # CPU: no GPU); mask, alpha and gray must be treated as for the numpy arrays of the CLI
    img = make_image(40, 48, channels)
    mask = np.zeros((40, 48), np.float32)
    mask[:, 20:] = 0.7
    want = dream(img, tiny_model, settings(), mask=mask)
    got = dream(torch.from_numpy(img.copy()), tiny_model, settings(), mask=mask)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert got.shape == img.shape and got.is_contiguous()
    assert np.array_equal(got.numpy(), want)
    assert np.array_equal(got.numpy()[:, :20], img[:, :20])


@pytest.mark.parametrize("kind", ["big-endian", "read-only", "flipped", "fortran"])
def test_any_float_array_is_dreamed_like_its_plain_copy(tiny_model, make_image, kind) -> None:
    # direct callers of dream() hand over whatever numpy gives them
    img = make_image(40, 48, 4)
    plain = np.ascontiguousarray(img[::-1] if kind == "flipped" else img)
    if kind == "big-endian":
        img = img.astype(">f4")
    elif kind == "read-only":
        img.flags.writeable = False
    elif kind == "flipped":
        img = img[::-1]
    else:
        img = np.asfortranarray(img)
    before = img.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it views a read-only array
        out = dream(img, tiny_model, settings(strength=0.5))
        untouched = dream(img, tiny_model, settings(strength=0.0))
    assert out.dtype == img.dtype and untouched.dtype == img.dtype
    assert np.array_equal(out, dream(plain, tiny_model, settings(strength=0.5)))
    assert np.array_equal(untouched, plain) and untouched.flags.c_contiguous
    assert np.array_equal(img, before)


def test_masked_out_pixels_keep_even_values_outside_the_range(tiny_model, make_image) -> None:
    img = make_image(40, 48)
    img[0, :3, 0] = [np.inf, -np.inf, np.nan]
    mask = np.zeros((40, 48), np.float32)
    mask[:, 24:] = 1.0
    out = dream(img, tiny_model, settings(), mask=mask)
    assert np.array_equal(out[:, :24], img[:, :24], equal_nan=True)
    # and they do not spread through the network into the dreamed part (they used to: NaN)
    assert np.isfinite(out[:, 24:]).all()
    assert np.isfinite(dream(img, tiny_model, settings())).all()


@pytest.mark.parametrize("blend", ["strength", "soft mask"])
def test_values_outside_the_range_stay_finite_when_blended(tiny_model, make_image,
                                                           blend: str) -> None:
    """At strength 1 a NaN or ±inf pixel came out dreamed and finite; blended at strength 0.5
    or through a soft mask, it came out NaN (dreamed - inf, weighed, + inf)."""
    img = make_image(40, 48)
    img[0, :3, 0] = [np.inf, -np.inf, np.nan]
    if blend == "strength":
        out = dream(img, tiny_model, settings(strength=0.5))
    else:
        out = dream(img, tiny_model, settings(), mask=np.full((40, 48), 0.5, np.float32))
    assert np.isfinite(out).all()
    assert 0.5 <= out[0, 0, 0] <= 1.0 and 0.0 <= out[0, 1, 0] <= 0.5  # half way from 1, 0


@pytest.mark.parametrize("layout", ["G", "GA", "RGB"])
def test_nothing_to_do_gives_the_input_back_exactly(tiny_model, make_image, layout) -> None:
    """Gray folded back from the dream's RGB was off by one unit in the last place in a
    fifth of the samples (g·0.2126 + g·0.7152 + g·0.0722 in float32 is not always g)."""
    img = make_image(33, 47, len(layout))
    for nothing in (settings(iterations=0), settings(step=0.0),
                    settings(iterations=0, from_noise=True)):  # (it took a step: a picture)
        assert np.array_equal(dream(img, tiny_model, nothing), img)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_types_are_blended_wide_and_cast_once(tiny_model, make_image,
                                                                dtype) -> None:
    img = make_image(40, 48, 4).astype(dtype)
    mask = np.full((40, 48), 0.3, np.float32)
    out = dream(img, tiny_model, settings(), mask=mask)
    wide = dream(img.astype(np.float32), tiny_model, settings(), mask=mask)
    assert out.dtype == dtype
    if dtype == np.float16:
        assert np.array_equal(out[..., :3], wide[..., :3].astype(dtype))
    else:  # float64 blends in float64
        assert np.allclose(out[..., :3], wide[..., :3], atol=1e-6)
    assert np.array_equal(out[..., 3], img[..., 3])  # alpha bit for bit, not via float32


def test_progress_reaches_one_and_cancel_stops(tiny_model, make_image) -> None:
    img = make_image(56, 56)  # two octaves: 37x37 and 56x56
    reports = []
    dream(img, tiny_model, settings(), progress=reports.append)
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(reports) == 2 * 3 and reports[-1].octave == reports[-1].octaves == 2
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        dream(img, tiny_model, settings(), cancel=cancel)


@pytest.mark.parametrize("from_noise", [False, True])
def test_cancel_stops_a_tiled_step_between_its_tiles(tiny_model, make_image,
                                                     from_noise: bool) -> None:
    """One step of a large image on the CPU runs for minutes (a strip of 150,000 pixels: 36 s
    from cancel to cancelled); the cancel was only looked at between steps."""
    seen, handle = record_inputs(tiny_model)
    asked = []

    def cancel_once_a_tile_ran() -> bool:
        asked.append(len(seen))
        return bool(seen)

    try:
        with pytest.raises(Cancelled):
            dream(make_image(256, 256), tiny_model,
                  settings(tile=64, octaves=1, iterations=3, from_noise=from_noise),
                  cancel=cancel_once_a_tile_ran)
    finally:
        handle.remove()
    assert len(seen) == 1  # of the 16 tiles of the first step
    assert asked[-1] == 1


def test_the_network_stops_at_the_deepest_requested_layer(tiny_model, make_image) -> None:
    ran: list[str] = []
    hooks = [stage.register_forward_hook(lambda *_a, n=name: ran.append(n))
             for name, stage in zip(tiny_model.stage_names, tiny_model.stages, strict=True)]
    try:
        dream(make_image(40, 40), tiny_model, settings(layer="inception3a", iterations=1))
    finally:
        for h in hooks:
            h.remove()
    assert "inception3a" in ran and "inception3b" not in ran and "inception4c" not in ran


@pytest.mark.parametrize(("change", "words"), [
    ({"layer": "inception9z"}, "has no layer 'inception9z'"),
    ({"channels": "3,600"}, "channel 600 is out of range for 'inception3b', which has 480"),
])
def test_unknown_layer_and_channel_out_of_range(tiny_model, make_image, change, words) -> None:
    with pytest.raises(SettingsError, match=words):
        dream(make_image(40, 40), tiny_model, settings(**change))


@pytest.mark.parametrize(("image", "words"), [
    (np.zeros((0, 10, 3), np.float32), "empty"),
    (np.zeros((10, 10, 5), np.float32), "C in 1..4"),
    (np.zeros((10, 10), np.float32), "C in 1..4"),
    (np.zeros((10, 10, 3), np.uint8), "floats"),
])
def test_bad_images_are_refused(tiny_model, image: np.ndarray, words: str) -> None:
    with pytest.raises(DreamError, match=words):
        dream(image, tiny_model, settings())


def test_a_mask_of_another_size_is_refused(tiny_model, make_image) -> None:
    with pytest.raises(DreamError, match="mask is 30x20 but the image is 40x40"):
        dream(make_image(40, 40), tiny_model, settings(), mask=np.ones((20, 30), np.float32))
    # the image's size, but in colour: said so (it said "mask is 40x40 but the image is 40x40")
    with pytest.raises(DreamError, match="^mask has 3 channels; give a mask of one channel"):
        dream(make_image(40, 40), tiny_model, settings(), mask=np.ones((40, 40, 3), np.float32))
