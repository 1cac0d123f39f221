"""The fast path's step logic on the CPU: the device-side gather roll, offsets drawn ahead,
and an octave run that gives the engine's own result for the same seed.  The CUDA graph
capture itself runs only on a GPU (bench/check_fastpath_cuda.py, via bench/gpu_check.sh)."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, dream, fastpath
from deepdream.engine.dream import Cancelled
from deepdream.engine.objectives import layers_l2
from deepdream.engine.tiling import gradient
from deepdream.models import registry

from tests.support import TINY_MODELS
from tests.support.graphs import EagerGraph

MODELS = str(TINY_MODELS)
_STEP_UNIT = 1.0 / 255  # settings.step counts 0..255 levels, as in dream.py


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return registry.load("tiny", "cpu", MODELS)


@pytest.mark.parametrize("oy, ox", [(0, 0), (3, -5), (-32, 17), (70, -90)])
def test_gather_roll_is_torch_roll_backwards(oy: int, ox: int) -> None:
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(oy * 100 + ox))
    out = fastpath.roll_gather(x, torch.tensor(oy), torch.tensor(ox))
    assert torch.equal(out, torch.roll(x, (-oy, -ox), (2, 3)))
    assert torch.equal(fastpath.roll_gather(out, torch.tensor(-oy), torch.tensor(-ox)), x)


def test_offsets_drawn_ahead_follow_the_seed() -> None:
    a = fastpath.draw_offsets(random.Random(7), 10, (60, 80), 4096, 32)
    b = fastpath.draw_offsets(random.Random(7), 10, (60, 80), 4096, 32)
    c = fastpath.draw_offsets(random.Random(8), 10, (60, 80), 4096, 32)
    assert a == b != c
    assert all(abs(oy) <= 32 and abs(ox) <= 32 for oy, ox in a)


@pytest.mark.parametrize("h, w, steps, seed, tile", [(64, 96, 4, 11, 4096), (96, 160, 3, 5, 64)],
                         ids=["one_tile", "tiled"])
def test_octave_with_predrawn_offsets_equals_the_engine_loop(
        model: torch.nn.Module, h: int, w: int, steps: int, seed: int, tile: int) -> None:
    """Same seed, same schedule (one octave): the fast path's steps, the roll held in a
    device tensor, give the engine's dream to float32 rounding (1e-5 absolute on [0, 1]
    pixels); tiled, 2 x 3 tiles of 64 px with halos and grid shifts."""
    image = np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)
    settings = DreamSettings.from_dict({"model": "tiny", "octaves": 1, "iterations": steps,
                                        "seed": seed, "tile": tile})
    expected = dream(image, model, settings)

    x = torch.from_numpy(image).permute(2, 0, 1)[None].clone()
    offsets = fastpath.draw_offsets(random.Random(seed), steps, (h, w), tile, settings.jitter)
    if tile < max(h, w):  # the offsets carry the tile grid's shifts
        assert all(oy > settings.jitter or ox > settings.jitter for oy, ox in offsets)
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    fastpath.run_octave_eager(x, model, objective, offsets, settings.step * _STEP_UNIT,
                              tile=tile)
    got = x[0].permute(1, 2, 0).numpy()
    assert np.abs(got - image).max() > 0.01  # it did dream
    assert np.abs(got - expected).max() < 1e-5


def test_capture_failure_is_remembered(model: torch.nn.Module,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """On a machine without CUDA the capture fails: None (the caller runs eagerly), and the
    failure is cached so it is not retried per job (one attempt, one warning)."""
    if torch.cuda.is_available():
        pytest.skip("this machine can capture; the GPU check covers the graph")
    objective = layers_l2((("inception3a", 1.0),))
    shape = torch.Size((1, 3, 48, 48))
    try:
        with caplog.at_level(logging.WARNING, logger="deepdream.engine"):
            assert fastpath.octave_graph(model, objective, shape, 2, 0.01, None, "k") is None
            assert fastpath.octave_graph(model, objective, shape, 2, 0.01, None, "k") is None
        assert caplog.text.count("CUDA graph capture failed") == 1
    finally:
        fastpath.clear_graphs()


def test_warm_up_leaves_the_model_as_it_was(model: torch.nn.Module) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fastpath.warm_up(model, "cpu", size=48, steps=1)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_reduced_weight_copy_steps_like_autocast(model: torch.nn.Module) -> None:
    """DEEPDREAM_COMPILE's step: a copy of the model in bf16, the image cast to it, no
    autocast.  Without inductor (which only a GPU check runs: bench/check_fastpath_cuda.py)
    that step must be as close to float32's step as the engine's bf16 autocast step is."""
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    reduced = fastpath.compiled_model(model, torch.bfloat16)
    assert reduced is fastpath.compiled_model(model, torch.bfloat16)  # made once per model
    assert next(reduced.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32  # the original is left alone
    eager = getattr(reduced, "_orig_mod", reduced)  # the copy, without compiling it here
    x0 = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    exact, auto, cast = x0.clone(), x0.clone(), x0.clone()
    offset = torch.tensor([3, -7])
    fastpath.dream_step(exact, offset, model, objective, 0.05, None)
    fastpath.dream_step(auto, offset, model, objective, 0.05, torch.bfloat16)
    fastpath.dream_step(cast, offset, eager, objective, 0.05, None, torch.bfloat16)
    assert cast.dtype == torch.float32 and (exact - x0).abs().max() > 0.01

    def err(x: torch.Tensor) -> float:
        return float((x - exact).norm() / (exact - x0).norm())
    assert err(cast) < 1.5 * err(auto), (err(cast), err(auto))
    fastpath.clear_graphs()
    assert not fastpath._compiled


@pytest.mark.parametrize("offset", [(0, 0), (3, -7), (-31, -5), (127, 191), (-32, 200),
                                    (500, -700)])
def test_tiled_gradient_with_a_device_offset_equals_the_host_offset(
        model: torch.nn.Module, offset: tuple[int, int]) -> None:
    """The graph path hands tiling.gradient its roll as a tensor: negative offsets and grid
    shifts past the image's size must wrap exactly as the host integers do."""
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    x = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(9))
    want = gradient(x, model, objective, 64, offset)
    got = gradient(x, model, objective, 64, torch.tensor(offset))
    assert torch.equal(got, want)


