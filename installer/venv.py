"""The daemon's virtual environment: create or reuse it, install PyTorch and the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from .plugin_files import REPO, InstallError
from .torch_choice import PROBE, TorchChoice, satisfies
from .venv_probes import run_probe

# pip messages that mean the package index could not be reached
_OFFLINE_HINTS = ("NewConnectionError", "Failed to establish a new connection",
                  "Temporary failure in name resolution", "Network is unreachable",
                  "ConnectTimeout", "ReadTimeout", "No matching distribution found",
                  "Could not find a version")


def bin_dir(prefix: Path, windows: bool | None = None) -> Path:
    windows = os.name == "nt" if windows is None else windows
    return prefix / ("Scripts" if windows else "bin")


def python_in(prefix: Path) -> Path:
    return bin_dir(prefix) / ("python.exe" if os.name == "nt" else "python")


def script_in(prefix: Path, name: str) -> Path:
    return bin_dir(prefix) / (f"{name}.exe" if os.name == "nt" else name)


def refuse_foreign(prefix: Path) -> None:
    """InstallError unless ``prefix`` is new, empty or a virtual environment: a venv is
    made only where nothing of the user's would go with it."""
    if prefix.exists() and any(prefix.iterdir()) and not (prefix / "pyvenv.cfg").exists():
        raise InstallError(f"{prefix} exists and is not a virtual environment; "
                           "choose a new or empty folder with --prefix")


def _has_pip(py: Path) -> bool:
    return subprocess.run([str(py), "-c", "import pip"], capture_output=True).returncode == 0


def ensure_venv(prefix: Path) -> Path:
    """Create the venv unless a working one is there; return its python.  A venv that is
    there without pip (made by uv, or --without-pip) gets pip, never a clean slate: what
    its owner installed in it stays."""
    py = python_in(prefix)
    if py.exists() and _has_pip(py):
        return py
    refuse_foreign(prefix)
    if py.exists() and (prefix / "pyvenv.cfg").exists():
        print(f"adding pip to the virtual environment {prefix}")
        subprocess.run([str(py), "-m", "ensurepip", "--upgrade"])
        if _has_pip(py):
            return py
        raise InstallError(f"{prefix} is a virtual environment without pip, and ensurepip "
                           "could not add it; add pip to it, or choose another --prefix")
    print(f"creating the virtual environment {prefix}")
    if _make_venv(prefix, py):
        return py
    apt_pkg = f"python3.{sys.version_info.minor}-venv"
    if _can_apt():
        # Debian/Ubuntu split venv's pip bootstrap out of python3; as root we can add it
        print(f"venv needs {apt_pkg}; installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", apt_pkg], env=env)
        if _make_venv(prefix, py):
            return py
    raise InstallError(f"could not create a virtual environment in {prefix}; on Debian/Ubuntu "
                       f"install it first: sudo apt install {apt_pkg}")


def _make_venv(prefix: Path, py: Path) -> bool:
    r = subprocess.run([sys.executable, "-m", "venv", "--clear", str(prefix)])
    return r.returncode == 0 and py.exists()


def _can_apt() -> bool:
    return (sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0
            and shutil.which("apt-get") is not None)


def pip(py: Path, args: Sequence[str], what: str) -> None:
    """Run pip in the venv, showing its output; a failure becomes one clear error."""
    cmd = [str(py), "-m", "pip", "install", *args]
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        tail = (tail + [line])[-40:]
    if proc.wait() != 0:
        text = "".join(tail)
        if offline(text):
            raise InstallError(
                f"could not install {what}: the package index {index_url(py, args)} could not "
                "be reached or has no matching package (offline?); connect to the internet "
                "and run install.py again")
        raise InstallError(f"pip failed installing {what} (see its output above)")


def offline(pip_output: str) -> bool:
    """Whether pip's output says the package index could not be reached (or lacked it)."""
    return any(h in pip_output for h in _OFFLINE_HINTS)


PYPI = "https://pypi.org/simple"


def index_url(py: Path, args: Sequence[str]) -> str:
    """The index pip used, as it may be shown (without a user name or token in it):
    --index-url in its arguments, else PIP_INDEX_URL, else pip's configured one, else PyPI's."""
    return _without_credentials(_index_url(py, args))


def _without_credentials(url: str) -> str:
    """``https://user:token@host/simple`` as ``https://host/simple``: the message may end up
    in a log or a bug report."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _index_url(py: Path, args: Sequence[str]) -> str:
    for i, arg in enumerate(args):
        if arg in ("--index-url", "-i") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--index-url="):
            return arg.partition("=")[2]
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    try:
        r = subprocess.run([str(py), "-m", "pip", "config", "list"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return PYPI
    for line in r.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".index-url") and value.strip().strip("'\""):
            return value.strip().strip("'\"")
    return PYPI


# torch's first import after pip compiles its .pyc files: slow on a small machine, so
# this probe gets far longer than run_probe's default
TORCH_PROBE_S = 900.0


def install_torch(py: Path, choice: TorchChoice) -> dict:
    """Install the chosen torch unless the venv already has one that fits; return its probe."""
    found = run_probe(py, PROBE, timeout=TORCH_PROBE_S)
    if satisfies(choice, found):
        print(f"PyTorch {found['version']} already installed: reusing it")
        return found
    if found.get("version"):
        # another build (a CPU one for --torch cuda): pip would call it satisfied and keep it
        print(f"PyTorch {found['version']} does not fit ({choice.reason}): replacing it")
        subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "torch", "torchvision"],
                       check=False)
    print(f"installing PyTorch ({choice.reason})")
    pip(py, ["torch>=2.10", "torchvision", *choice.pip_args()], "PyTorch")
    found = run_probe(py, PROBE, timeout=TORCH_PROBE_S)
    if "error" in found:
        raise InstallError(f"PyTorch was installed but does not import: {found['error']}")
    if not satisfies(choice, found):
        raise InstallError(f"pip installed PyTorch {found.get('version')}, which does not fit "
                           f"({choice.reason}); see pip's output above")
    return found


def install_project(py: Path, extras: Sequence[str] = (), repo: Path = REPO) -> None:
    """Editable install, so `git pull` + re-running install.py upgrades in place."""
    target = str(repo) + (f"[{','.join(extras)}]" if extras else "")
    pip(py, ["-e", target], "the deepdream package")


def describe_device(info: dict) -> str:
    device = info.get("device", "cpu")
    name = f" ({info['device_name']})" if info.get("device_name") else ""
    build = f"CUDA {info['cuda']}" if info.get("cuda") else "CPU/MPS"
    return f"PyTorch {info.get('version')} ({build} build); dreams will run on {device}{name}"
