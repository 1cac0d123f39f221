"""Facts about this machine that the install choices depend on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    system: str  # platform.system()
    arch: str  # platform.machine()
    nvidia_gpu: bool
    home: Path
    env: dict


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver answers: nvidia-smi lists at least one GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None and os.name == "nt":
        candidate = Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32/nvidia-smi.exe"
        exe = str(candidate) if candidate.exists() else None
    if exe is None:
        return False
    try:
        r = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "GPU" in r.stdout


def this_machine() -> Machine:
    return Machine(platform.system(), platform.machine(), has_nvidia_gpu(), Path.home(),
                   dict(os.environ))
