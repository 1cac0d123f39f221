"""Copy the plug-ins (with the vendored protocol package) into a host's folders, and undo it.

Each installed plug-in carries a manifest listing what the install created, so re-running
replaces it in place and uninstalling removes exactly that and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepdream_protocol import launcher

from . import kritarc as kconf

REPO = Path(__file__).resolve().parent.parent
MANIFEST = ".deepdream-install.json"
GIMP_NAME = "deepdream"
KRITA_NAME = "deepdream_krita"
KRITA_GROUP = "python"
KRITA_KEY = f"enable_{KRITA_NAME}"
VendorFill = Callable[[Path], None]  # adds transport packages to a plug-in's vendor/ folder
# what a plug-in installed without wheels (`install.py plugin`) talks to the daemon with
NO_TRANSPORT = ("no wheels vendored: needs the host Python's own msgpack (and its pyzmq, "
                "else the standard-library ZeroMQ client)")
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", MANIFEST)


class InstallError(Exception):
    """A one-line, user-facing reason an install step cannot go on."""


@dataclass
class Installed:
    """One installed plug-in: the folder holding its code and manifest."""

    host: str
    folder: Path
    version: str


def project_version(repo: Path = REPO) -> str:
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return m.group(1) if m else "unknown"


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise InstallError(f"cannot read {folder / MANIFEST} ({e}); delete the folder "
                           f"{folder} and run install.py again") from e


def _ours_or_none(folder: Path) -> dict:
    """The record of the plug-in install.py put in ``folder`` ({} when there is none yet);
    InstallError when something else is there, which an install would delete."""
    old = read_manifest(folder)
    if old is None and (folder.exists() or folder.is_symlink()):
        raise InstallError(f"{folder} is there and was not put there by install.py; move it "
                           "away (or delete it), then run install.py again")
    return old or {}


def _check_source(src: Path) -> None:
    if not src.exists():
        raise InstallError(f"{src} is missing: run install.py from a complete checkout")


def _copy_tree(src: Path, dst: Path, record: dict) -> None:
    """``src`` copied to a fresh ``dst`` whose record says, before anything is copied, that
    it is ours and unfinished: an install cut short (Ctrl-C, a full disk) is then finished
    by the next run and undone by --uninstall (it was refused as someone else's, and left)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    _write_manifest(dst, {**record, "unfinished": True})
    shutil.copytree(src, dst, ignore=_JUNK, dirs_exist_ok=True)


def _keep_wheels(folder: Path, old: dict, fill: VendorFill | None,
                 transport: str) -> tuple[VendorFill | None, str]:
    """A run that brings no wheels (``install.py plugin``) over an install that has them
    (pyzmq, msgpack for a host Python without them): they are moved aside and put back,
    not stripped, and the record keeps saying so."""
    vendor = folder / "vendor"
    if fill is not None or old.get("transport", NO_TRANSPORT) == NO_TRANSPORT \
            or not vendor.is_dir():
        return fill, transport
    theirs = [p for p in vendor.iterdir() if p.name != "deepdream_protocol"]
    if not theirs:
        return fill, transport
    aside = Path(tempfile.mkdtemp(prefix=".deepdream-wheels-", dir=folder.parent))
    for p in theirs:
        p.rename(aside / p.name)

    def put_back(into: Path) -> None:
        for p in aside.iterdir():
            p.rename(into / p.name)
        aside.rmdir()

    return put_back, old["transport"]


def _vendor(folder: Path, fill: VendorFill | None, repo: Path) -> None:
    vendor = folder / "vendor"
    if vendor.exists():
        shutil.rmtree(vendor)
    vendor.mkdir(parents=True)
    src = repo / "shared" / "deepdream_protocol"
    _check_source(src)
    shutil.copytree(src, vendor / "deepdream_protocol", ignore=_JUNK)
    if fill is not None:
        fill(vendor)


def _write_manifest(folder: Path, data: dict) -> None:
    # (never half written: it is what uninstall goes by)
    launcher.replace_text(folder / MANIFEST, json.dumps(data, indent=2) + "\n")


def _record(host: str, version: str, transport: str, target: dict | None,
            paths: list[Path], created: list[str]) -> dict:
    """What a plug-in folder's manifest says of its install (uninstall goes by it)."""
    return {"host": host, "version": version, "transport": transport,
            **({"target": target} if target else {}),
            "paths": [str(p) for p in paths], "created_dirs": created}


def _make_executable(path: Path) -> None:
    if path.exists():
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install_gimp(plugins_dir: Path, fill: VendorFill | None = None,
                 transport: str = NO_TRANSPORT, repo: Path = REPO,
                 target: dict | None = None) -> Installed:
    """Install into GIMP's plug-ins folder: DIR/deepdream/deepdream.py (executable) + vendor/."""
    src = repo / "plugins" / "gimp" / GIMP_NAME
    _check_source(src)
    folder = plugin_folder("gimp", plugins_dir)
    old = _ours_or_none(folder)
    fill, transport = _keep_wheels(folder, old, fill, transport)
    created = old.get("created_dirs") or kconf.missing_dirs(plugins_dir)
    plugins_dir.mkdir(parents=True, exist_ok=True)
    version = project_version(repo)
    record = _record("gimp", version, transport, target, [folder], created)
    _copy_tree(src, folder, record)
    _vendor(folder, fill, repo)
    _make_executable(folder / f"{GIMP_NAME}.py")
    _write_manifest(folder, record)
    return Installed("gimp", folder, version)


def install_krita(resource_dir: Path, kritarc: Path, fill: VendorFill | None = None,
                  transport: str = NO_TRANSPORT, repo: Path = REPO,
                  target: dict | None = None) -> Installed:
    """Install into Krita's resource folder (pykrita/) and enable it in kritarc."""
    src_pkg = repo / "plugins" / "krita" / KRITA_NAME
    src_desktop = repo / "plugins" / "krita" / f"{KRITA_NAME}.desktop"
    _check_source(src_pkg)
    folder = plugin_folder("krita", resource_dir)
    pykrita = folder.parent
    desktop = pykrita / f"{KRITA_NAME}.desktop"
    old = _ours_or_none(folder)
    fill, transport = _keep_wheels(folder, old, fill, transport)
    created = old.get("created_dirs") or kconf.missing_dirs(pykrita)
    pykrita.mkdir(parents=True, exist_ok=True)
    version = project_version(repo)
    record = _record("krita", version, transport, target, [folder, desktop], created)
    # (until kritarc is edited below, the record of the edit is the earlier install's)
    _copy_tree(src_pkg, folder, {**record, **({"kritarc": old["kritarc"]}
                                              if old.get("kritarc") else {})})
    if src_desktop.exists():
        shutil.copyfile(src_desktop, desktop)
    _vendor(folder, fill, repo)
    try:
        edit = kconf.enable(kritarc, KRITA_GROUP, KRITA_KEY)
    except (OSError, UnicodeDecodeError) as e:  # no record would tell uninstall of the copy
        if old:  # an upgrade: the old record still says what is there
            _write_manifest(folder, old)
        else:
            shutil.rmtree(folder)
            desktop.unlink(missing_ok=True)
            kconf.remove_empty_dirs(map(Path, created))
        raise InstallError(f"cannot enable the plug-in in {kritarc} "
                           f"({getattr(e, 'strerror', None) or e})"
                           + ("" if old else "; nothing was installed")) from None
    if old.get("kritarc") and Path(old["kritarc"]["file"]) == kritarc:
        edit = kconf.KeyEdit.from_json(old["kritarc"])  # keep the state from before us
    _write_manifest(folder, {**record, "kritarc": edit.to_json()})
    return Installed("krita", folder, version)


def uninstall(folder: Path) -> bool:
    """Remove the plug-in installed in folder; False when nothing of ours is there."""
    manifest = read_manifest(folder)
    if manifest is None:
        return False
    if manifest.get("kritarc"):
        kconf.restore(kconf.KeyEdit.from_json(manifest["kritarc"]))
    for p in map(Path, manifest.get("paths", [])):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    kconf.remove_empty_dirs(map(Path, manifest.get("created_dirs", [])))
    return True


def plugin_folder(host: str, folder: Path) -> Path:
    """Where the plug-in's code and manifest go: GIMP, folder is a plug-ins folder; Krita,
    folder is a resource folder (the one holding pykrita/)."""
    return folder / GIMP_NAME if host == "gimp" else folder / "pykrita" / KRITA_NAME
