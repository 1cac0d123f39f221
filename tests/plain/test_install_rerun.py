"""What `python install.py` says at the end, and the plug-ins it installed into named folders
(--gimp-dir/--krita-dir) as a plain `--check` and a plain re-run see them.

No Krita or GIMP is found (PATH holds nothing, HOME is empty), no PyTorch is installed and no
wheel is downloaded: the plug-ins here use the system's transport or none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deepdream_protocol import launcher

from installer import full_install, plugin_files
from installer.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]
VERSION = plugin_files.project_version()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "empty-path").mkdir(parents=True)
    return home


def install_py(home: Path, *args: str, prefix: str | None = sys.prefix
               ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DEEPDREAM_"))}
    env.update(HOME=str(home), DEEPDREAM_CONFIG=str(home / "cfg/deepdream/client.json"),
               PATH=str(home / "empty-path"),  # no krita, no gimp on PATH
               PYTHONPATH=os.pathsep.join([str(REPO / "daemon"), str(REPO / "shared")]))
    given = [] if prefix is None else ["--prefix", prefix]
    return subprocess.run([sys.executable, str(REPO / "install.py"), *given, *args],
                          env=env, capture_output=True, text=True, timeout=300)


def fake_venv(tmp_path: Path) -> Path:
    """A prefix whose command line exists (the venv running the tests has none installed)."""
    venv = tmp_path / "my venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/deepdream").write_text("#!/bin/sh\n")
    return venv


@pytest.mark.skipif(os.name == "nt", reason="POSIX venv layout")
def test_the_end_names_the_command_line_and_no_host_when_none_got_a_plugin(
        home: Path, tmp_path: Path):
    venv = fake_venv(tmp_path)
    r = install_py(home, "--plugins-only", "--no-start", prefix=str(venv))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert "no Krita or GIMP 3 found" in r.stdout
    assert "Krita" not in "\n".join(lines[-2:]) and "GIMP" not in "\n".join(lines[-2:])
    assert lines[-2] == "done"
    assert lines[-1].startswith(f"command line: '{venv}/bin/deepdream' dream IN -o OUT")


def test_final_lines_name_only_the_hosts_that_got_a_plugin(tmp_path: Path):
    venv = fake_venv(tmp_path)
    gimp = full_install.final_lines(venv, ["gimp"])
    assert gimp[0] == "done: dream in GIMP (Filters > Artistic > DeepDream...)"
    both = full_install.final_lines(venv, ["gimp", "krita"])
    assert both[0] == ("done: dream in Krita (restart it, then Settings > Dockers > DeepDream) "
                       "or GIMP (Filters > Artistic > DeepDream...)")
    assert full_install.final_lines(tmp_path / "nothing-here", []) == ["done"]


def test_plugin_command_records_its_transport(home: Path, tmp_path: Path):
    r = install_py(home, "plugin", "gimp", str(tmp_path / "g"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = install_py(home, "--check", "--gimp-dir", str(tmp_path / "g"))
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("gimp (custom)"))
    assert line.endswith("no wheels vendored: needs the host Python's own msgpack (and its "
                         "pyzmq, else the standard-library ZeroMQ client)"), line
    assert not line.rstrip().endswith(";")


def _installed_by_gimp_dir(home: Path, folder: Path, version: str) -> Path:
    """What `install.py --gimp-dir FOLDER` leaves (on a machine whose python3 has zmq and
    msgpack, so no wheel is downloaded here): the plug-in, with an older version, listed in
    the install manifest."""
    r = install_py(home, "plugin", "gimp", str(folder))
    assert r.returncode == 0, r.stdout + r.stderr
    plugin = folder / "deepdream"
    info = json.loads((plugin / ".deepdream-install.json").read_text())
    info.update(version=version, transport="the system's python3-zmq",
                target={"variant": "custom", "transport": "system", "pythons": []})
    (plugin / ".deepdream-install.json").write_text(json.dumps(info))
    (home / "cfg/deepdream").mkdir(parents=True, exist_ok=True)
    (home / "cfg/deepdream/install-manifest.json").write_text(json.dumps(
        {"prefix": "", "plugins": [str(plugin)]}))
    return plugin


def test_plain_check_and_rerun_cover_the_plugins_in_named_folders(home: Path, tmp_path: Path):
    folder = tmp_path / "gimp plug-ins"
    plugin = _installed_by_gimp_dir(home, folder, VERSION)
    r = install_py(home, "--check")  # no --gimp-dir: the manifest says where it went
    assert f"gimp (custom)  plug-in {VERSION} in {plugin}; the system's python3-zmq" in r.stdout
    assert "no Krita or GIMP 3 found" not in r.stdout

    _installed_by_gimp_dir(home, folder, "0.0.1")
    r = install_py(home, "--check")
    assert f"plug-in 0.0.1 in {plugin} is older than {VERSION}" in r.stdout
    r = install_py(home, "--plugins-only", "--no-start")  # a plain re-run upgrades it
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"installed gimp (custom) in {folder}: the system's python3-zmq" in r.stdout
    assert "no Krita or GIMP 3 found" not in r.stdout
    assert json.loads((plugin / ".deepdream-install.json").read_text())["version"] == VERSION
    # the closing lines: the hosts it installed into (then the CLI's path, when it has one)
    closing = [line for line in r.stdout.splitlines() if line.startswith("done")]
    assert closing and closing[-1].startswith("done: dream in GIMP"), r.stdout


def test_a_rerun_keeps_the_endpoint_the_user_set(home: Path):
    """The README's remote-daemon steps put another endpoint in the config; an upgrade used
    to set it back to this computer's, keeping curve_dir (keys for the other computer)."""
    config = home / "cfg/deepdream/client.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"endpoint": "tcp://10.0.0.5:5599", "curve_dir": "/keys"}))
    r = install_py(home, "--plugins-only", "--no-plugins", "--no-start")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(config.read_text())
    assert data["endpoint"] == "tcp://10.0.0.5:5599" and data["curve_dir"] == "/keys"
    assert data["daemon_cmd"]  # (the daemon command is the install's)
    assert f"wrote the plug-in config {config} (keeping its endpoint tcp://10.0.0.5:5599)" \
        in r.stdout


