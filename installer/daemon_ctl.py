"""Start the daemon in the background after installing, and stop the one install.py started."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .manifest import launcher, settings
from .plugin_files import InstallError
from .venv import python_in, script_in
from .venv_probes import DAEMON_HELLO, LOG_FILE, run_probe

DEFAULT_MODEL = settings.DEFAULTS["model"]  # the one the plug-ins ask for unless told


def serve_command(prefix: Path) -> list[str]:
    """How the daemon is started, by install.py and (from the config) by the plug-ins."""
    return [str(script_in(prefix, "deepdream")), "serve", "--preload", DEFAULT_MODEL]


def hello(prefix: Path, timeout: float = 2.0) -> dict:
    return run_probe(python_in(prefix), DAEMON_HELLO, str(timeout), timeout=timeout + 30)


def log_file(prefix: Path) -> str:
    return run_probe(python_in(prefix), LOG_FILE).get("log", "(unknown)")


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def stop(pid_file: Path, wait: float = 15.0) -> bool:
    """Stop the daemon whose pid install.py recorded; False when none was running."""
    pid = _pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)  # the daemon finishes cleanly on SIGTERM
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
