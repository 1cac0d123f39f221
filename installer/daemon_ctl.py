"""Start the daemon in the background after installing; stop this install's daemon (the one
install.py started, or one a plug-in started from this venv)."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from deepdream_protocol import launcher, settings, zmtp

from .plugin_files import InstallError
from .venv import bin_dir, python_in, script_in
from .venv_probes import DAEMON_HELLO, LOG_FILE, run_probe

DEFAULT_MODEL = settings.DEFAULTS["model"]  # the one the plug-ins ask for unless told


def serve_command(prefix: Path) -> list[str]:
    """How the daemon is started, by install.py and (from the config) by the plug-ins:
    listening where they look for it (a daemon listens on the default port unless told)."""
    return [str(script_in(prefix, "deepdream")), "serve", "--preload", DEFAULT_MODEL,
            *listen_args()]


def listen_args() -> list[str]:
    """--port (and --bind) for the endpoint the plug-ins use (DEEPDREAM_ENDPOINT, else the
    config's) when it is another address on this computer; none for the default, or for a
    daemon elsewhere (install.py starts none there)."""
    try:
        endpoint = launcher.resolve_endpoint()
        if endpoint == launcher.DEFAULT_ENDPOINT or not zmtp.on_this_computer(endpoint):
            return []
        host, port = zmtp.parse_tcp_endpoint(endpoint)
    except ValueError:  # (a config that does not parse, an ipc:// one: said elsewhere)
        return []
    bind = [] if host in ("127.0.0.1", "localhost") else ["--bind", host]
    return ["--port", str(port), *bind]


def hello(prefix: Path, timeout: float = 2.0) -> dict:
    return run_probe(python_in(prefix), DAEMON_HELLO, str(timeout), timeout=timeout + 30)


def log_file(prefix: Path) -> str:
    return run_probe(python_in(prefix), LOG_FILE).get("log", "(unknown)")


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _inside(path: str, prefixes: Sequence[Path]) -> bool:
    """Whether the absolute ``path`` names a file in one of ``prefixes`` (its folders
    resolved, not the file itself: a venv's python is a link to the base interpreter)."""
    if not os.path.isabs(path):
        return False
    folder = Path(os.path.realpath(Path(path).parent))
    for prefix in prefixes:
        venv = Path(os.path.realpath(prefix))
        if folder == venv or venv in folder.parents:
            return True
    return False


def runs_from(pid: int, prefixes: Sequence[Path], system: str | None = None,
              proc: Path = Path("/proc")) -> bool | None:
    """Whether process ``pid`` runs one of these venvs (its interpreter or its `deepdream`
    script lies in one); None when this system does not let install.py tell."""
    system = system or platform.system()
    if system == "Linux":
        try:
            words = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return False  # gone
        except OSError:
            return None
        args = [w.decode(errors="surrogateescape") for w in words[:2] if w]
        with contextlib.suppress(OSError):
            args.append(os.readlink(proc / str(pid) / "exe"))
        return any(_inside(a, prefixes) for a in args)
    if system == "Windows":
        command = _windows_command_line(pid)
        if not command:
            return None if command is None else False  # "": no such process (or not ours)
        line = command.lower()  # (paths there are not case-sensitive)
        return any(f"{PureWindowsPath(prefix, 'Scripts')}\\".lower() in line
                   for prefix in prefixes)
    try:  # macOS, the BSDs: ps prints the command line (paths with spaces stay ambiguous)
        r = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    command = r.stdout.strip()
    if r.returncode != 0 or not command:
        return False if r.returncode == 1 else None  # 1: no such process
    folders = {str(bin_dir(p)) + os.sep for prefix in prefixes
               for p in (prefix, Path(os.path.realpath(prefix)))}
    return any(command.startswith(f) or f" {f}" in command for f in folders)


def _windows_command_line(pid: int) -> str | None:
    """Process ``pid``'s command line, read through PowerShell's CIM (in every Windows 10 and
    11); "" when there is no such process or it is another user's, None when it cannot be
    asked.  A venv's python there starts the base interpreter, which keeps the command line:
    the venv's Scripts folder is in it."""
    query = f"(Get-CimInstance Win32_Process -Filter 'ProcessId={int(pid)}').CommandLine"
    try:
        r = subprocess.run(["powershell", "-NoProfile", "-NonInteractive", "-Command", query],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _terminate(pid: int, wait: float) -> bool:
    """SIGTERM (the daemon finishes cleanly on it) and wait for the process to go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    if os.name == "nt":
        return True  # os.kill is TerminateProcess there: the process is already gone
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # still there?
        except OSError:
            return True
        time.sleep(0.2)
    return True


def stop(pid_file: Path, wait: float = 15.0, prefixes: Sequence[Path] = ()) -> bool:
    """Stop the daemon whose pid install.py recorded; False when none was running.  With
    ``prefixes``, a recorded pid now used by a process outside those venvs is left alone."""
    pid = _pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    if prefixes and runs_from(pid, prefixes) is False:
        return False  # the daemon ended and its pid went to another program
    return _terminate(pid, wait)


@dataclass
class Stopped:
    """What stop_daemon did: whether it stopped one, whether any answered, what to say."""

    stopped: bool
    answered: bool
    message: str


def stop_daemon(pid_file: Path, prefixes: Sequence[Path], wait: float = 15.0) -> Stopped:
    """Stop this install's daemon: the one install.py started (the pid file) or, with none
    recorded, the one answering at the configured endpoint if it runs from one of
    ``prefixes`` (a plug-in started it with the config's command)."""
    prefixes = list(dict.fromkeys(prefixes))
    if stop(pid_file, wait, prefixes):
        return Stopped(True, True, "stopped the daemon")
    venvs = [p for p in prefixes if python_in(p).exists()]
    where = " or ".join(map(str, prefixes))
    if not venvs:
        return Stopped(False, False, f"no daemon started by install.py runs (and no venv at "
                                     f"{where} to ask the configured endpoint with)")
    answer = hello(venvs[0])
    endpoint = answer.get("endpoint") or "the configured endpoint"
    if not answer.get("ok"):
        error = str(answer.get("error") or "")
        if error.startswith("DaemonIncompatible"):
            return Stopped(False, True, f"a daemon of another version answers at {endpoint} "
                                        f"({error.partition(': ')[2]}); stop it yourself")
        return Stopped(False, False, f"no daemon runs (none answers at {endpoint})")
    pid = (answer.get("hello") or {}).get("pid")
    if not zmtp.on_this_computer(endpoint):  # (a remote daemon's pid means nothing here)
        return Stopped(False, True, f"the daemon at {endpoint} runs on another computer; "
                                    "stop it there")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return Stopped(False, True, f"a daemon answers at {endpoint} but does not say its "
                                    "process id; stop it yourself")
    ours = runs_from(pid, prefixes)
    if ours is None:
        return Stopped(False, True, f"a daemon answers at {endpoint} (pid {pid}); install.py "
                                    f"cannot tell on this system whether it runs from "
                                    f"{where}, so it leaves it running: stop it yourself")
    if not ours:
        return Stopped(False, True, f"the daemon at {endpoint} (pid {pid}) does not run from "
                                    f"{where}; leaving it running")
    if not _terminate(pid, wait):
        return Stopped(False, True, f"could not stop the daemon at {endpoint} (pid {pid})")
    return Stopped(True, True, f"stopped the daemon at {endpoint} (pid {pid}, started by a "
                               "plug-in)")


def start(prefix: Path, pid_file: Path, wait: float = 120.0) -> int:
    """Start `deepdream serve` detached from this terminal; return its pid once it answers."""
    cmd = serve_command(prefix)
    try:
        proc = launcher.spawn_detached(cmd)  # keeps running after the terminal closes
    except OSError as e:
        raise InstallError(f"cannot start the daemon ({' '.join(cmd)}): {e}") from e
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise InstallError(f"the daemon exited with status {proc.returncode} right after "
                               f"starting; see {log_file(prefix)}")
        if hello(prefix).get("ok"):
            return proc.pid
        time.sleep(1.0)
    raise InstallError(f"the daemon started (pid {proc.pid}) but did not answer within "
                       f"{wait:.0f} s; see {log_file(prefix)}")
