"""`python install.py`: everything from a fresh machine to a running daemon and plug-ins."""

from __future__ import annotations

import argparse

from .plugin_files import InstallError
from .test_cmd import prepare
from .torch_choice import TorchChoiceError


def add_options(p: argparse.ArgumentParser) -> None:
    """Options of the full install (none yet beyond the venv ones)."""


def run(args: argparse.Namespace) -> int:
    try:
        prepare(args.prefix, args.torch, [])
    except (InstallError, TorchChoiceError, OSError) as e:
        print(f"install.py: error: {e}")
        return 1
    return 0
