"""Find the daemon, start it when none answers, and keep the client's config file.

The config file (JSON) says where the daemon listens and how to start it::

    {"endpoint": "tcp://127.0.0.1:5599", "daemon_cmd": ["/path/venv/bin/python", "-m",
     "deepdream", "serve"]}

``install.py`` writes it with ``write_config``; standard library only (install.py and the
plug-ins import this module before anything else is installed).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client

CONFIG_NAME = "client.json"
#: the daemon's default TCP port and address on loopback (here, not in messages, because
#: install.py needs them before msgpack is installed)
DEFAULT_PORT = 5599
DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PORT}"


def config_dir() -> Path:
    """The per-user config folder for deepdream on this OS."""
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        base = (_outside_the_sandbox() or os.environ.get("XDG_CONFIG_HOME")
                or str(Path.home() / ".config"))
    return Path(base) / "deepdream"


def sandbox() -> str | None:
    """"Flatpak" or "Snap" when this host program runs in one (its config folder and its
    view of programs are its own), else None."""
    if os.environ.get("FLATPAK_ID"):
        return "Flatpak"
    if os.environ.get("SNAP_NAME"):
        return "Snap"
    return None


def _outside_the_sandbox() -> str | None:
    """The user's own config folder, as the installer (outside any sandbox) saw it, for a
    host in a sandbox: a Flatpak's XDG_CONFIG_HOME is ~/.var/app/ID/config, a Snap's HOME
    ~/snap/NAME/REVISION."""
    kind = sandbox()
    if kind == "Flatpak":
        return os.environ.get("HOST_XDG_CONFIG_HOME") or str(Path.home() / ".config")
    if kind == "Snap" and os.environ.get("SNAP_REAL_HOME"):
        return str(Path(os.environ["SNAP_REAL_HOME"]) / ".config")
    return None


def config_path() -> Path:
    """DEEPDREAM_CONFIG if set, else <per-user config folder>/deepdream/client.json."""
    if os.environ.get("DEEPDREAM_CONFIG"):
        return Path(os.environ["DEEPDREAM_CONFIG"])
    return config_dir() / CONFIG_NAME


def read_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config as a dict; {} when there is none.  A corrupt or unreadable file (a folder,
    no permission, not UTF-8) is a one-line ValueError, which every caller reports as such."""
    path = Path(path) if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"cannot read {path} ({reason}); fix or delete it") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def resolve_endpoint(endpoint: str | None = None,
                     config: Callable[[], Mapping[str, Any]] = read_config) -> str:
    """The argument, else DEEPDREAM_ENDPOINT, else the config file's, else the default.
    ``config`` reads the config file only when it is needed (a corrupt one: ValueError)."""
    if endpoint:
        return endpoint
    if os.environ.get("DEEPDREAM_ENDPOINT"):
        return os.environ["DEEPDREAM_ENDPOINT"]
    return str(config().get("endpoint") or DEFAULT_ENDPOINT)


def write_config(endpoint: str | None, daemon_cmd: str | Sequence[str],
                 path: str | os.PathLike[str] | None = None) -> Path:
    """Store the endpoint (None: keep the one there, else the default) and the daemon
    command (other keys are kept); returns the path."""
    path = Path(path) if path is not None else config_path()
    data = read_config(path)
    if endpoint is not None or not data.get("endpoint"):
        data["endpoint"] = endpoint or DEFAULT_ENDPOINT
    data["daemon_cmd"] = daemon_cmd if isinstance(daemon_cmd, str) else list(daemon_cmd)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_text(path, json.dumps(data, indent=2) + "\n")
    return path


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a Ctrl-C or a full disk never leaves it half
    written): into a file beside it, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def daemon_command(config: dict[str, Any] | None = None) -> list[str] | None:
    """DEEPDREAM_DAEMON_CMD (a shell-style string), else the config's daemon_cmd (a string
    or a list of words).  One that cannot be read is a one-line ValueError naming it."""
    cmd: Any = os.environ.get("DEEPDREAM_DAEMON_CMD")
    where = "DEEPDREAM_DAEMON_CMD"
    if not cmd:
        cmd = (config if config is not None else read_config()).get("daemon_cmd")
        where = f"daemon_cmd in {config_path()}"
    if not cmd:
        return None
    if isinstance(cmd, str):
        try:
            return shlex.split(cmd, posix=os.name != "nt")
        except ValueError as exc:  # e.g. an unclosed quote
            raise ValueError(f"{where} is not a valid command line ({exc})") from None
    if isinstance(cmd, list) and all(isinstance(part, (str, int, float)) for part in cmd):
        return [str(part) for part in cmd]
    raise ValueError(f"{where} must be a command line or a list of its words, not {cmd!r}")