def test_a_config_that_does_not_parse_is_one_line(home: Path):
    config = home / "cfg/deepdream/client.json"
    config.parent.mkdir(parents=True)
    config.write_text('{"endpoint": ')  # cut short
    r = install_py(home, "--plugins-only", "--no-plugins", "--no-start")
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert f"install.py: error: {config} is not valid JSON" in r.stdout
    assert r.stdout.rstrip().endswith("fix or delete it")
    assert config.read_text() == '{"endpoint": '  # left for the user to mend


@pytest.mark.skipif(os.name == "nt", reason="POSIX venv layout")
def test_commands_without_prefix_go_on_with_the_venv_the_install_used(home: Path,
                                                                       tmp_path: Path):
    """They used .venv beside install.py: --check called the install broken, --plugins-only
    pointed the plug-ins at a daemon command that does not exist."""
    venv = fake_venv(tmp_path)
    record = home / "cfg/deepdream/install-manifest.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"prefix": str(venv), "created_venv": True}))
    r = install_py(home, "--plugins-only", "--no-plugins", "--no-start", prefix=None)
    assert r.returncode == 0, r.stdout + r.stderr
    config = json.loads((home / "cfg/deepdream/client.json").read_text())
    assert config["daemon_cmd"][0] == str(venv / "bin/deepdream")
    r = install_py(home, "--check", prefix=None)
    assert f"none at {venv}" in r.stdout and ".venv" not in r.stdout  # (no python in it)


def test_a_first_install_cut_short_is_still_known_to_have_made_its_venv(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A download cut short after the venv was made, then a run that succeeds: --uninstall
    used to leave the venv (gigabytes) behind, recorded as the user's own."""
    import install

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(home / "cfg/deepdream/client.json"))
    venv = tmp_path / "venv"

    def prepare(prefix: Path, *_: object) -> Path:
        (prefix / "bin").mkdir(parents=True, exist_ok=True)
        (prefix / "bin/python").write_text("")
        (prefix / "pyvenv.cfg").write_text("")
        if attempts.pop(0) == "fails":
            raise plugin_files.InstallError("could not reach the package index")
        return prefix / "bin/python"

    attempts = ["fails", "works"]
    monkeypatch.setattr(full_install, "prepare", prepare)
    argv = ["--prefix", str(venv), "--no-plugins", "--no-start"]
    assert install.main(argv) == 1
    assert install.main(argv) == 0
    assert install.main(["--uninstall"]) == 0
    assert not venv.exists()


