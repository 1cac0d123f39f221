"""install.py plugin gimp|krita DIR: files land where the hosts look, and uninstall undoes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from installer import kritarc, plugin_files

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders)."""
    if not root.exists():
        return {}
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = None if p.is_dir() else p.read_bytes()
    return out


def fake_repo(tmp_path: Path) -> Path:
    """A checkout-shaped folder with one-file plug-ins, independent of the real ones' progress."""
    repo = tmp_path / "repo"
    (repo / "shared/deepdream_protocol").mkdir(parents=True)
    (repo / "shared/deepdream_protocol/__init__.py").write_text("PROTO = 1\n")
    (repo / "plugins/gimp/deepdream").mkdir(parents=True)
    (repo / "plugins/gimp/deepdream/deepdream.py").write_text("#!/usr/bin/env python3\n")
    (repo / "plugins/krita/deepdream_krita").mkdir(parents=True)
    (repo / "plugins/krita/deepdream_krita/__init__.py").write_text("")
    (repo / "plugins/krita/deepdream_krita.desktop").write_text("[Desktop Entry]\n")
    (repo / "pyproject.toml").write_text('[project]\nversion = "9.8.7"\n')
    return repo


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "install.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_gimp_plugin_lands_in_named_folder_executable_with_vendored_protocol(tmp_path):
    repo = fake_repo(tmp_path)
    done = plugin_files.install_gimp(tmp_path / "plug-ins", repo=repo)
    assert done.folder == tmp_path / "plug-ins/deepdream"
    script = done.folder / "deepdream.py"
    assert os.access(script, os.X_OK), "GIMP silently ignores a non-executable plug-in"
    assert (done.folder / "vendor/deepdream_protocol/__init__.py").read_text() == "PROTO = 1\n"
    assert done.version == "9.8.7"