def spawn_detached(cmd: list[str]) -> subprocess.Popen[bytes]:
    """Start the daemon detached from the host program (or the installer's terminal), so
    it outlives it."""
    kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                              "stderr": subprocess.DEVNULL, "close_fds": True}
    if os.name == "nt":
        kwargs["creationflags"] = (subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
                                   | subprocess.CREATE_NEW_PROCESS_GROUP)
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen(cmd, **kwargs)


def ensure_daemon(client_or_endpoint: Client | str | None = None,
                  timeout: float = 60.0) -> dict[str, Any]:
    """Make sure a daemon answers; start it if none does.  Returns its hello reply.

    Raises DaemonUnavailable with a clear message when no start command is configured, the
    command cannot run, it exits, or the daemon does not answer within ``timeout`` seconds.
    DaemonIncompatible passes through: a daemon of another version is not restarted.
    """
    from .client import Client

    if isinstance(client_or_endpoint, Client):
        return _ensure(client_or_endpoint, timeout)
    client = Client(client_or_endpoint, timeout=2.0)
    try:
        return _ensure(client, timeout)
    finally:
        client.close()  # made here for the check: its socket must not outlive it


def _ensure(client: Client, timeout: float) -> dict[str, Any]:
    from .client import KEYS_HINT, DaemonUnavailable
    from .zmtp import listening, on_this_computer

    try:
        return client.hello()
    except DaemonUnavailable:
        if not on_this_computer(client.endpoint):  # a start here would not answer there
            raise DaemonUnavailable(
                f"no deepdream daemon answers at {client.endpoint}, on another computer: "
                "start it there (deepdream serve)") from None
    try:
        cmd = daemon_command()
    except ValueError as exc:  # a hand-edited config: the host shows why, in one line
        raise DaemonUnavailable(f"no deepdream daemon at {client.endpoint}, and {exc}") from None
    if cmd is None:
        raise DaemonUnavailable(
            f"no deepdream daemon at {client.endpoint} and no command to start one: set "
            f"daemon_cmd in {config_path()} (install.py does) or DEEPDREAM_DAEMON_CMD")
    confined = sandbox()
    if confined:  # (its programs are not the computer's: the daemon's venv is outside)
        raise DaemonUnavailable(
            f"no deepdream daemon at {client.endpoint}, and this program runs in a "
            f"{confined} sandbox, which cannot start it: start it yourself in a terminal "
            f"({shlex.join(cmd)})")
    try:
        proc = spawn_detached(cmd)
    except OSError as exc:
        raise DaemonUnavailable(f"cannot start the deepdream daemon with {cmd!r}: {exc}") from None
    deadline = time.monotonic() + timeout
    chances_after_exit = 3
    while True:
        try:
            return client.hello()
        except DaemonUnavailable:
            code = proc.poll()
            # A daemon that was only slow to answer makes the new one exit (port in use):
            # give it a few more chances before calling the start a failure.
            if code is not None and chances_after_exit > 0:
                chances_after_exit -= 1
            elif code is not None and listening(client.endpoint):  # (port in use)
                raise DaemonUnavailable(
                    f"something listens at {client.endpoint} but does not answer as a "
                    f"deepdream daemon; {KEYS_HINT}") from None
            elif code is not None:
                raise DaemonUnavailable(
                    f"the deepdream daemon exited with status {code} right after starting "
                    f"({' '.join(cmd)}); see its log file") from None
            if time.monotonic() > deadline:
                raise DaemonUnavailable(
                    f"started the deepdream daemon ({' '.join(cmd)}) but it did not answer "
                    f"at {client.endpoint} within {timeout:g} s") from None
            time.sleep(0.25)
