#!/usr/bin/env python3
"""Install DeepDream: daemon venv + PyTorch, Krita and GIMP plug-ins, config, daemon.

Standard library only, so it runs with any Python >= 3.10 before anything is installed.
The work lives in the installer/ package beside this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installer import plugin_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="install.py", description="Install DeepDream for Krita, GIMP and the command line.")
    sub = parser.add_subparsers(dest="command")
    plugin_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - the user may run any python
        print("install.py needs Python 3.10 or newer")
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
