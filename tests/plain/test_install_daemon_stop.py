"""`install.py --stop` and `--uninstall` with a daemon a plug-in started (no pid file): the
one answering at the configured endpoint is stopped when it runs from this install's venv,
and left alone when it does not.

The "daemon" is a small stand-in answering `hello` (with its pid) like `deepdream serve`; the
running venv is install.py's --prefix, so no PyTorch is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer import daemon_ctl

REPO = Path(__file__).resolve().parents[2]

FAKE_DAEMON = r"""
import os, sys
import zmq
from deepdream_protocol import messages as m
sock = zmq.Context().socket(zmq.ROUTER)
port = sock.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    frames = sock.recv_multipart()
    header = m.decode_header(frames[1])
    sock.send_multipart([frames[0], m.encode_header({
        "op": "hello", "version": m.PROTOCOL_VERSION, "req": header.get("req"),
        "server": "deepdream test", "pid": os.getpid(), "devices": ["cpu"]})])
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DEEPDREAM_"))}
    env.update(HOME=str(home), DEEPDREAM_CONFIG=str(home / "cfg/deepdream/client.json"),
               PYTHONPATH=os.pathsep.join([str(REPO / "daemon"), str(REPO / "shared")]))
    return env


def install_py(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "install.py"), "--prefix", sys.prefix,
                           *args], env=_env(home), capture_output=True, text=True, timeout=300)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def start_daemon(home: Path, tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[str]] = []

    def start(python: str) -> subprocess.Popen[str]:
        """A stand-in daemon run by ``python``, written into the plug-ins' config the way
        install.py writes it (a plug-in would have started it with that config)."""
        script = tmp_path / "fake_daemon.py"
        script.write_text(FAKE_DAEMON)
        env = _env(home)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *sys.path[1:]])
        proc = subprocess.Popen([python, str(script)], env=env, stdout=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        config = home / "cfg/deepdream/client.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({
            "endpoint": f"tcp://127.0.0.1:{port}",
            "daemon_cmd": [str(Path(sys.prefix) / "bin/deepdream"), "serve"]}))
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what a process runs")
def test_stop_stops_the_daemon_a_plugin_started_from_this_venv(home: Path, start_daemon):
    proc = start_daemon(sys.executable)  # the venv's python: what the config's command runs
    r = install_py(home, "--stop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no daemon started by install.py runs" not in r.stdout
    assert "stopped the daemon at tcp://127.0.0.1:" in r.stdout
    assert f"(pid {proc.pid}, started by a plug-in)" in r.stdout
    assert proc.wait(timeout=30) is not None  # it is gone

    r = install_py(home, "--stop")  # nothing left to stop
    assert r.returncode == 0 and "no daemon runs" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what a process runs")
def test_stop_leaves_a_daemon_from_another_python_running(home: Path, start_daemon):
    other = os.path.realpath(sys.executable)  # the base interpreter, outside the venv
    assert not other.startswith(sys.prefix + os.sep)
    proc = start_daemon(other)
    r = install_py(home, "--stop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"(pid {proc.pid}) does not run from {sys.prefix}; leaving it running" in r.stdout
    assert proc.poll() is None


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what a process runs")
def test_uninstall_stops_the_daemon_a_plugin_started(home: Path, start_daemon):
    r = install_py(home, "--plugins-only", "--no-plugins", "--no-start")
    assert r.returncode == 0, r.stdout + r.stderr
    proc = start_daemon(sys.executable)
    r = install_py(home, "--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped the daemon at tcp://127.0.0.1:" in r.stdout
    assert proc.wait(timeout=30) is not None
    assert r.stdout.strip().splitlines()[-1] == "uninstalled"


def test_runs_from_reads_the_command_line_and_is_careful_where_it_cannot(tmp_path: Path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    proc = tmp_path / "proc"
    (proc / "41").mkdir(parents=True)
    # a shebang script: the kernel runs the venv's python with the script's path
    (proc / "41/cmdline").write_bytes(
        f"{venv}/bin/python\0{venv}/bin/deepdream\0serve\0".encode())
    (proc / "42").mkdir()
    (proc / "42/cmdline").write_bytes(b"/usr/bin/python3\0/opt/other/deepdream\0serve\0")
    assert daemon_ctl.runs_from(41, [venv], "Linux", proc) is True
    assert daemon_ctl.runs_from(42, [venv], "Linux", proc) is False
    assert daemon_ctl.runs_from(43, [venv], "Linux", proc) is False  # gone


def test_runs_from_asks_windows_for_the_command_line(monkeypatch: pytest.MonkeyPatch):
    # Windows cannot run here: PowerShell's answer is mocked, as a venv's daemon started by
    # a plug-in has it (the venv's python runs the base interpreter with this command line)
    venv = r"C:\Users\Ann Lee\DeepDream\.venv"
    lines = {41: rf'"{venv}\Scripts\python.exe" "{venv}\Scripts\deepdream.exe" serve',
             42: r'"C:\Python312\python.exe" C:\other\deepdream.exe serve', 43: ""}
    asked: list[list[str]] = []

    def powershell(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        asked.append(cmd)
        if cmd[0] != "powershell":
            raise FileNotFoundError(cmd[0])
        pid = int(cmd[-1].split("ProcessId=")[1].split("'")[0])
        return subprocess.CompletedProcess(cmd, 0, lines[pid] + "\r\n", "")

    monkeypatch.setattr(daemon_ctl.subprocess, "run", powershell)
    runs_from = daemon_ctl.runs_from
    assert runs_from(41, [Path(venv.lower())], "Windows") is True  # (any case)
    assert runs_from(42, [Path(venv)], "Windows") is False
    assert runs_from(41, [Path(venv + "2")], "Windows") is False  # not a look-alike
    assert runs_from(43, [Path(venv)], "Windows") is False  # gone
    assert "Get-CimInstance Win32_Process -Filter 'ProcessId=41'" in asked[0][-1]
    monkeypatch.setattr(daemon_ctl.subprocess, "run",
                        lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("powershell")))
    assert runs_from(41, [Path(venv)], "Windows") is None  # cannot ask: careful


@pytest.mark.skipif(shutil.which("ps") is None or not sys.executable.startswith(sys.prefix),
                    reason="needs ps, and tests run by a venv's python")
def test_runs_from_asks_ps_where_there_is_no_proc(tmp_path: Path):
    # (macOS and the BSDs; Linux's ps takes the same options)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert daemon_ctl.runs_from(proc.pid, [Path(sys.prefix)], "Darwin") is True
        assert daemon_ctl.runs_from(proc.pid, [tmp_path / "venv"], "Darwin") is False
    finally:
        proc.kill()
        proc.wait()
    assert daemon_ctl.runs_from(proc.pid, [Path(sys.prefix)], "Darwin") is False  # gone


def test_a_recorded_pid_now_used_by_another_program_is_not_killed(tmp_path: Path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = tmp_path / "daemon.pid"
        pid_file.write_text(f"{other.pid}\n")
        if sys.platform == "linux":
            assert not daemon_ctl.stop(pid_file, wait=1, prefixes=[tmp_path / "venv"])
            assert other.poll() is None and not pid_file.exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what a process runs")
def test_moving_the_install_stops_the_old_venvs_daemon_and_names_the_old_venv(
        home: Path, tmp_path: Path, start_daemon):
    # install.py --prefix NEW after an install in this venv: the daemon a plug-in started
    # from the old venv would keep serving the old code at the endpoint, so it goes.  (The
    # whole move would build a venv with PyTorch; this runs the step that handles the old one.)
    proc = start_daemon(sys.executable)
    code = ("import sys; from pathlib import Path; from installer.full_install import "
            "leave_previous; leave_previous(Path(sys.argv[1]), Path(sys.argv[2]), True)")
    r = subprocess.run([sys.executable, "-c", code, sys.prefix, str(tmp_path / "new")],
                       env=_env(home), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"stopped the daemon of the previous install in {sys.prefix}" in r.stdout
    assert proc.wait(timeout=30) is not None
    assert f"the virtual environment {sys.prefix} that the previous install made" in r.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what a process runs")
def test_moving_the_install_leaves_another_daemon_running_and_says_so(
        home: Path, tmp_path: Path, start_daemon):
    # the previous venv is gone (deleted by hand): the new one's Python asks the endpoint,
    # and a daemon that runs from neither venv is left alone, in so many words
    proc = start_daemon(os.path.realpath(sys.executable))  # outside any venv
    code = ("import sys; from pathlib import Path; from installer.full_install import "
            "leave_previous; leave_previous(Path(sys.argv[1]), Path(sys.argv[2]), True)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "gone"), sys.prefix],
                       env=_env(home), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"(pid {proc.pid}) does not run from {tmp_path / 'gone'} or {sys.prefix}" in r.stdout
    assert proc.poll() is None
    assert "virtual environment" not in r.stdout  # nothing of it left to delete
