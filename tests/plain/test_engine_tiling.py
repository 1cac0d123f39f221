"""Tiled gradients equal untiled ones where the halo covers the receptive field; tiled
dreams show no seam; the tile size follows the free memory."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, dream, tiling
from deepdream.engine.objectives import layers_l2


def test_spans_cover_the_axis_once_and_cut_on_the_stride() -> None:
    for n, tile in ((256, 128), (200, 64), (50, 64), (1000, 96), (97, 32)):
        spans = tiling.spans(n, tile)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a1 == b0 for (_, a1), (b0, _) in zip(spans, spans[1:], strict=False))
        assert all(a % tiling.ALIGN == 0 for a, _ in spans)
        assert all(b - a <= tile + tiling.ALIGN for a, b in spans)


@pytest.mark.parametrize("layer", ["conv3", "inception3a"])
def test_tiled_gradient_equals_untiled(tiny_model, make_image, layer: str) -> None:
    x = torch.from_numpy(make_image(160, 192)).permute(2, 0, 1)[None].contiguous()
    objective = layers_l2([(layer, 1.0)])
    whole = tiling.gradient(x, tiny_model, objective, tile=4096, offset=(5, 7))
    tiled = tiling.gradient(x, tiny_model, objective, tile=64, offset=(5, 7), halo=64)
    # float32 rounding: oneDNN picks its kernels by shape, so a tile's sums may round apart
    # (up to 1.8e-4 of the largest value on an AMD EPYC); a halo short by 16 px is 1e-2 off
    assert torch.allclose(tiled, whole, rtol=1e-3, atol=1e-3 * whole.abs().max().item())


def test_deep_layer_tiled_gradient_is_close_with_the_default_halo(tiny_model, make_image) -> None:
    x = torch.from_numpy(make_image(192, 192)).permute(2, 0, 1)[None].contiguous()
    objective = layers_l2([("inception4c", 1.0)])
    whole = tiling.gradient(x, tiny_model, objective, tile=4096, offset=(3, 9))
    tiled = tiling.gradient(x, tiny_model, objective, tile=96, offset=(3, 9))
    cos = torch.nn.functional.cosine_similarity(whole.flatten(), tiled.flatten(), dim=0)
    assert cos > 0.95


def test_a_tiled_dream_has_no_seam_and_looks_like_the_untiled_one(tiny_model, make_image) -> None:
    img = make_image(128, 128)
    common = {"model": "tiny", "layer": "inception3b", "iterations": 6, "octaves": 1,
              "jitter": 0, "seed": 2}
    whole = dream(img, tiny_model, DreamSettings.from_dict({**common, "tile": 4096}))
    tiled = dream(img, tiny_model, DreamSettings.from_dict({**common, "tile": 64}))
    d_whole, d_tiled = whole - img, tiled - img
    assert np.abs(d_tiled).mean() == pytest.approx(np.abs(d_whole).mean(), rel=0.3)
    for axis in (0, 1):  # jumps across rows, then across columns, away from the edges
        jumps = np.abs(np.diff(d_tiled, axis=axis)).mean(axis=(1 - axis, 2))[8:-8]
        at_cut = jumps[64 - 1 - 8]  # between pixel 63 and 64, where the grid is unshifted
        assert at_cut < 1.5 * np.median(jumps)
        assert jumps.max() < 4 * np.median(jumps)


def test_the_tile_grid_moves_every_step_when_the_image_is_tiled() -> None:
    rng = random.Random(0)
    tiled = [tiling.random_offsets(rng, 1000, 800, 256, 0) for _ in range(200)]
    assert len({o for o in tiled}) > 150
    assert max(o[0] for o in tiled) > 800 and max(o[1] for o in tiled) > 600
    single = [tiling.random_offsets(rng, 100, 80, 256, 4) for _ in range(200)]
    assert {o[0] for o in single} == set(range(-4, 5))  # just the jitter


def test_auto_tile_follows_free_memory(tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    # free_memory is the device query (a GPU's cannot be had here): feed it sizes
    monkeypatch.setattr(tiling, "free_memory", lambda device: 64 << 30)
    big = tiling.auto_tile(tiny_model)
    monkeypatch.setattr(tiling, "free_memory", lambda device: 256 << 20)
    small = tiling.auto_tile(tiny_model)
    assert tiling.MIN_TILE <= small < big <= tiling.MAX_TILE
    per_px = tiling._BYTES_PER_PIXEL[tiny_model.spec.arch]
    assert big * big * per_px <= 1536 << 20  # the CPU cap keeps a CPU dream within a few GB
    assert small % 64 == 0 and big % 64 == 0


def test_gpu_free_memory_counts_pytorchs_own_cached_blocks(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    # No GPU here: the three CUDA memory queries are faked.  After a job PyTorch keeps its
    # blocks cached (reserved, not allocated); the driver's free figure drops by them, the
    # dream's budget must not, or the next job gets another tile (and another dream).
    from deepdream import devices

    gib = 1 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 * gib, 8 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 4 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 1 * gib)
    assert devices.free_memory(torch.device("cuda")) == 6 * gib
