"""Gradient normalisations, smoothing, penalties, transforms, keep-colours and wrapping."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from deepdream.engine.priors_extra import (
    affine,
    blur,
    from_ycbcr,
    keep_colors,
    l2_step,
    laplacian_merge,
    laplacian_split,
    luma_only,
    normalize,
    random_affine,
    resize_wrapped,
    smoothing_sigma,
    to_ycbcr,
    tv_step,
)


def _noise(h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def tv_penalty(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()


def _high_frequency_share(x: torch.Tensor) -> float:
    """Fraction of the energy above a quarter of the Nyquist frequency."""
    spec = torch.fft.rfft2(x - x.mean()).abs().square()
    fy = torch.fft.fftfreq(x.shape[2]).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(x.shape[3]).view(1, -1)
    high = (torch.maximum(fy, fx) > 0.125).expand_as(spec[0, 0])
    return (spec[..., high].sum() / spec.sum()).item()


def test_every_normalisation_gives_unit_scale_steps() -> None:
    g = _noise() * 1e-3 - 5e-4
    assert normalize(g.clone(), "mean").abs().mean().item() == pytest.approx(1.0, rel=1e-3)
    assert normalize(g, "std").std().item() == pytest.approx(1.0, rel=1e-3)
    assert normalize(g, "laplacian").abs().mean().item() == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="mean, std, laplacian"):
        normalize(g, "median")


@pytest.mark.parametrize(("size", "shift"), [((64, 96), (32, 48)), ((24, 200), (8, 96))])
def test_laplacian_normalisation_of_a_seamless_image_has_no_seam(size, shift) -> None:
    """A seamless texture's step is the same wherever its seam lies: the gradient rolled
    around the torus, normalised and rolled back, is the gradient normalised.  The pyramid
    clamped at the edges, so the seam's step differed by up to 1.7 (the step is ~1).  (By
    whole coarse-band pixels, 8: a pyramid of halvings is never the same shifted by less.)"""
    g = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    direct = normalize(g, "laplacian", wrap=True)
    rolled = normalize(torch.roll(g, shift, (2, 3)), "laplacian", wrap=True)
    assert (direct - torch.roll(rolled, (-shift[0], -shift[1]), (2, 3))).abs().max() < 1e-4
    assert direct.shape == g.shape and direct.abs().mean().item() == pytest.approx(1.0, 1e-3)


def test_laplacian_normalisation_lifts_the_coarse_bands_of_a_noisy_gradient() -> None:
    # a smooth blob buried in strong pixel noise, as a raw gradient often is
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) * 4).expand(1, 3, 64, 64)
    g = 0.2 * blob + (torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) - 0.5)
    assert _high_frequency_share(normalize(g, "laplacian")) < _high_frequency_share(g)
    bands = laplacian_split(g, 4)
    assert torch.allclose(laplacian_merge(bands), g, atol=1e-5)


def test_blur_smooths_and_the_smoothing_relaxes_over_the_steps() -> None:
    x = _noise()
    assert tv_penalty(blur(x, 1.0)) < tv_penalty(x) / 2
    assert torch.equal(blur(x, 0.0), x)
    sigmas = [smoothing_sigma(2.0, i, 10) for i in range(10)]
    assert sigmas[0] == 2.0 and sigmas[-1] == pytest.approx(0.4)
    assert all(a > b for a, b in zip(sigmas, sigmas[1:], strict=False))
    assert smoothing_sigma(0.0, 3, 10) == 0.0


def test_tv_and_l2_steps_flatten_noise_and_pull_to_grey() -> None:
    x = _noise()
    before = tv_penalty(x)
    tv_step(x, 0.2)
    assert tv_penalty(x) < before * 0.7
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(tv_step(flat.clone(), 0.2), flat)  # nothing to flatten
    ones = torch.ones(1, 3, 4, 4)
    assert torch.allclose(l2_step(ones, 0.1), torch.full_like(ones, 0.95))
    assert torch.equal(l2_step(torch.zeros(1), 0.0), torch.zeros(1))
    # wrapped diffusion treats the opposite edge as a neighbour
    edge = torch.zeros(1, 1, 4, 4)
    edge[..., 0] = 1.0
    assert tv_step(edge.clone(), 0.1, wrap=True)[..., -1].mean() > 0
    assert tv_step(edge.clone(), 0.1, wrap=False)[..., -1].mean() == 0


def test_affine_rotation_and_random_robustness_transform() -> None:
    x = torch.zeros(1, 1, 33, 33)
    x[..., 16, 20:30] = 1.0  # a bar to the right of the centre
    turned = affine(x, scale=1.0, radians=math.pi / 2)
    # a quarter turn moves it onto the vertical through the centre
    assert turned[..., :, 16].sum() > 5 * turned[..., 16, 20:30].sum()
    assert torch.allclose(affine(x, 1.0, 0.0), x, atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    y = random_affine(_noise(), gen, max_scale=0.1, max_degrees=10)
    assert y.shape == (1, 3, 32, 40) and not torch.allclose(y, _noise())


def test_ycbcr_round_trip_and_keep_colors_keeps_chroma() -> None:
    x = _noise()
    assert torch.allclose(from_ycbcr(to_ycbcr(x)), x, atol=1e-5)
    original = _noise(seed=1) * 0.6 + 0.2
    dreamed = (original + 0.3 * (_noise(seed=2) - 0.5)).clamp(0, 1)
    kept = keep_colors(dreamed, original)
    assert torch.allclose(to_ycbcr(kept)[:, 1:], to_ycbcr(original)[:, 1:], atol=1e-4)
    assert torch.allclose(to_ycbcr(kept)[:, :1], to_ycbcr(dreamed)[:, :1], atol=1e-4)


def test_luma_only_gradient_leaves_chroma_alone() -> None:
    g = luma_only(_noise() - 0.5)
    assert torch.allclose(to_ycbcr(g)[:, 1:], torch.zeros(1, 2, 32, 40), atol=1e-6)


def test_periodic_resize_does_not_clamp_at_the_edges() -> None:
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16)
    up = resize_wrapped(ramp, (32, 32))
    plain = F.interpolate(ramp, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(up[..., 2:-2], plain[..., 2:-2], atol=1e-5)
    # at the left edge it blends towards the right edge's value, as a tiled image would
    assert up[0, 0, 0, 0] > plain[0, 0, 0, 0] + 0.1


def test_seamless_octave_downscale_is_antialiased() -> None:
    from deepdream.engine.looks import resize

    checker = ((torch.arange(40).view(-1, 1) + torch.arange(40).view(1, -1)) % 2).float()
    checker = checker.expand(1, 3, 40, 40)
    small = resize(checker, (28, 28), seamless=True)
    # pixel-level detail cannot survive 1.4x smaller: it should average out to grey
    assert small.std().item() < 0.1 and abs(small.mean().item() - 0.5) < 0.02
