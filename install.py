#!/usr/bin/env python3
"""Install DeepDream: daemon venv + PyTorch, Krita and GIMP plug-ins, config, daemon.

Standard library only, so it runs with any Python >= 3.10 before anything is installed.
The work lives in the installer/ package beside this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from installer import full_install, plugin_cli, test_cmd  # noqa: E402


def _venv_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    # a subcommand repeats these with SUPPRESS so `install.py --prefix X test` keeps X
    default = argparse.SUPPRESS if suppress else None
    p.add_argument("--prefix", type=Path, default=argparse.SUPPRESS if suppress else None,
                   help="the daemon's virtual environment (default: the one the last install "
                        "used, else .venv beside install.py; `test`: .venv)")
    p.add_argument("--torch", choices=["cpu", "cuda"], default=default,
                   help="PyTorch build to install instead of the one picked for this machine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install DeepDream for Krita, GIMP and the command line. Without a "
                    "command: create the venv, install PyTorch and the project, install the "
                    "plug-ins into every Krita and GIMP found and start the daemon.")
    _venv_options(parser, suppress=False)
    full_install.add_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="{test,plugin}")
    t = sub.add_parser("test", help="set up what the tests need and run them (pytest)",
                       description="Create/reuse the venv with the test extras and run pytest; "
                                   "arguments after -- go to pytest. Exits non-zero when a "
                                   "test fails or none are collected.")
    _venv_options(t, suppress=True)
    t.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed on to pytest")
    t.set_defaults(func=test_cmd.run)
    plugin_cli.add_parser(sub)
    parser.set_defaults(func=full_install.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - the user may run any python
        print("install.py needs Python 3.10 or newer")
        return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # (what is written is whole: files are replaced, not edited)
        print("install.py: interrupted; run it again to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
