"""Images smaller than the dreamed layers need (a small layer, or a small selection whose
bounding box is all a plug-in sends): dreamed grown with mirrored copies of themselves to the
smallest size the network runs on and cut back out, with and without from-noise; octaves
smaller than that left out; images the network runs on dreamed exactly as before."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream.engine import DreamError, DreamSettings, dream
from deepdream.engine.tiling import min_input_side, mirror_pad, pad_offset

# the module itself (the package's ``dream`` is the function)
dream_module = importlib.import_module("deepdream.engine.dream")
tiling_module = importlib.import_module("deepdream.engine.tiling")

FAST = {"model": "tiny", "layer": "inception4c", "iterations": 3, "octaves": 3,
        "octave_scale": 1.4, "jitter": 4, "seed": 5}


def settings(**changes: object) -> DreamSettings:
    return DreamSettings.from_dict({**FAST, **changes})


def noise(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 0.9, (h, w, channels)).astype(np.float32)


def padded_dream(img: np.ndarray, model, s: DreamSettings, side: int) -> np.ndarray:
    """What a small image's dream should be: its mirrored growth dreamed, the middle cut."""
    h, w = img.shape[:2]
    gh, gw = max(h, side), max(w, side)
    grown = mirror_pad(torch.from_numpy(img), gh, gw).numpy()
    out = dream(grown, model, s)
    top, left = pad_offset(h, gh), pad_offset(w, gw)
    return out[top:top + h, left:left + w]


def test_the_smallest_input_side_is_the_first_the_network_runs_on(tiny_model) -> None:
    side = min_input_side(tiny_model, ["inception4c"])
    assert side is not None and 1 < side <= 32
    with torch.no_grad():
        tiny_model(torch.zeros(1, 3, side, side), ["inception4c"])
        with pytest.raises(RuntimeError, match="too small"):
            tiny_model(torch.zeros(1, 3, side - 1, side - 1), ["inception4c"])
    assert min_input_side(tiny_model, ["conv1"]) < side <= min_input_side(tiny_model,
                                                                          ["inception5b"])


def test_mirror_pad_reflects_as_often_as_it_takes() -> None:
    x = torch.arange(3 * 2, dtype=torch.float32).reshape(3, 2, 1)
    grown = mirror_pad(x, 11, 9)
    top, left = pad_offset(3, 11), pad_offset(2, 9)
    expected = np.pad(x.numpy(), ((top, 11 - 3 - top), (left, 9 - 2 - left), (0, 0)),
                      mode="symmetric")
    assert np.array_equal(grown.numpy(), expected)
    assert np.array_equal(grown[top:top + 3, left:left + 2], x)
    one = mirror_pad(torch.tensor([[[0.25, 0.5, 0.75]]]), 4, 5)
    assert torch.equal(one, torch.tensor([0.25, 0.5, 0.75]).expand(4, 5, 3))


@pytest.mark.parametrize("size", [(1, 1), (3, 200), (8, 8), (200, 5)])
def test_a_small_image_is_dreamed_grown_and_cut_back(tiny_model, size) -> None:
    img = noise(*size)
    side = min_input_side(tiny_model, ["inception4c"])
    assert min(size) < side  # the network refuses it as it is
    out = dream(img, tiny_model, settings())
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - img).mean() > 1e-3
    assert np.array_equal(out, padded_dream(img, tiny_model, settings(), side))


@pytest.mark.parametrize("size", [(1, 1), (3, 200)])
def test_from_noise_dreams_a_small_image_instead_of_a_torch_error(tiny_model, size) -> None:
    img = noise(*size)
    s = settings(from_noise=True, iterations=1, octaves=2)
    out = dream(img, tiny_model, s)
    assert out.shape == img.shape
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, img)
    side = min_input_side(tiny_model, ["inception4c"])
    assert np.array_equal(out, padded_dream(img, tiny_model, s, side))


