"""Find the Krita and GIMP 3 installations a user has, and what Python each runs plug-ins with.

Everything the detection looks at comes in through `Probe`, so each platform and packaging
(native, Flatpak, Snap, AppImage) is unit-tested with fake folders from any machine.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import paths

# What the hosts bundle (see README "Where the plug-ins go"): Krita 5.2 ships CPython 3.10,
# 5.3/6.x 3.13; GIMP on macOS 3.10; Flatpak GIMP's runtime 3.12 (GIMP <= 3.0.4) or 3.13
# (3.0.6+); Snap GIMP 3.12.
KRITA_PYTHONS = ("3.10", "3.13")
GIMP_MACOS_PYTHON = "3.10"
GIMP_FLATPAK_PYTHONS = ("3.12", "3.13")
GIMP_SNAP_PYTHONS = ("3.12",)
_APPIMAGE_DIRS = ("Applications", "Downloads", "bin", ".local/bin", "Desktop", "AppImages")


@dataclass(frozen=True)
class HostTarget:
    """One place to install a plug-in, and the transport its host can load."""

    host: str  # "krita" or "gimp"
    variant: str  # native, flatpak, snap, appimage, custom
    folder: Path  # GIMP: plug-ins folder; Krita: resource folder (holding pykrita/)
    transport: str  # "wheels": vendored pyzmq+msgpack; "system": the distro's; "stdlib"
    pythons: tuple[str, ...] = ()  # host Python versions to fetch wheels for
    kritarc: Path | None = None
    unstarted: bool = False  # GIMP found but never started: folder is its config folder

    #: said of a GIMP that never ran: its first start makes the series folder
    UNSTARTED = ("has not been started yet: start it once (its first start brings over your "
                 "GIMP 2.10 settings, and makes the folder plug-ins go in), quit it, and run "
                 "install.py again")

    def transport_text(self) -> str:
        if self.transport == "wheels":
            return "vendored pyzmq+msgpack wheels for Python " + ", ".join(self.pythons)
        if self.transport == "system":
            return "the system's python3-zmq"
        return "standard-library ZeroMQ client (no compiled modules)"

    def describe(self) -> str:
        if self.unstarted:
            return f"{self.host} ({self.variant}) {self.UNSTARTED}"
        return f"{self.host} ({self.variant}) in {self.folder}: {self.transport_text()}"


@dataclass
class Probe:
    """The machine as detection sees it; tests build one over a temporary folder."""

    system: str
    arch: str
    home: Path
    env: Mapping[str, str]
    root: Path = Path("/")  # system folders (/usr, /opt, /var/lib/flatpak) are under this
    which: Callable[[str], str | None] = shutil.which
    system_python: Callable[[], str | None] = lambda: None
    extra: dict = field(default_factory=dict)

    def sys_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def flatpak_app(self, app_id: str) -> Path | None:
        for base in (self.sys_path("/var/lib/flatpak"), self.home / ".local/share/flatpak"):
            if (base / "app" / app_id).is_dir():
                return base / "app" / app_id
        return None


def _flatpak_pythons(p: Probe, app_id: str, runtime: str | None,
                     fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Python versions found in the Flatpak's own files or its runtime, else the fallback."""
    found: set[str] = set()
    app = p.flatpak_app(app_id)
    bases = [app] if app else []
    if runtime:
        for base in (p.sys_path("/var/lib/flatpak"), p.home / ".local/share/flatpak"):
            bases.append(base / "runtime" / runtime)
    for base in bases:
        for lib in base.glob("*/*/active/files/lib/python3.*"):
            m = re.fullmatch(r"python(3\.\d+)", lib.name)
            if m:
                found.add(m.group(1))
        for lib in base.glob("current/active/files/lib/python3.*"):
            m = re.fullmatch(r"python(3\.\d+)", lib.name)
            if m:
                found.add(m.group(1))
    return _sorted(found) or fallback


