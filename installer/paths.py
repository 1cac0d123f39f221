"""Where each host keeps per-user files, per platform and packaging.

Pure functions of (system, env, home) so every platform is testable from Linux.
`system` is platform.system(): "Linux", "Windows" or "Darwin".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath

KRITA_FLATPAK = "org.kde.krita"
GIMP_FLATPAK = "org.gimp.GIMP"


def _xdg(env: Mapping[str, str], name: str, home: Path, default: str) -> Path:
    value = env.get(name)
    return Path(value) if value else home / default


def _appdata(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("APPDATA") or home / "AppData" / "Roaming")


def _localappdata(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")


def krita_resource_dir(system: str, env: Mapping[str, str], home: Path,
                       variant: str = "native") -> Path:
    """Krita's per-user resource folder (the one holding pykrita/)."""
    if variant == "flatpak":
        return home / ".var" / "app" / KRITA_FLATPAK / "data" / "krita"
    if system == "Windows":
        return _appdata(env, home) / "krita"
    if system == "Darwin":
        return home / "Library" / "Application Support" / "krita"
    # native packages and the AppImage share the XDG folder
    return _xdg(env, "XDG_DATA_HOME", home, ".local/share") / "krita"


def kritarc_for(resource_dir: PurePath, system: str, env: Mapping[str, str],
                home: Path) -> Path:
    """The kritarc that belongs to the Krita installation using resource_dir."""
    flatpak = home / ".var" / "app" / KRITA_FLATPAK
    if PurePath(resource_dir).is_relative_to(flatpak):
        return flatpak / "config" / "kritarc"
    if system == "Windows":
        return _localappdata(env, home) / "kritarc"
    if system == "Darwin":
        return home / "Library" / "Preferences" / "kritarc"
    return _xdg(env, "XDG_CONFIG_HOME", home, ".config") / "kritarc"


def gimp_config_dir(system: str, env: Mapping[str, str], home: Path,
                    variant: str = "native") -> Path:
    """GIMP's per-user folder, which holds one folder per series (3.0, 3.2, ...)."""
    if variant == "flatpak":
        base = home / ".var" / "app" / GIMP_FLATPAK / "config" / "GIMP"
    elif variant == "snap":
        base = home / "snap" / "gimp" / "current" / ".config" / "GIMP"
    elif system == "Windows":
        base = _appdata(env, home) / "GIMP"
    elif system == "Darwin":
        base = home / "Library" / "Application Support" / "GIMP"
    else:
        base = _xdg(env, "XDG_CONFIG_HOME", home, ".config") / "GIMP"
    return base


def gimp_plugin_dirs(config_dir: Path) -> list[Path]:
    """The plug-ins folders of the GIMP 3 series that have run here, oldest first.  Each
    series makes its own folder on its first start (bringing over the last one's settings,
    2.10's included, only if the folder is not there yet), so none is made here."""
    series = []
    for folder in config_dir.glob("3.*") if config_dir.is_dir() else ():
        minor = folder.name[2:]
        if minor.isdigit() and folder.is_dir():
            series.append((int(minor), folder / "plug-ins"))
    return [plugins for _, plugins in sorted(series)]