def test_real_checkout_plugins_are_copied_whole(tmp_path):
    r = run_install("plugin", "gimp", str(tmp_path / "g"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_install("plugin", "krita", str(tmp_path / "k"), "--kritarc", str(tmp_path / "rc"))
    assert r.returncode == 0, r.stdout + r.stderr
    proto = snapshot(REPO / "shared/deepdream_protocol")
    proto = {k: v for k, v in proto.items() if "__pycache__" not in k}
    for folder in (tmp_path / "g/deepdream", tmp_path / "k/pykrita/deepdream_krita"):
        got = snapshot(folder / "vendor/deepdream_protocol")
        assert got == proto
    src = {k: v for k, v in snapshot(REPO / "plugins/krita/deepdream_krita").items()
           if "__pycache__" not in k}
    got = snapshot(tmp_path / "k/pykrita/deepdream_krita")
    assert {k: got.get(k) for k in src} == src
    assert kritarc.get_key((tmp_path / "rc").read_text(), "python",
                           "enable_deepdream_krita") == "true"


def test_krita_install_keeps_other_settings_and_uninstall_restores_them(tmp_path):
    repo = fake_repo(tmp_path)
    res = tmp_path / "krita"
    (res / "pykrita").mkdir(parents=True)
    (res / "pykrita/other_plugin.desktop").write_text("theirs\n")
    rc = tmp_path / "kritarc"
    original = ("[General]\nWindowState=abc==\n\n[python]\nenable_other=true\n\n"
                "[MainWindow]\nState=x\n")
    rc.write_text(original)
    before = snapshot(res)

    plugin_files.install_krita(res, rc, repo=repo)
    text = rc.read_text()
    assert kritarc.get_key(text, "python", "enable_deepdream_krita") == "true"
    assert kritarc.get_key(text, "python", "enable_other") == "true"
    assert kritarc.get_key(text, "General", "WindowState") == "abc=="
    assert kritarc.get_key(text, "MainWindow", "State") == "x"
    assert (res / "pykrita/deepdream_krita.desktop").read_text() == "[Desktop Entry]\n"

    assert plugin_files.uninstall(plugin_files.plugin_folder("krita", res))
    assert rc.read_text() == original
    assert snapshot(res) == before


def test_uninstall_into_fresh_home_leaves_nothing_behind(tmp_path):
    repo = fake_repo(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    plugin_files.install_gimp(home / ".config/GIMP/3.0/plug-ins", repo=repo)
    plugin_files.install_krita(home / ".local/share/krita", home / ".config/kritarc", repo=repo)
    # undone in reverse order, as install.py --uninstall does
    assert plugin_files.uninstall(home / ".local/share/krita/pykrita/deepdream_krita")
    assert plugin_files.uninstall(home / ".config/GIMP/3.0/plug-ins/deepdream")
    assert snapshot(home) == {}


def test_reinstall_upgrades_in_place_and_remembers_the_users_value(tmp_path):
    repo = fake_repo(tmp_path)
    res, rc = tmp_path / "krita", tmp_path / "kritarc"
    rc.write_text("[python]\nenable_deepdream_krita=false\n")
    folder = plugin_files.install_krita(res, rc, repo=repo).folder
    (folder / "stale_module.py").write_text("old\n")
    (repo / "plugins/krita/deepdream_krita/new_module.py").write_text("new\n")
    plugin_files.install_krita(res, rc, repo=repo)
    assert not (folder / "stale_module.py").exists()
    assert (folder / "new_module.py").read_text() == "new\n"
    assert kritarc.get_key(rc.read_text(), "python", "enable_deepdream_krita") == "true"
    plugin_files.uninstall(folder)
    assert rc.read_text() == "[python]\nenable_deepdream_krita=false\n"


def test_uninstall_without_manifest_touches_nothing(tmp_path):
    folder = tmp_path / "plug-ins/deepdream"
    folder.mkdir(parents=True)
    (folder / "deepdream.py").write_text("someone else's\n")
    assert not plugin_files.uninstall(folder)
    assert (folder / "deepdream.py").read_text() == "someone else's\n"


def test_missing_plugin_source_is_one_clear_error(tmp_path):
    repo = fake_repo(tmp_path)
    (repo / "plugins/gimp/deepdream/deepdream.py").unlink()
    (repo / "plugins/gimp/deepdream").rmdir()
    with pytest.raises(plugin_files.InstallError, match="complete checkout"):
        plugin_files.install_gimp(tmp_path / "out", repo=repo)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, expected", [
    ("", "[python]\nenable_x=true\n"),
    ("[General]\na=1\n", "[General]\na=1\n\n[python]\nenable_x=true\n"),
    ("[python]\nenable_y=true\n\n[Z]\nb=2\n",
     "[python]\nenable_y=true\nenable_x=true\n\n[Z]\nb=2\n"),
    ("[python]\nenable_x=false\n", "[python]\nenable_x=true\n"),
])
def test_kritarc_set_key_touches_only_its_line(text, expected):
    assert kritarc.set_key(text, "python", "enable_x", "true")[0] == expected


def test_kritarc_in_new_folders_is_removed_with_them(tmp_path):
    rc = tmp_path / "home/.config/kritarc"
    (tmp_path / "home").mkdir()
    edit = kritarc.enable(rc, "python", "enable_deepdream_krita")
    assert edit.created_dirs == [str(tmp_path / "home/.config")]
    kritarc.restore(edit)
    assert snapshot(tmp_path / "home") == {}


@pytest.mark.parametrize("host", ["gimp", "krita"])
def test_a_folder_install_py_did_not_make_is_never_replaced(tmp_path, host):
    """Another plug-in of the same name (or a developer's copy): it used to be deleted."""
    folder = plugin_files.plugin_folder(host, tmp_path / "dir")
    folder.mkdir(parents=True)
    (folder / "my-notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    r = run_install("plugin", host, str(tmp_path / "dir"), "--kritarc", str(tmp_path / "rc"))
    assert r.returncode == 1
    assert r.stdout == (f"install.py: error: {folder} is there and was not put there by "
                        "install.py; move it away (or delete it), then run install.py again\n")
    assert snapshot(tmp_path) == before


def test_a_kritarc_that_cannot_be_written_installs_nothing(tmp_path):
    """The files used to stay, with no record: uninstall could not find them."""
    (tmp_path / "rc").mkdir()  # a kritarc that is a folder
    r = run_install("plugin", "krita", str(tmp_path / "k"), "--kritarc", str(tmp_path / "rc"))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert r.stdout.startswith(f"install.py: error: cannot enable the plug-in in {tmp_path / 'rc'}")
    assert r.stdout.rstrip().endswith("nothing was installed")
    assert not (tmp_path / "k").exists()


def test_an_upgrade_that_cannot_enable_the_plugin_keeps_its_record(tmp_path):
    repo = fake_repo(tmp_path)
    rc = tmp_path / "rc"
    done = plugin_files.install_krita(tmp_path / "k", rc, repo=repo)
    rc.unlink()
    rc.mkdir()  # now unwritable as a file
    with pytest.raises(plugin_files.InstallError, match="cannot enable the plug-in"):
        plugin_files.install_krita(tmp_path / "k", rc, repo=repo)
    rc.rmdir()
    assert plugin_files.uninstall(done.folder)  # the record still tells what is there
    assert not done.folder.exists()


def test_an_unreadable_record_is_one_line_on_uninstall(tmp_path):
    r = run_install("plugin", "gimp", str(tmp_path / "g"))
    assert r.returncode == 0, r.stdout + r.stderr
    record = tmp_path / "g/deepdream" / plugin_files.MANIFEST
    record.write_text('{"host": ')  # cut short
    r = run_install("plugin", "gimp", str(tmp_path / "g"), "--uninstall")
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert r.stdout.startswith(f"install.py: error: cannot read {record}")
    assert "delete the folder" in r.stdout


@pytest.mark.parametrize("host", ["gimp", "krita"])
def test_an_install_cut_short_is_finished_by_the_next_and_undone_by_uninstall(tmp_path, host):
    """Ctrl-C while the wheels were unpacked left a folder without its record: the next
    run refused it as someone else's, --check sent the user round in a loop, and
    --uninstall left it."""
    repo = fake_repo(tmp_path)
    where, rc = tmp_path / "host", tmp_path / "kritarc"
    before = snapshot(where)

    def install(fill=None):
        if host == "gimp":
            return plugin_files.install_gimp(where, fill, repo=repo)
        return plugin_files.install_krita(where, rc, fill, repo=repo)

    def cut_short(vendor: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install(cut_short)
    folder = plugin_files.plugin_folder(host, where)
    assert plugin_files.read_manifest(folder)["unfinished"]
    done = install()  # finished, not refused
    assert "unfinished" not in plugin_files.read_manifest(done.folder)
    assert (done.folder / "vendor/deepdream_protocol/__init__.py").exists()
    with pytest.raises(KeyboardInterrupt):
        install(cut_short)  # an upgrade cut short: still ours
    assert plugin_files.uninstall(folder)
    assert snapshot(where) == before and not rc.exists()


def test_a_rerun_without_wheels_keeps_those_the_install_vendored(tmp_path):
    """`install.py plugin gimp DIR` over a full install used to strip its pyzmq and msgpack
    (a GIMP whose Python has neither then could not talk to the daemon), and --check
    called it healthy."""
    repo = fake_repo(tmp_path)

    def wheels(vendor: Path) -> None:
        (vendor / "msgpack").mkdir()
        (vendor / "msgpack/__init__.py").write_text("WHEEL = 1\n")

    first = plugin_files.install_gimp(tmp_path / "plug-ins", wheels, "msgpack 1.1", repo=repo)
    again = plugin_files.install_gimp(tmp_path / "plug-ins", repo=repo)
    assert (again.folder / "vendor/msgpack/__init__.py").read_text() == "WHEEL = 1\n"
    assert (again.folder / "vendor/deepdream_protocol/__init__.py").exists()
    assert plugin_files.read_manifest(first.folder)["transport"] == "msgpack 1.1"
    assert sorted(p.name for p in (tmp_path / "plug-ins").iterdir()) == ["deepdream"]
