"""Per-user folders: the daemon's log, and where compiled dream steps are kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from deepdream.userdirs import compile_cache_dir, default_log_file, keep_compiled_steps, state_dir

HOME = Path("/home/ada")


@pytest.mark.parametrize(("platform", "env", "state"), [
    ("linux", {}, HOME / ".local/state/deepdream"),
    ("linux", {"XDG_STATE_HOME": "/s"}, Path("/s/deepdream")),
    ("darwin", {}, HOME / "Library/Application Support/deepdream"),
    ("win32", {"LOCALAPPDATA": "/L"}, Path("/L/deepdream")),
])
def test_each_os_keeps_the_daemons_state_in_its_per_user_folder(
        platform: str, env: dict[str, str], state: Path) -> None:
    assert state_dir(env, platform, HOME) == state


@pytest.mark.parametrize(("platform", "env", "log", "cache"), [
    ("linux", {}, HOME / ".local/state/deepdream/daemon.log",
     HOME / ".cache/deepdream/torchinductor"),
    ("linux", {"XDG_STATE_HOME": "/s", "XDG_CACHE_HOME": "/c"}, Path("/s/deepdream/daemon.log"),
     Path("/c/deepdream/torchinductor")),
    ("darwin", {}, HOME / "Library/Logs/deepdream/daemon.log",
     HOME / "Library/Caches/deepdream/torchinductor"),
    ("win32", {"LOCALAPPDATA": "/L"}, Path("/L/deepdream/Logs/daemon.log"),
     Path("/L/deepdream/Cache/torchinductor")),
    ("win32", {}, HOME / "AppData/Local/deepdream/Logs/daemon.log",
     HOME / "AppData/Local/deepdream/Cache/torchinductor"),
])
def test_each_os_keeps_the_log_and_compiled_steps_in_its_per_user_folders(
        platform: str, env: dict[str, str], log: Path, cache: Path) -> None:
    assert default_log_file(env, platform, HOME) == log
    assert compile_cache_dir(env, platform, HOME) == cache


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG folders: Linux")
def test_compiled_steps_go_to_the_user_cache_unless_the_user_chose_a_folder(
        tmp_path: Path) -> None:
    # inductor's own default is the temporary folder, which a reboot empties
    ours = str(tmp_path / "deepdream" / "torchinductor")  # (XDG's cache folder: Linux)
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert keep_compiled_steps(env) == ours == env["TORCHINDUCTOR_CACHE_DIR"]
    empty = {"TORCHINDUCTOR_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path)}
    assert keep_compiled_steps(empty) == ours == empty["TORCHINDUCTOR_CACHE_DIR"]
    chosen = {"TORCHINDUCTOR_CACHE_DIR": "/mine", "XDG_CACHE_HOME": str(tmp_path)}
    assert keep_compiled_steps(chosen) == "/mine" == chosen["TORCHINDUCTOR_CACHE_DIR"]
