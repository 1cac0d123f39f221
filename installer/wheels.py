"""pyzmq + msgpack wheels for a host's own Python, fetched with `pip download`.

A host's Python is not the one running install.py, so pip is told the target's version and
platform. Wheels for several Pythons can be unpacked into one vendor/ folder: the compiled
modules carry the interpreter in their file names, and the pure-Python parts are the same as
long as every download is pinned to one release.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .hosts import HostTarget
from .plugin_files import InstallError
from .venv import index_url, offline

PACKAGES = ("pyzmq", "msgpack")
# GIMP on Windows: msgpack's pure-Python fallback runs anywhere; no compiled file is kept
STDLIB_PACKAGES = ("msgpack",)
STDLIB_PLATFORM = ("3.12", "Windows", "AMD64")


def platform_tag(system: str, arch: str) -> str:
    """The newest platform tag to ask pip for; pip also accepts older compatible wheels."""
    a = arch.lower()
    if system == "Linux":
        return f"manylinux_2_28_{'aarch64' if a in ('aarch64', 'arm64') else 'x86_64'}"
    if system == "Windows":
        return "win_arm64" if a in ("arm64", "aarch64") else "win_amd64"
    if system == "Darwin":
        # universal2 wheels match either; pip expands this to older macOS versions
        return "macosx_11_0_arm64" if a in ("arm64", "aarch64") else "macosx_10_15_x86_64"
    raise InstallError(f"no pyzmq/msgpack wheels exist for {system} {arch}")


def download_args(python: str, system: str, arch: str, dest: Path,
                  requirements: Sequence[str]) -> list[str]:
    """pip arguments that fetch binary wheels for another interpreter."""
    return ["download", "--only-binary=:all:", "--no-deps", "--python-version", python,
            "--implementation", "cp", "--platform", platform_tag(system, arch),
            "--dest", str(dest), *requirements]


def _pins(wheels: Sequence[Path]) -> list[str]:
    pins = []
    for w in wheels:
        m = re.match(r"([A-Za-z0-9_]+)-([^-]+)-", w.name)
        if m:
            pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins


def fetch(pip_python: Path, target: HostTarget, system: str, arch: str, dest: Path) -> list[Path]:
    """Download the wheels the target needs into dest; [] for a system or stdlib-only host."""
    if target.transport == "system":
        return []
    if target.transport == "stdlib":
        jobs, packages = [STDLIB_PLATFORM], list(STDLIB_PACKAGES)
    else:
        jobs, packages = [(py, system, arch) for py in target.pythons], list(PACKAGES)
    got: list[Path] = []
    for py, sys_name, machine in jobs:
        out = dest / f"{py}-{sys_name}-{machine}"
        out.mkdir(parents=True, exist_ok=True)
        reqs = _pins(got) or packages
        cmd = [str(pip_python), "-m", "pip", *download_args(py, sys_name, machine, out, reqs)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            tag = platform_tag(sys_name, machine)
            where = (f" from {index_url(pip_python, [])}" if offline(r.stdout + r.stderr)
                     else "")
            raise InstallError(
                f"could not download {' '.join(packages)} for Python {py} ({tag}) for "
                f"{target.host}{where}; this step needs the network (offline?): {last}")
        got += sorted(out.glob("*.whl"))
    return got


def unpack(wheels: Sequence[Path], vendor: Path, pure_only: bool = False) -> None:
    """Unpack wheels into vendor/ (a wheel is a zip laid out for site-packages)."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if pure_only and not (name.endswith(".py") or ".dist-info/" in name):
                    continue
                zf.extract(name, vendor)

