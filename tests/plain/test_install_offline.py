"""Offline, install.py says which package index it could not reach."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from installer import venv
from installer.plugin_files import InstallError
from installer.torch_choice import choose_torch

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the stand-in pip is a shell script")


def offline_python(tmp_path: Path, config: str = "") -> Path:
    """A stand-in for the venv's python whose pip cannot reach any index."""
    py = tmp_path / "python"
    py.write_text("#!/bin/sh\n"
                  f"if [ \"$3\" = config ]; then printf '%s' \"{config}\"; exit 0; fi\n"
                  "echo \"WARNING: Retrying after connection broken by 'NewConnectionError("
                  "Failed to establish a new connection: [Errno -3] Temporary failure in name "
                  "resolution)'\"\n"
                  "echo 'ERROR: No matching distribution found for torch>=2.10'\n"
                  "exit 1\n")
    py.chmod(0o755)
    return py


def test_torch_cpu_offline_names_pytorchs_index(tmp_path: Path, capsys) -> None:
    choice = choose_torch("Linux", "x86_64", False, "cpu")
    with pytest.raises(InstallError) as info:
        venv.pip(offline_python(tmp_path), ["torch>=2.10", *choice.pip_args()], "PyTorch")
    message = str(info.value)
    assert "https://download.pytorch.org/whl/cpu could not be reached" in message
    assert "\n" not in message


def test_default_index_offline_names_pypi_or_the_configured_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    with pytest.raises(InstallError, match=r"index https://pypi\.org/simple could not"):
        venv.pip(offline_python(tmp_path), ["-e", "."], "the deepdream package")
    mirror = offline_python(tmp_path, "global.index-url='https://mirror.example/simple'")
    with pytest.raises(InstallError, match=r"index https://mirror\.example/simple could not"):
        venv.pip(mirror, ["-e", "."], "the deepdream package")
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    with pytest.raises(InstallError, match=r"index https://env\.example/simple could not"):
        venv.pip(mirror, ["-e", "."], "the deepdream package")


def test_an_index_with_a_token_in_it_is_named_without_the_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # a company mirror's URL often carries a user and a token: the message may be pasted
    # into a bug report
    monkeypatch.setenv("PIP_INDEX_URL", "https://ci-bot:s3cr3t@pkgs.example/simple")
    with pytest.raises(InstallError) as info:
        venv.pip(offline_python(tmp_path), ["-e", "."], "the deepdream package")
    assert "index https://pkgs.example/simple could not" in str(info.value)
    assert "s3cr3t" not in str(info.value) and "ci-bot" not in str(info.value)
