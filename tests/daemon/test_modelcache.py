"""The daemon's warm-model cache: least recently used out when over its memory bound, and
unloading after idle time (off by default).  Small torch modules stand in for networks."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from deepdream.modelcache import ModelCache, model_bytes


def make_loader(loads: list[str]) -> Callable[[str], torch.nn.Module]:
    def load(name: str) -> torch.nn.Module:
        loads.append(name)
        return torch.nn.Linear(256, 256)  # 65 792 floats = 263 168 bytes

    return load


SIZE = model_bytes(torch.nn.Linear(256, 256))


def test_warm_model_is_not_loaded_twice() -> None:
    loads: list[str] = []
    cache = ModelCache(make_loader(loads), max_bytes=10 * SIZE)
    first = cache.get("a")
    assert cache.get("a") is first and loads == ["a"]


def test_least_recently_used_model_goes_when_over_the_memory_bound() -> None:
    loads: list[str] = []
    cache = ModelCache(make_loader(loads), max_bytes=2 * SIZE)
    cache.get("a")
    cache.get("b")
    cache.get("a")  # b is now the least recently used
    cache.get("c")
    assert cache.names() == ["a", "c"]
    cache.get("b")
    assert loads == ["a", "b", "c", "b"]


def test_a_model_bigger_than_the_bound_still_loads_alone() -> None:
    cache = ModelCache(make_loader([]), max_bytes=SIZE // 2)
    cache.get("a")
    cache.get("b")
    assert cache.names() == ["b"]


def test_idle_unload_is_off_by_default_and_drops_idle_models_when_on() -> None:
    cache = ModelCache(make_loader([]), max_bytes=10 * SIZE)
    cache.get("a")
    assert cache.unload_idle() == [] and cache.names() == ["a"]
    cache.idle_seconds = 0.01
    time.sleep(0.05)
    cache.get("b")  # just used: stays
    assert cache.unload_idle() == ["a"] and cache.names() == ["b"]


def test_a_model_is_idle_from_the_end_of_its_last_job_not_its_start() -> None:
    """A job longer than --unload-after had its model unloaded right after (or under) it."""
    cache = ModelCache(make_loader([]), max_bytes=10 * SIZE, idle_seconds=0.2)
    cache.get("a")  # a job starts
    time.sleep(0.3)  # and runs past the idle time
    cache.touch("a")  # it ends
    assert cache.unload_idle() == [] and cache.names() == ["a"]
    time.sleep(0.3)
    assert cache.unload_idle() == ["a"]
