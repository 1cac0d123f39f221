"""Which pyzmq/msgpack wheels each host gets: pip's target tags per platform and Python, and
what is unpacked into vendor/."""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path

import pytest

from installer import wheels
from installer.hosts import HostTarget
from installer.test_cmd import verdict

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake pip is a POSIX script")


@pytest.mark.parametrize("system, arch, tag", [
    ("Linux", "x86_64", "manylinux_2_28_x86_64"),
    ("Linux", "aarch64", "manylinux_2_28_aarch64"),
    ("Windows", "AMD64", "win_amd64"),
    ("Windows", "ARM64", "win_arm64"),
    ("Darwin", "arm64", "macosx_11_0_arm64"),
    ("Darwin", "x86_64", "macosx_10_15_x86_64"),
])
def test_platform_tag(system, arch, tag):
    assert wheels.platform_tag(system, arch) == tag


def test_unknown_platform_is_a_clear_error():
    with pytest.raises(wheels.InstallError, match="no pyzmq/msgpack wheels exist for SunOS"):
        wheels.platform_tag("SunOS", "sparc")


@pytest.mark.parametrize("python", ["3.10", "3.12", "3.13"])
def test_download_args_ask_for_binary_wheels_of_the_hosts_python(tmp_path, python):
    args = wheels.download_args(python, "Linux", "x86_64", tmp_path, ["pyzmq", "msgpack"])
    assert args[0] == "download" and "--only-binary=:all:" in args
    assert args[args.index("--python-version") + 1] == python
    assert args[args.index("--implementation") + 1] == "cp"
    assert args[args.index("--platform") + 1] == "manylinux_2_28_x86_64"
    assert args[args.index("--dest") + 1] == str(tmp_path)
    assert args[-2:] == ["pyzmq", "msgpack"]


def fake_pip(tmp_path: Path) -> Path:
    """Stands in for `python -m pip download` (the real one is exercised by
    test_install_full.py): logs its arguments and writes one wheel per requirement."""
    script = tmp_path / "fake-python"
    log = tmp_path / "pip-calls.txt"
    script.write_text(f"""#!{sys.executable}
import sys, zipfile, pathlib
args = sys.argv[3:]
open({str(log)!r}, "a").write(" ".join(args) + "\\n")
dest = pathlib.Path(args[args.index("--dest") + 1])
py = args[args.index("--python-version") + 1].replace(".", "")
for req in args[args.index("--dest") + 2:]:
    name, _, version = req.partition("==")
    with zipfile.ZipFile(dest / f"{{name}}-{{version or '1.0'}}-cp{{py}}-x.whl", "w") as z:
        z.writestr(f"{{name}}/__init__.py", "")
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "pip-calls.txt").read_text().splitlines()


@posix_only
def test_several_host_pythons_get_one_pinned_release(tmp_path):
    target = HostTarget("krita", "native", tmp_path, "wheels", ("3.10", "3.13"))
    got = wheels.fetch(fake_pip(tmp_path), target, "Windows", "AMD64", tmp_path / "dl")
    first, second = calls(tmp_path)
    assert "--python-version 3.10" in first and first.endswith("pyzmq msgpack")
    # the second Python gets the same releases, so the pure-Python files agree
    assert "--python-version 3.13" in second
    assert set(second.split()[-2:]) == {"pyzmq==1.0", "msgpack==1.0"}
    assert "--platform win_amd64" in second
    assert len(got) == 4


@posix_only
def test_system_transport_downloads_nothing(tmp_path):
    target = HostTarget("gimp", "native", tmp_path, "system")
    assert wheels.fetch(fake_pip(tmp_path), target, "Linux", "x86_64", tmp_path) == []
    assert not (tmp_path / "pip-calls.txt").exists()


@posix_only
def test_windows_gimp_gets_only_msgpack(tmp_path):
    target = HostTarget("gimp", "native", tmp_path, "stdlib")
    wheels.fetch(fake_pip(tmp_path), target, "Windows", "AMD64", tmp_path / "dl")
    (call,) = calls(tmp_path)
    assert call.endswith(" msgpack") and "pyzmq" not in call


def test_pure_only_unpack_drops_compiled_modules(tmp_path):
    wheel = tmp_path / "msgpack-1.2.4-cp312-cp312-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("msgpack/__init__.py", "")
        z.writestr("msgpack/fallback.py", "")
        z.writestr("msgpack/_cmsgpack.cp312-win_amd64.pyd", b"\0")
        z.writestr("msgpack-1.2.4.dist-info/METADATA", "")
    wheels.unpack([wheel], tmp_path / "pure", pure_only=True)
    wheels.unpack([wheel], tmp_path / "all")
    pure = sorted(p.relative_to(tmp_path / "pure").as_posix()
                  for p in (tmp_path / "pure").rglob("*") if p.is_file())
    assert pure == ["msgpack-1.2.4.dist-info/METADATA", "msgpack/__init__.py",
                    "msgpack/fallback.py"]
    assert (tmp_path / "all/msgpack/_cmsgpack.cp312-win_amd64.pyd").exists()


@posix_only
def test_failed_download_says_the_network_is_needed(tmp_path):
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/sh\necho 'ERROR: No matching distribution found' >&2\nexit 1\n")
    failing.chmod(0o755)
    target = HostTarget("krita", "flatpak", tmp_path, "wheels", ("3.10",))
    with pytest.raises(wheels.InstallError, match=r"needs the network \(offline\?\)"):
        wheels.fetch(failing, target, "Linux", "x86_64", tmp_path / "dl")


@pytest.mark.parametrize("status, expected", [(0, 0), (1, 1), (2, 2), (5, 1)])
def test_test_command_fails_when_pytest_fails_or_collects_nothing(status, expected):
    assert verdict(status) == expected