@pytest.fixture
def fake_graphs(monkeypatch: pytest.MonkeyPatch) -> list[EagerGraph]:
    made: list[EagerGraph] = []

    def octave_graph(model, objective, shape, steps, step_size, dtype, key, compiled=False,
                     tile=None):
        made.append(EagerGraph(model, objective, shape, steps, step_size, dtype, compiled,
                               tile))
        return made[-1]

    monkeypatch.setattr(fastpath, "captures", lambda device: True)
    monkeypatch.setattr(fastpath, "octave_graph", octave_graph)
    return made


def test_graph_path_replays_a_tiled_octave_step_by_step_with_progress(
        model: torch.nn.Module, fake_graphs: list[EagerGraph]) -> None:
    settings = DreamSettings.from_dict({"model": "tiny", "octaves": 2, "iterations": 3,
                                        "seed": 2, "tile": 64})
    image = np.random.default_rng(6).random((72, 120, 3), dtype=np.float32)
    seen: list[tuple[int, int]] = []
    got = dream(image, model, settings, progress=lambda p: seen.append((p.octave, p.step)))
    # octave 1 (51x86) is tiled too: every octave replays one step at a time
    assert [g.runs for g in fake_graphs] == [[1, 1, 1], [1, 1, 1]]
    assert seen == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    fastpath.ENABLED = False
    try:
        want = dream(image, model, settings)
    finally:
        fastpath.ENABLED = True
    assert np.abs(got - want).max() < 1e-5  # the engine's own eager loop, same seed


def test_graph_path_runs_a_one_tile_octave_in_one_replay_and_cancel_stops_a_tiled_one(
        model: torch.nn.Module, fake_graphs: list[EagerGraph]) -> None:
    image = np.random.default_rng(7).random((48, 64, 3), dtype=np.float32)
    one = DreamSettings.from_dict({"model": "tiny", "octaves": 1, "iterations": 4, "seed": 1})
    dream(image, model, one)
    assert fake_graphs[-1].runs == [4] and fake_graphs[-1].tile is None

    tiled = DreamSettings.from_dict({"model": "tiny", "octaves": 1, "iterations": 4,
                                     "seed": 1, "tile": 32})
    steps: list[int] = []
    with pytest.raises(Cancelled):
        dream(image, model, tiled, progress=lambda p: steps.append(p.step),
              cancel=lambda: len(steps) >= 2)
    assert fake_graphs[-1].runs == [1, 1] and steps == [1, 2]
