"""Running out of memory: the dream starts again in smaller tiles, and gives up with one clear
line.  A GPU's memory limit cannot be reached here (no GPU), so the tests put one in the
engine's gradient call: it raises torch's own OutOfMemoryError for tiles over an edge, as
CUDA would.  The CPU allocator's own failure is real (test_the_cpu_allocators_failure...)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

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

    def gradient(x, model, objective, tile, offset):  # noqa: ANN001
        edge = min(tile, max(x.shape[-2:]))
        memory.tried.append(edge)
        if edge > memory.limit:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 7.79 GiB of which 1.02 GiB is free.")
        return real(x, model, objective, tile, offset)

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


def test_out_of_memory_even_in_the_smallest_tiles_is_one_clear_line(
        tiny_model, make_image, device_memory) -> None:
    img = make_image(384, 512)
    device_memory.limit = 100
    with pytest.raises(OutOfMemory) as err:
        dream(img, tiny_model, DreamSettings.from_dict(SETTINGS))
    assert sorted(set(device_memory.tried)) == [128, 256, 512]
    message = str(err.value)
    assert "\n" not in message and "512x384" in message and "128-pixel tiles" in message


def test_other_runtime_errors_are_not_taken_for_memory(tiny_model, make_image,
                                                       monkeypatch) -> None:
    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")

    monkeypatch.setattr(dream_module, "gradient", broken)
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_INTERNAL_ERROR"):
        dream(make_image(64, 64), tiny_model, DreamSettings.from_dict(SETTINGS))


def test_the_cpu_allocators_failure_counts_as_out_of_memory() -> None:
    with pytest.raises(RuntimeError) as err:
        torch.empty(1 << 60, dtype=torch.uint8)  # an exabyte: refused at once, not swapped
    assert accel.out_of_memory(err.value)
    assert not accel.out_of_memory(RuntimeError("shape mismatch"))
