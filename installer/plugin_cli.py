"""`install.py plugin gimp|krita DIR`: install one plug-in into a folder."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from . import paths
from .plugin_files import InstallError, install_gimp, install_krita, plugin_folder
from .plugin_files import uninstall as uninstall_folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugin", help="install one plug-in into a given folder",
        description="Copy one plug-in (with its vendored protocol package) into a folder. "
                    "GIMP: DIR is a plug-ins folder and gets DIR/deepdream/. Krita: DIR is a "
                    "resource folder and gets DIR/pykrita/, and the plug-in is enabled in "
                    "kritarc. Re-running upgrades in place.")
    p.add_argument("host", choices=["gimp", "krita"])
    p.add_argument("dir", type=Path, help="GIMP plug-ins folder or Krita resource folder")
    p.add_argument("--kritarc", type=Path,
                   help="Krita only: the kritarc to enable the plug-in in "
                        "(default: the one of the installation owning DIR)")
    p.add_argument("--uninstall", action="store_true",
                   help="remove what a previous run installed there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = args.dir.expanduser().resolve()
    folder = plugin_folder(args.host, target)
    try:
        if args.uninstall:
            if uninstall_folder(folder):
                print(f"removed the {args.host} plug-in from {target}")
            else:
                print(f"no plug-in installed by install.py in {folder}; nothing removed")
            return 0
        if args.host == "gimp":
            done = install_gimp(target)
        else:
            kritarc = args.kritarc or paths.kritarc_for(
                target, platform.system(), os.environ, Path.home())
            done = install_krita(target, kritarc.expanduser().resolve())
    except (InstallError, OSError) as e:
        print(f"install.py: error: {e}")
        return 1
    print(f"installed the {done.host} plug-in {done.version} in {done.folder}")
    return 0
