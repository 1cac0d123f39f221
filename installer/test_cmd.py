"""`install.py test`: set up the venv with the test extras and run the whole test suite."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from .machine import this_machine
from .plugin_files import REPO, InstallError
from .torch_choice import TorchChoiceError, choose_torch
from .venv import describe_device, ensure_venv, install_project, install_torch

NO_TESTS = 5  # pytest's exit status when it collected nothing


def prepare(prefix: Path, torch_override: str | None, extras: list[str]) -> Path:
    """Venv + torch + the project; return the venv's python."""
    m = this_machine()
    choice = choose_torch(m.system, m.arch, m.nvidia_gpu, torch_override)
    py = ensure_venv(prefix)
    info = install_torch(py, choice)
    install_project(py, extras)
    print(describe_device(info))
    return py


def run(args: argparse.Namespace) -> int:
    try:
        prefix = (args.prefix or REPO / ".venv").expanduser().resolve()  # (pytest runs in REPO)
        py = prepare(prefix, args.torch, ["test"])
    except (InstallError, TorchChoiceError, OSError) as e:
        print(f"install.py: error: {e}")
        return 1
    extra = [a for a in args.pytest_args if a != "--"]
    cmd = [str(py), "-m", "pytest", *extra]
    print("+ " + " ".join(cmd), flush=True)
    return verdict(subprocess.run(cmd, cwd=REPO).returncode)


def verdict(pytest_status: int) -> int:
    """install.py test's exit status: pytest's, except that 'no tests collected' fails too."""
    if pytest_status == NO_TESTS:
        print("install.py: error: pytest collected no tests; that counts as a failure")
        return 1
    return pytest_status