def krita_python_for_version(version: str) -> str:
    """Krita 5.2.x bundles CPython 3.10; 5.3 and 6.x bundle 3.13."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        return KRITA_PYTHONS[0]
    return "3.10" if (int(m.group(1)), int(m.group(2))) < (5, 3) else "3.13"


def _appimages(p: Probe) -> list[Path]:
    out = []
    for d in _APPIMAGE_DIRS:
        folder = p.home / d
        if folder.is_dir():
            out += [f for f in folder.iterdir() if re.match(r"krita.*\.appimage$", f.name, re.I)]
    return sorted(out)


def _system_transport(p: Probe) -> tuple[str, tuple[str, ...]]:
    """Distro builds run the system python3: its python3-zmq if installed, else wheels."""
    def has(module: str) -> bool:
        dirs = [p.sys_path(f"/usr/lib/python3/dist-packages/{module}")]
        for lib in ("/usr/lib", "/usr/lib64"):
            dirs += p.sys_path(lib).glob(f"python3*/site-packages/{module}")
        return any(d.is_dir() for d in dirs)

    if has("zmq") and has("msgpack"):
        return "system", ()
    version = p.system_python()
    return ("wheels", (version,)) if version else ("stdlib", ())


def _krita_native(p: Probe) -> list[HostTarget]:
    folder = paths.krita_resource_dir(p.system, p.env, p.home)
    rc = paths.kritarc_for(folder, p.system, p.env, p.home)
    if p.system == "Windows":
        pf = Path(p.env.get("ProgramFiles", "C:/Program Files"))
        if (pf / "Krita (x64)").is_dir() or folder.is_dir():
            return [HostTarget("krita", "native", folder, "wheels", KRITA_PYTHONS, rc)]
        return []
    if p.system == "Darwin":
        apps = [p.sys_path("/Applications/krita.app"), p.home / "Applications/krita.app"]
        if any(a.is_dir() for a in apps) or folder.is_dir():
            return [HostTarget("krita", "native", folder, "wheels", KRITA_PYTHONS, rc)]
        return []
    images = _appimages(p)
    pythons = set()
    for image in images:
        m = re.search(r"(\d+\.\d+)", image.name)
        pythons.add(krita_python_for_version(m.group(1)) if m else KRITA_PYTHONS[0])
    distro = p.which("krita") is not None
    if distro and not images:
        transport, sys_pythons = _system_transport(p)
        return [HostTarget("krita", "native", folder, transport, sys_pythons, rc)]
    if distro:
        # the AppImage shares the folder, and vendored packages shadow the distro's zmq
        version = p.system_python()
        if version:
            pythons.add(version)
    if images or folder.is_dir():
        variant = "appimage" if images else "native"
        return [HostTarget("krita", variant, folder, "wheels", _sorted(pythons or KRITA_PYTHONS),
                           rc)]
    return []


def _sorted(versions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(versions), key=lambda v: int(v.split(".")[1])))


def _krita_flatpak(p: Probe) -> list[HostTarget]:
    data = p.home / ".var/app" / paths.KRITA_FLATPAK
    if p.system != "Linux" or not (p.flatpak_app(paths.KRITA_FLATPAK) or data.is_dir()):
        return []
    folder = paths.krita_resource_dir(p.system, p.env, p.home, "flatpak")
    pythons = _flatpak_pythons(p, paths.KRITA_FLATPAK, None, KRITA_PYTHONS)
    rc = paths.kritarc_for(folder, p.system, p.env, p.home)
    return [HostTarget("krita", "flatpak", folder, "wheels", pythons, rc)]


def _gimp(p: Probe, variant: str, found: bool, transport: str,
          pythons: tuple[str, ...] = ()) -> list[HostTarget]:
    """One target per GIMP 3 series folder of ``variant`` (3.0, 3.2, ...: GIMP names its
    folder by series); a GIMP ``found`` that never ran gets one that says so instead."""
    config = paths.gimp_config_dir(p.system, p.env, p.home, variant)
    folders = paths.gimp_plugin_dirs(config)
    if folders:
        return [HostTarget("gimp", variant, f, transport, pythons) for f in folders]
    return [HostTarget("gimp", variant, config, transport, pythons, unstarted=True)] if found \
        else []


def _gimp_native(p: Probe) -> list[HostTarget]:
    if p.system == "Windows":
        pf = Path(p.env.get("ProgramFiles", "C:/Program Files"))
        # GIMP's MSYS2 Python cannot load PyPI's compiled wheels
        return _gimp(p, "native", any(pf.glob("GIMP 3*")), "stdlib")
    if p.system == "Darwin":
        apps = [p.sys_path("/Applications/GIMP.app"), p.home / "Applications/GIMP.app"]
        return _gimp(p, "native", any(a.is_dir() for a in apps), "wheels",
                     (GIMP_MACOS_PYTHON,))
    gimp3 = any(p.which(name) for name in ("gimp-3.0", "gimp-3.2", "gimp-3.4", "gimp-3"))
    if not gimp3:  # (plug-ins of every GIMP 3 series live in a 3.0 library folder)
        gimp3 = bool(p.which("gimp")) and (any(p.sys_path("/usr/lib").glob("*gimp/3.0")) or any(
            p.sys_path("/usr/lib").glob("*/gimp/3.0")))
    transport, pythons = _system_transport(p)
    return _gimp(p, "native", gimp3, transport, pythons)


def _gimp_flatpak(p: Probe) -> list[HostTarget]:
    data = p.home / ".var/app" / paths.GIMP_FLATPAK
    if p.system != "Linux" or not (p.flatpak_app(paths.GIMP_FLATPAK) or data.is_dir()):
        return []
    pythons = _flatpak_pythons(p, paths.GIMP_FLATPAK, "org.gnome.Platform",
                               GIMP_FLATPAK_PYTHONS)
    return _gimp(p, "flatpak", True, "wheels", pythons)


def _gimp_snap(p: Probe) -> list[HostTarget]:
    if p.system != "Linux" or not (p.sys_path("/snap/gimp").is_dir()
                                   or (p.home / "snap/gimp").is_dir()):
        return []
    return _gimp(p, "snap", True, "wheels", GIMP_SNAP_PYTHONS)


def detect(p: Probe) -> list[HostTarget]:
    """Every Krita and GIMP 3 installation found, each once per plug-in folder."""
    found = (_krita_native(p) + _krita_flatpak(p) + _gimp_native(p) + _gimp_flatpak(p)
             + _gimp_snap(p))
    seen: set[tuple[str, Path]] = set()
    out = []
    for t in found:
        if (t.host, t.folder) not in seen:
            seen.add((t.host, t.folder))
            out.append(t)
    return out


def custom_target(host: str, folder: Path, p: Probe, host_python: str | None) -> HostTarget:
    """A folder the user named (--krita-dir/--gimp-dir): --host-python forces wheels."""
    rc = paths.kritarc_for(folder, p.system, p.env, p.home) if host == "krita" else None
    if host_python:
        return HostTarget(host, "custom", folder, "wheels", (host_python,), rc)
    if host == "krita":
        return HostTarget(host, "custom", folder, "wheels", KRITA_PYTHONS, rc)
    if p.system == "Windows":
        return HostTarget(host, "custom", folder, "stdlib")
    if p.system == "Darwin":
        return HostTarget(host, "custom", folder, "wheels", (GIMP_MACOS_PYTHON,))
    transport, pythons = _system_transport(p)
    return HostTarget(host, "custom", folder, transport, pythons)
