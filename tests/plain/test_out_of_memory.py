"""Running out of memory: the dream starts again in smaller tiles, and gives up with one clear
line.  A GPU's memory limit cannot be reached here (no GPU), so the tests put one in the
engine's gradient call: it raises torch's own OutOfMemoryError for tiles over an edge, as
CUDA would.  The CPU allocator's own failure is real (test_the_cpu_allocators_failure...)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from deepdream import accel
from deepdream.engine import DreamSettings, OutOfMemory, dream

dream_module = importlib.import_module("deepdream.engine.dream")

SETTINGS = {"model": "tiny", "layer": "inception3b", "iterations": 2, "octaves": 1,
            "seed": 3}


@dataclass
class DeviceMemory:
    limit: int = 0  # tiles with a larger edge fail
    tried: list[int] = field(default_factory=list)  # the tile edges tried, in order


@pytest.fixture
def device_memory(monkeypatch: pytest.MonkeyPatch) -> DeviceMemory:
    memory = DeviceMemory()
    real = dream_module.gradient

    def gradient(x, model, objective, tile, offset, **more):  # noqa: ANN001, ANN003
        edge = min(tile, max(x.shape[-2:]))
        memory.tried.append(edge)
        if edge > memory.limit:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 7.79 GiB of which 1.02 GiB is free.")
        return real(x, model, objective, tile, offset, **more)

    monkeypatch.setattr(dream_module, "gradient", gradient)
    return memory


def test_a_dream_out_of_memory_is_dreamed_again_in_half_the_tile(
        tiny_model, make_image, device_memory) -> None:
    img = make_image(384, 512)
    device_memory.limit = 300
    out = dream(img, tiny_model, DreamSettings.from_dict(SETTINGS))
    assert sorted(set(device_memory.tried)) == [256, 512]  # the whole image, then 256-px tiles
    device_memory.limit = 10_000
    tiled = dream(img, tiny_model, DreamSettings.from_dict({**SETTINGS, "tile": 256}))
    assert (out == tiled).all()


def test_the_progress_bar_holds_through_a_retry(tiny_model, make_image, device_memory) -> None:
    device_memory.limit = 300
    seen: list[float] = []
    # the 256x192 octave fits whole, the 512x384 one runs out and is retried in 256-px tiles
    settings = DreamSettings.from_dict({**SETTINGS, "octaves": 2, "octave_scale": 2.0})
    dream(make_image(384, 512), tiny_model, settings, progress=lambda p: seen.append(p.fraction))
    assert len(seen) == 2 + 4  # the retry keeps reporting (a host waits to hear from a job)
    assert seen == sorted(seen) and seen[-1] == 1.0  # held, never backwards


def test_out_of_memory_even_in_the_smallest_tiles_is_one_clear_line(
        tiny_model, make_image, device_memory) -> None:
    img = make_image(384, 512)
    device_memory.limit = 100
    with pytest.raises(OutOfMemory) as err:
        dream(img, tiny_model, DreamSettings.from_dict(SETTINGS))
    assert sorted(set(device_memory.tried)) == [128, 256, 512]
    message = str(err.value)
    assert "\n" not in message and "512x384" in message and "128-pixel tiles" in message


def test_a_tile_between_one_and_two_minimum_tiles_is_retried_at_the_minimum(
        tiny_model, make_image, device_memory) -> None:
    img = make_image(160, 200)
    device_memory.limit = 150
    dream(img, tiny_model, DreamSettings.from_dict(SETTINGS))
    assert sorted(set(device_memory.tried)) == [128, 200]


def test_out_of_memory_outside_the_tiles_gives_up_at_once(tiny_model, make_image,
                                                          monkeypatch) -> None:
    # full-size work (here the step's clamp) needs as much memory in any tile size
    tried: list[int] = []
    real = dream_module.gradient

    def gradient(x, model, objective, tile, offset, **more):  # noqa: ANN001, ANN003
        tried.append(tile)
        return real(x, model, objective, tile, offset, **more)

    def keep_in_range(_x):  # noqa: ANN001
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB.")

    monkeypatch.setattr(dream_module, "gradient", gradient)
    monkeypatch.setattr(dream_module, "keep_in_range", keep_in_range)
    with pytest.raises(OutOfMemory, match="out of memory on cpu for a 64x48 dream; "):
        dream(make_image(48, 64), tiny_model, DreamSettings.from_dict(SETTINGS))
    assert len(set(tried)) == 1


def test_other_runtime_errors_are_not_taken_for_memory(tiny_model, make_image,
                                                       monkeypatch) -> None:
    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")

    monkeypatch.setattr(dream_module, "gradient", broken)
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_INTERNAL_ERROR"):
        dream(make_image(64, 64), tiny_model, DreamSettings.from_dict(SETTINGS))


def test_the_cpu_allocators_and_numpys_failures_count_as_out_of_memory() -> None:
    with pytest.raises(RuntimeError) as torch_err:
        torch.empty(1 << 60, dtype=torch.uint8)  # an exabyte: refused at once, not swapped
    with pytest.raises(MemoryError) as numpy_err:
        np.empty(1 << 60, dtype=np.uint8)
    assert accel.out_of_memory(torch_err.value) and accel.out_of_memory(numpy_err.value)
    # what cuDNN says when its workspace does not fit (no GPU here to make it say so)
    assert accel.out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not accel.out_of_memory(RuntimeError("shape mismatch"))
