"""Which torch device to dream on, its reduced-precision autocast type and its free memory."""

from __future__ import annotations

import os

import torch


class DeviceError(ValueError):
    """A device that was asked for is not present; the message is one line."""


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple MPS, then the CPU; anything else must exist."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device 'cuda' asked for but no CUDA GPU is usable; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif device.type == "mps":
        if not _mps_available():
            raise DeviceError(
                "device 'mps' asked for but Apple MPS is not usable; use --device cpu"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The device's default autocast type: bf16 (or fp16) on CUDA, fp16 on MPS, None
    (float32) on the CPU.  Only the fallback for a model ``accel.prepare`` has not set a
    dtype on (``accel.compute_dtype``); ``prepare`` itself picks ``accel.reduced_dtype``,
    which is bf16 on a CPU with native bf16 matrix units (AMX, AVX512-BF16), and keeps it
    only where ``precision_check`` passes."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def free_memory(device: torch.device) -> int:
    """Bytes the dream may plausibly use on ``device`` right now."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # PyTorch's own cached, unused blocks count as free: without them the tile (chosen
        # from this) shrank after each job as the cache grew, and a new tile meant new
        # graphs and another random sequence, so the same seed dreamed differently
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(cached, 0))
    if device.type == "mps":
        try:
            limit = int(torch.mps.recommended_max_memory())
            return max(limit - int(torch.mps.driver_allocated_memory()), 0)
        except (AttributeError, RuntimeError):
            return 4 << 30
    return _host_available_memory()


def _host_available_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # other POSIX systems
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # Windows and the rest: assume a modest machine