@pytest.mark.skipif(os.name == "nt", reason="a POSIX stand-in for GIMP")
def test_a_gimp_never_started_is_told_to_start_once_and_gets_no_folder(home: Path):
    gimp = home / "empty-path/gimp-3.0"  # found on PATH, never run: no ~/.config/GIMP
    gimp.write_text("#!/bin/sh\n")
    gimp.chmod(0o755)
    r = install_py(home, "--plugins-only", "--no-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: gimp (native) has not been started yet: start it once" in r.stdout
    assert not (home / ".config/GIMP").exists()
    assert "GIMP" not in r.stdout.strip().splitlines()[-2]  # (the end names no GIMP)
    r = install_py(home, "--check")
    assert r.returncode == 1 and "start GIMP 3 once, then run install.py again" in r.stdout
    (home / ".config/GIMP/3.2").mkdir(parents=True)  # GIMP 3.2 started once
    r = install_py(home, "--plugins-only", "--no-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home / ".config/GIMP/3.2/plug-ins/deepdream/deepdream.py").is_file()
    assert "done: dream in GIMP" in r.stdout


def test_a_config_naming_a_remote_daemon_gets_no_local_one_started(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local daemon would not answer at the remote endpoint: install.py waited two
    minutes for it and failed."""
    import install

    config = home / "cfg/deepdream/client.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"endpoint": "tcp://192.0.2.7:5599"}))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(config))
    monkeypatch.delenv("DEEPDREAM_ENDPOINT", raising=False)
    monkeypatch.setattr(full_install, "prepare", lambda prefix, *_: prefix / "bin/python")
    monkeypatch.setattr(full_install.daemon_ctl, "start",
                        lambda *_: pytest.fail("a local daemon was started"))
    assert install.main(["--prefix", str(tmp_path / "venv"), "--no-plugins"]) == 0


def test_a_refused_prefix_is_not_remembered(home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    """A folder of the user's given by mistake is refused, and a plain re-run then goes on
    with the default venv (it used to be recorded first, so every later run was refused)."""
    import install

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(home / "cfg/deepdream/client.json"))
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    assert install.main(["--prefix", str(documents), "--no-plugins", "--no-start"]) == 1
    record = home / "cfg/deepdream/install-manifest.json"
    assert not record.exists() or str(documents) not in record.read_text()
    assert (documents / "thesis.txt").read_text() == "years of work"
    assert full_install.chosen_prefix(None, Manifest.load()) != documents


@pytest.mark.skipif(os.name == "nt", reason="POSIX venv layout")
def test_a_venv_without_pip_gets_pip_and_keeps_what_is_in_it(tmp_path: Path):
    """A venv made by uv or with --without-pip used to be made anew (venv --clear): what
    its owner had installed in it was gone."""
    from installer.venv import ensure_venv

    venv = tmp_path / "theirs"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    kept = next((venv / "lib").glob("python3*/site-packages")) / "their_package"
    kept.mkdir()
    py = ensure_venv(venv)
    assert kept.is_dir()
    assert subprocess.run([str(py), "-c", "import pip"]).returncode == 0


def test_ctrl_c_is_one_line_and_leaves_no_half_written_record(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """Ctrl-C used to end in a traceback; the install's record and Krita's settings file
    are replaced whole, so an interrupt never leaves them half written."""
    from deepdream_protocol import launcher

    import install

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(home / "cfg/deepdream/client.json"))

    def interrupted(*_: object) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(full_install, "prepare", interrupted)
    assert install.main(["--prefix", str(tmp_path / "venv"), "--no-plugins",
                         "--no-start"]) == 130
    assert capsys.readouterr().err == "install.py: interrupted; run it again to finish\n"
    target = tmp_path / "kritarc"
    target.write_text("[General]\nold=1\n")
    real_write = Path.write_text

    def cut_short(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", cut_short)
    with pytest.raises(KeyboardInterrupt):
        launcher.replace_text(target, "[General]\nnew=2\n" * 50)
    monkeypatch.setattr(Path, "write_text", real_write)
    assert target.read_text() == "[General]\nold=1\n"


def test_a_local_endpoint_on_another_port_gets_a_daemon_listening_there(home: Path):
    """A config (or DEEPDREAM_ENDPOINT) naming another port on this computer: the daemon
    command now listens there; it listened on 5599, and install.py and the plug-ins waited
    for it at the other port (two minutes, then failed)."""
    config = home / "cfg/deepdream/client.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"endpoint": "tcp://127.0.0.1:6000"}))
    r = install_py(home, "--plugins-only", "--no-plugins", "--no-start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(config.read_text())["daemon_cmd"][-2:] == ["--port", "6000"]
    config.write_text(json.dumps({"endpoint": "tcp://[::1]:6001"}))
    assert install_py(home, "--plugins-only", "--no-plugins", "--no-start").returncode == 0
    assert json.loads(config.read_text())["daemon_cmd"][-4:] == ["--port", "6001", "--bind",
                                                                 "::1"]
    config.write_text(json.dumps({"endpoint": launcher.DEFAULT_ENDPOINT}))
    assert install_py(home, "--plugins-only", "--no-plugins", "--no-start").returncode == 0
    assert json.loads(config.read_text())["daemon_cmd"][-1] == "googlenet"
