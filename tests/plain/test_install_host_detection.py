"""Host detection and the transport each host gets, per platform and packaging.

Every platform is simulated with folders under tmp_path (a fake home and a fake system root)
because only Linux runs here; the detection code reads nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.hosts import HostTarget, Probe, custom_target, detect, krita_python_for_version


def probe(tmp_path: Path, system: str = "Linux", *, which: tuple[str, ...] = (),
          system_python: str | None = "3.13", env: dict | None = None) -> Probe:
    home, root = tmp_path / "home", tmp_path / "root"
    home.mkdir(exist_ok=True)
    root.mkdir(exist_ok=True)
    return Probe(system, "x86_64", home, env or {}, root,
                 which=lambda name: f"/usr/bin/{name}" if name in which else None,
                 system_python=lambda: system_python)


def mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def by_host(targets: list[HostTarget]) -> dict[tuple[str, str], HostTarget]:
    return {(t.host, t.variant): t for t in targets}


def test_nothing_installed_finds_nothing(tmp_path):
    for system in ("Linux", "Windows", "Darwin"):
        assert detect(probe(tmp_path, system)) == []


def test_debian_gimp_and_krita_use_python3_zmq_when_installed(tmp_path):
    p = probe(tmp_path, which=("gimp-3.0", "krita"))
    mk(p.root / "usr/lib/python3/dist-packages/zmq")
    mk(p.root / "usr/lib/python3/dist-packages/msgpack")
    mk(p.home / ".config/GIMP/3.0")  # (GIMP has run: see the series tests below)
    found = by_host(detect(p))
    gimp, krita = found["gimp", "native"], found["krita", "native"]
    assert gimp.folder == p.home / ".config/GIMP/3.0/plug-ins"
    assert (gimp.transport, gimp.pythons) == ("system", ())
    assert krita.folder == p.home / ".local/share/krita"
    assert krita.kritarc == p.home / ".config/kritarc"
    assert krita.transport == "system"


def test_debian_gimp_without_python3_zmq_gets_wheels_for_system_python(tmp_path):
    p = probe(tmp_path, which=("gimp-3.0",), system_python="3.11")
    mk(p.root / "usr/lib/python3/dist-packages/msgpack")  # msgpack alone is not enough
    (gimp,) = detect(p)
    assert (gimp.transport, gimp.pythons) == ("wheels", ("3.11",))


def test_xdg_variables_move_the_linux_folders(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    p = probe(tmp_path, which=("gimp-3.0", "krita"), env=env)
    mk(tmp_path / "cfg/GIMP/3.0")
    found = by_host(detect(p))
    assert found["gimp", "native"].folder == tmp_path / "cfg/GIMP/3.0/plug-ins"
    assert found["krita", "native"].folder == tmp_path / "data/krita"
    assert found["krita", "native"].kritarc == tmp_path / "cfg/kritarc"


@pytest.mark.parametrize("name, python", [
    ("krita-5.2.9-x86_64.appimage", "3.10"),
    ("krita-5.3.0-x86_64.AppImage", "3.13"),
    ("krita-6.0.1-x86_64.AppImage", "3.13"),
])
def test_krita_appimage_gets_wheels_for_its_bundled_python(tmp_path, name, python):
    p = probe(tmp_path)
    (mk(p.home / "Applications") / name).write_bytes(b"")
    (krita,) = detect(p)
    assert (krita.variant, krita.transport, krita.pythons) == ("appimage", "wheels", (python,))
    assert krita.folder == p.home / ".local/share/krita"


def test_appimage_beside_distro_krita_vendors_both_pythons(tmp_path):
    # they share one pykrita folder, and vendored zmq shadows the distro's for both
    p = probe(tmp_path, which=("krita",), system_python="3.13")
    (mk(p.home / "Downloads") / "krita-5.2.9-x86_64.appimage").write_bytes(b"")
    (krita,) = detect(p)
    assert (krita.transport, krita.pythons) == ("wheels", ("3.10", "3.13"))


def test_flatpaks_use_their_own_folders_and_runtime_python(tmp_path):
    p = probe(tmp_path)
    mk(p.root / "var/lib/flatpak/app/org.kde.krita/current/active/files/lib/python3.10")
    mk(p.root / "var/lib/flatpak/app/org.gimp.GIMP")
    mk(p.root / "var/lib/flatpak/runtime/org.gnome.Platform/x86_64/48/active/files/lib/python3.12")
    mk(p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0")
    found = by_host(detect(p))
    krita, gimp = found["krita", "flatpak"], found["gimp", "flatpak"]
    assert krita.folder == p.home / ".var/app/org.kde.krita/data/krita"
    assert krita.kritarc == p.home / ".var/app/org.kde.krita/config/kritarc"
    assert krita.pythons == ("3.10",)
    assert gimp.folder == p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"
    assert (gimp.transport, gimp.pythons) == ("wheels", ("3.12",))


def test_user_flatpak_with_unknown_runtime_covers_both_gimp_pythons(tmp_path):
    p = probe(tmp_path)
    mk(p.home / ".local/share/flatpak/app/org.gimp.GIMP")
    (gimp,) = detect(p)
    assert gimp.pythons == ("3.12", "3.13")


def test_snap_gimp(tmp_path):
    p = probe(tmp_path)
    mk(p.root / "snap/gimp")
    mk(p.home / "snap/gimp/current/.config/GIMP/3.0")
    (gimp,) = detect(p)
    assert gimp.variant == "snap"
    assert gimp.folder == p.home / "snap/gimp/current/.config/GIMP/3.0/plug-ins"
    assert gimp.transport == "wheels"


def test_windows_gimp_uses_stdlib_client_and_krita_gets_wheels(tmp_path):
    appdata = tmp_path / "home/AppData/Roaming"
    env = {"APPDATA": str(appdata), "LOCALAPPDATA": str(tmp_path / "home/AppData/Local"),
           "ProgramFiles": str(tmp_path / "root/Program Files")}
    p = probe(tmp_path, "Windows", env=env)
    mk(p.root / "Program Files/GIMP 3")
    mk(p.root / "Program Files/Krita (x64)")
    mk(appdata / "GIMP/3.0")
    found = by_host(detect(p))
    gimp, krita = found["gimp", "native"], found["krita", "native"]
    assert gimp.folder == appdata / "GIMP/3.0/plug-ins"
    assert gimp.transport == "stdlib"  # MSYS2 Python cannot load PyPI's compiled wheels
    assert krita.folder == appdata / "krita"
    assert krita.kritarc == tmp_path / "home/AppData/Local/kritarc"
    assert (krita.transport, krita.pythons) == ("wheels", ("3.10", "3.13"))


def test_macos_apps(tmp_path):
    p = probe(tmp_path, "Darwin")
    mk(p.root / "Applications/GIMP.app")
    mk(p.home / "Applications/krita.app")
    mk(p.home / "Library/Application Support/GIMP/3.0")
    found = by_host(detect(p))
    gimp, krita = found["gimp", "native"], found["krita", "native"]
    assert gimp.folder == p.home / "Library/Application Support/GIMP/3.0/plug-ins"
    assert gimp.pythons == ("3.10",)
    assert krita.folder == p.home / "Library/Application Support/krita"
    assert krita.kritarc == p.home / "Library/Preferences/kritarc"


def test_a_used_config_folder_counts_as_installed(tmp_path):
    p = probe(tmp_path, system_python=None)
    mk(p.home / ".config/GIMP/3.0")
    (gimp,) = detect(p)
    assert gimp.transport == "stdlib"  # no python3-zmq and no known python: stdlib client


def test_named_folders_force_wheels_with_host_python(tmp_path):
    p = probe(tmp_path, which=("gimp-3.0",))
    mk(p.root / "usr/lib/python3/dist-packages/zmq")
    mk(p.root / "usr/lib/python3/dist-packages/msgpack")
    assert custom_target("gimp", tmp_path / "g", p, None).transport == "system"
    forced = custom_target("gimp", tmp_path / "g", p, "3.13")
    assert (forced.transport, forced.pythons) == ("wheels", ("3.13",))
    krita = custom_target("krita", tmp_path / "k", p, None)
    assert krita.kritarc == p.home / ".config/kritarc"


@pytest.mark.parametrize("version, python", [
    ("5.2.9", "3.10"), ("5.2.0", "3.10"), ("5.3.0", "3.13"), ("6.0", "3.13"),
])
def test_krita_python_by_version(version, python):
    assert krita_python_for_version(version) == python


def test_each_gimp_series_that_ran_gets_the_plugin(tmp_path):
    """GIMP names its folder by series: 3.2 reads GIMP/3.2, not 3.0 (the plug-in used to go
    into 3.0 alone, so GIMP 3.2 showed no menu entry); 3.0 stays for a GIMP 3.0 still used."""
    p = probe(tmp_path, which=("gimp-3.2",))
    for series in ("3.2", "3.0", "3.10", "2.10", "3.x"):
        mk(p.home / ".config/GIMP" / series)
    assert [t.folder for t in detect(p)] == [
        p.home / ".config/GIMP" / series / "plug-ins" for series in ("3.0", "3.2", "3.10")]


@pytest.mark.parametrize("system", ["Linux", "Windows", "Darwin"])
def test_a_gimp_never_started_gets_no_folder_made_but_a_note(tmp_path, system):
    """Its first start brings over GIMP 2.10's settings only if its folder is not there yet:
    making it for the plug-in would lose them."""
    env = {"APPDATA": str(tmp_path / "home/AppData/Roaming"),
           "ProgramFiles": str(tmp_path / "root/Program Files")}
    p = probe(tmp_path, system, which=("gimp-3.0",), env=env)
    mk(p.root / "Program Files/GIMP 3")
    mk(p.root / "Applications/GIMP.app")
    (gimp,) = detect(p)
    assert gimp.unstarted and "has not been started yet: start it once" in gimp.describe()
    assert gimp.folder.name == "GIMP" and not gimp.folder.exists()
