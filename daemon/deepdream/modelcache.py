"""Loaded models kept warm between jobs: least recently used first out, bounded by memory."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("deepdream.server")


def model_bytes(model: Any) -> int:
    """Parameter and buffer bytes of a torch module (what stays resident)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class _Entry:
    model: Any
    size: int  # bytes
    version: Hashable  # what the name stood for when it was loaded
    used: float  # time.monotonic() of its last use


class ModelCache:
    """name -> model for one device; ``get`` loads on a miss and evicts to fit ``max_bytes``.

    The model just asked for always stays, even alone over the limit.  ``unload_idle``
    drops models unused for ``idle_seconds`` (0 = never), returning their memory.
    ``version(name)`` says what the name stands for now (a models file can be edited while
    the daemon runs): a model loaded as something else is loaded anew.
    """

    def __init__(self, load: Callable[[str], Any], max_bytes: int,
                 idle_seconds: float = 0.0,
                 version: Callable[[str], Hashable] = lambda name: None) -> None:
        self._load = load
        self._version = version
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self._models: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        version = self._version(name)
        with self._lock:
            entry = self._models.get(name)
            if entry is not None and entry.version == version:
                self._models.move_to_end(name)
                entry.used = time.monotonic()
                return entry.model
            if self._models.pop(name, None) is not None:
                log.info("model %s was redefined; loading it anew", name)
        started = time.monotonic()
        model = self._load(name)
        size = model_bytes(model)
        log.info("loaded model %s (%.0f MB) in %.1f s", name, size / 2**20,
                 time.monotonic() - started)
        with self._lock:
            self._models[name] = _Entry(model, size, version, time.monotonic())
            while len(self._models) > 1 and self.total_bytes() > self.max_bytes:
                old, _ = self._models.popitem(last=False)
                log.info("unloaded model %s (cache over %d MB)", old, self.max_bytes // 2**20)
        return model

    def touch(self, name: str) -> None:
        """``name`` was in use until now (a job's end: idle time counts from there)."""
        with self._lock:
            if name in self._models:
                self._models[name].used = time.monotonic()

    def total_bytes(self) -> int:
        return sum(entry.size for entry in self._models.values())

    def names(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def unload_idle(self) -> list[str]:
        if self.idle_seconds <= 0:
            return []
        cutoff = time.monotonic() - self.idle_seconds
        with self._lock:
            old = [n for n, entry in self._models.items() if entry.used < cutoff]
            for name in old:
                del self._models[name]
        for name in old:
            log.info("unloaded model %s (idle)", name)
        return old
