"""Where the daemon keeps per-user files on each OS: its log, its state (recent jobs) and
compiled dream steps."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

#: torch.compile's kernels and graphs (inductor's own default is the temporary folder)
COMPILE_CACHE_VAR = "TORCHINDUCTOR_CACHE_DIR"


def default_log_file(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                     home: Path | None = None) -> Path:
    """daemon.log in the per-user state/log folder of this OS."""
    home = home or Path.home()
    if platform == "win32":
        return _localappdata(env, home) / "deepdream" / "Logs" / "daemon.log"
    if platform == "darwin":
        return home / "Library" / "Logs" / "deepdream" / "daemon.log"
    return state_dir(env, platform, home) / "daemon.log"  # (XDG keeps logs with state)


def state_dir(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
              home: Path | None = None) -> Path:
    """The daemon's per-user folder for what it keeps between runs (not logs, not caches)."""
    home = home or Path.home()
    if platform == "win32":
        return _localappdata(env, home) / "deepdream"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "deepdream"
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "deepdream"


def compile_cache_dir(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                      home: Path | None = None) -> Path:
    """The per-user cache folder for torch.compile's output."""
    home = home or Path.home()
    if platform == "win32":
        base = _localappdata(env, home) / "deepdream" / "Cache"
    elif platform == "darwin":
        base = home / "Library" / "Caches" / "deepdream"
    else:
        base = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "deepdream"
    return base / "torchinductor"


def keep_compiled_steps(env: MutableMapping[str, str] = os.environ) -> str:
    """Point torch.compile's caches at ``compile_cache_dir`` unless the user chose a folder
    (TORCHINDUCTOR_CACHE_DIR).  Inductor's default is the temporary folder, which a reboot
    empties, and then every image size compiles again from scratch (minutes each).
    Call before the first compile: inductor puts its own default in the environment then.
    Returns the folder in use."""
    if not env.get(COMPILE_CACHE_VAR):
        env[COMPILE_CACHE_VAR] = str(compile_cache_dir(env))
    return env[COMPILE_CACHE_VAR]


def _localappdata(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
