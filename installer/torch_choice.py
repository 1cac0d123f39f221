"""Which PyTorch build to install, and whether an installed one already fits.

Pure functions of the machine's facts (OS, architecture, NVIDIA GPU present) so every
platform's choice is unit-tested from one machine.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_TORCH = (2, 10)
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# PyTorch's CUDA wheel index for Windows (PyPI's Windows torch is CPU-only)
WINDOWS_CUDA_TAG = "cu128"


class TorchChoiceError(Exception):
    """No PyTorch build this project can use exists for the machine/override."""


@dataclass(frozen=True)
class TorchChoice:
    flavor: str  # "cuda", "mps" or "cpu": what the build is for
    index_url: str | None  # None: the configured package index (PyPI by default)
    reason: str

    def pip_args(self) -> list[str]:
        return ["--index-url", self.index_url] if self.index_url else []


def _is_x86_64(machine: str) -> bool:
    return machine.lower() in ("x86_64", "amd64", "x64")


def _is_arm64(machine: str) -> bool:
    return machine.lower() in ("arm64", "aarch64")


def choose_torch(system: str, machine: str, nvidia_gpu: bool,
                 override: str | None = None) -> TorchChoice:
    """system: platform.system(); machine: platform.machine(); override: "cpu"/"cuda"/None."""
    cpu_index = TorchChoice("cpu", f"{PYTORCH_INDEX}/cpu", "CPU-only build from PyTorch's index")
    if system == "Darwin":
        if not _is_arm64(machine):
            raise TorchChoiceError(
                f"PyTorch >= {MIN_TORCH[0]}.{MIN_TORCH[1]} has no builds for Intel Macs; "
                "use an Apple silicon Mac or another machine")
        if override == "cuda":
            raise TorchChoiceError("CUDA does not exist on macOS; use --torch cpu or leave it out")
        if override == "cpu":
            return cpu_index
        return TorchChoice("mps", None, "Apple silicon: PyPI's build with Metal (MPS)")
    if override == "cpu":
        return cpu_index
    if system == "Linux" and (_is_x86_64(machine) or _is_arm64(machine)):
        if override == "cuda" or _is_x86_64(machine):
            return TorchChoice("cuda", None, "Linux: PyPI's default build includes CUDA")
        return TorchChoice("cpu", None, "Linux ARM without --torch cuda: PyPI's default build")
    if system == "Windows" and _is_x86_64(machine):
        if override == "cuda" or nvidia_gpu:
            why = "NVIDIA GPU found" if nvidia_gpu else "--torch cuda"
            return TorchChoice("cuda", f"{PYTORCH_INDEX}/{WINDOWS_CUDA_TAG}",
                               f"Windows, {why}: CUDA build from PyTorch's index")
        return cpu_index
    if override == "cuda":
        raise TorchChoiceError(f"no CUDA build of PyTorch exists for {system} {machine}")
    return cpu_index


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def satisfies(choice: TorchChoice, installed: dict | None) -> bool:
    """Whether an installed torch (as reported by PROBE) fits the choice, so no reinstall.

    A CUDA or MPS build runs on the CPU too, so any recent torch satisfies "cpu".
    """
    if not installed or not installed.get("version") or not installed.get("torchvision"):
        return False
    if _version_tuple(installed["version"]) < MIN_TORCH:
        return False
    if choice.flavor == "cuda":
        return bool(installed.get("cuda"))
    if choice.flavor == "mps":
        return bool(installed.get("mps_built"))
    return True


# Run inside the venv: prints what torch is installed and which device it would use.
PROBE = r"""
import json
out = {}
try:
    import torch
    out["version"] = torch.__version__
    out["cuda"] = torch.version.cuda
    mps = getattr(torch.backends, "mps", None)
    out["mps_built"] = bool(mps and mps.is_built())
    if torch.cuda.is_available():
        out["device"] = "cuda"
        out["device_name"] = torch.cuda.get_device_name(0)
    elif mps and mps.is_available():
        out["device"] = "mps"
    else:
        out["device"] = "cpu"
    import torchvision
    out["torchvision"] = torchvision.__version__
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""