def test_a_small_masked_image_keeps_its_unmasked_pixels_and_alpha_bit_identical(
        tiny_model) -> None:
    img = noise(6, 9, channels=4)
    mask = np.zeros((6, 9), np.float32)
    mask[1:5, 2:6] = 1.0
    mask[0, 0] = 0.5
    out = dream(img, tiny_model, settings(), mask=mask)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert np.array_equal(out[..., 3], img[..., 3])
    assert np.abs(out[mask == 1][:, :3] - img[mask == 1][:, :3]).mean() > 1e-3


def test_gray_and_tensor_small_images_keep_their_kind(tiny_model) -> None:
    gray = noise(4, 4, channels=2)
    out = dream(gray, tiny_model, settings())
    assert out.shape == gray.shape and np.array_equal(out[..., 1], gray[..., 1])
    tensor = torch.from_numpy(noise(5, 3))
    out_t = dream(tensor, tiny_model, settings())
    assert isinstance(out_t, torch.Tensor) and out_t.shape == tensor.shape
    assert np.array_equal(out_t.numpy(), dream(tensor.numpy(), tiny_model, settings()))


def test_an_image_the_network_runs_on_is_dreamed_as_before_at_its_own_size(
        tiny_model, make_image) -> None:
    img = make_image(20, 24)  # over inception4b's smallest side, under one octave's 32
    tiling_module._MIN_SIDES.pop(tiny_model, None)  # the sizes probed again, in this dream
    seen: list[tuple[int, ...]] = []
    handle = tiny_model.register_forward_pre_hook(
        lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        out = dream(img, tiny_model, settings(layer="inception4b", jitter=0))
    finally:
        handle.remove()
    assert seen == [(20, 24)] * 3  # the image itself, once a step: not grown, probes unseen
    assert tiling_module._MIN_SIDES[tiny_model][("inception4b",)] == 15
    assert np.array_equal(out, dream(img, tiny_model, settings(layer="inception4b", jitter=0)))


def test_octaves_smaller_than_the_network_runs_on_are_left_out(tmp_path: Path) -> None:
    from deepdream.models import registry

    models = tmp_path / "models.toml"
    models.write_text('[models.v3]\narch = "inception_v3"\nweights = "random"\n')
    model = registry.load("v3", "cpu", models_file=models)
    base = {"model": "v3", "layer": "Mixed_7a", "iterations": 1, "octave_scale": 1.4,
            "jitter": 2, "seed": 2}
    assert min_input_side(model, ["Mixed_7a"]) == 75  # the 41 and 57 octaves of 80: refused
    img = noise(80, 80)
    out = dream(img, model, DreamSettings.from_dict({**base, "octaves": 3}))
    assert np.abs(out - img).mean() > 1e-4
    assert np.array_equal(out, dream(img, model, DreamSettings.from_dict({**base,
                                                                          "octaves": 1})))
    small = dream(noise(30, 90), model, DreamSettings.from_dict({**base, "octaves": 3}))
    assert small.shape == (30, 90, 3) and np.isfinite(small).all()


def test_a_network_that_runs_on_no_size_gives_the_one_line_error(
        tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dream_module, "min_input_side", lambda *_: None)
    with pytest.raises(DreamError, match=r"^the image is too small \(3x2 at octave 1\) for the "
                                         r"layer\(s\) inception4c; use a bigger image"):
        dream(noise(2, 3), tiny_model, settings())
    with pytest.raises(DreamError, match=r"too small \(3x2 at octave 1\)"):
        dream(noise(2, 3), tiny_model, settings(from_noise=True))


def test_a_small_seamless_texture_is_refused_in_one_line(tiny_model) -> None:
    # cut out of a bigger dream, it would not wrap around: the option would be a lie
    side = min_input_side(tiny_model, ["inception4c"])
    assert side is not None and side > 4
    with pytest.raises(DreamError, match=rf"^a seamless texture needs at least {side}x{side} "
                                         r"pixels for the layer\(s\) inception4c, not 4x3"):
        dream(noise(3, 4), tiny_model, settings(seamless=True))
    assert dream(noise(side, side), tiny_model, settings(seamless=True)).shape == (side, side, 3)
