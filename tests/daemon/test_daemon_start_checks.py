"""``deepdream serve`` refuses options and models files it cannot serve with, in one line,
before it listens; it does not start and then fail every request."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import accepts_tcp, daemon_env, free_port, serve_command

pytestmark = pytest.mark.daemon


def serve(tmp_path: Path, *args: str, port: int | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``deepdream serve`` expecting it to refuse (a started one is killed on timeout)."""
    # the arguments come last, so an option given there (--port, --models-file) wins
    cmd = serve_command(port or free_port(), tmp_path / "d.log", extra_args=args)
    return subprocess.run(cmd, env=daemon_env({"XDG_STATE_HOME": str(tmp_path)}),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "argument --port: must be from 1 to 65535, not 70000"),
    (["--port", "-1"], "argument --port: must be from 1 to 65535, not -1"),
    (["--port", "0"], "argument --port: must be from 1 to 65535, not 0"),
    (["--max-pixels", "1000000000000000000"], "argument --max-pixels: must be from 1 to"),
    (["--max-pixels", "-5"], "argument --max-pixels: must be from 1 to"),
    (["--max-queue", "-1"], "argument --max-queue: must be at least 1, not -1"),
    (["--max-queue", "0"], "argument --max-queue: must be at least 1, not 0"),
    (["--cache-mb", "-1"], "argument --cache-mb: must be at least 0, not -1"),
    (["--unload-after", "-2"], "argument --unload-after: must be a number of minutes"),
    (["--unload-after", "nan"], "argument --unload-after: must be a number of minutes"),
    (["--unload-after", "inf"], "argument --unload-after: must be a number of minutes"),
    (["--port", "http"], "argument --port: 'http' is not a whole number"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_out_of_range_option_is_a_usage_error_and_nothing_starts(tmp_path: Path, args: list[str],
                                                                 message: str) -> None:
    out = serve(tmp_path, *args)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"deepdream serve: error: {message}")
    assert "Traceback" not in out.stderr and "listening" not in out.stderr
    assert not (tmp_path / "d.log").exists()


def test_in_range_edges_are_accepted_by_the_parser() -> None:
    from deepdream.cli import build_parser

    args = build_parser().parse_args(
        ["serve", "--port", "65535", "--max-pixels", "1", "--max-queue", "1",
         "--cache-mb", "0", "--unload-after", "0"])
    assert (args.port, args.max_pixels, args.max_queue, args.cache_mb, args.unload_after) == (
        65535, 1, 1, 0, 0.0)


def test_missing_models_file_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    out = serve(tmp_path, "--models-file", str(tmp_path / "nonexistent.toml"), port=port)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"deepdream serve: models file {tmp_path / 'nonexistent.toml'}"
                                  " (from --models-file) does not exist")
    assert not accepts_tcp(port)
    assert "cannot start: models file" in (tmp_path / "d.log").read_text()


@pytest.mark.parametrize("text, message", [
    ("[models.broken\narch = ", "cannot read models file"),
    ('[models.odd]\narch = "alexnet"\nweights = "random"\n', "arch must be one of"),
])
def test_models_file_that_does_not_parse_refuses_to_start(tmp_path: Path, text: str,
                                                          message: str) -> None:
    models = tmp_path / "models.toml"
    models.write_text(text)
    out = serve(tmp_path, "--models-file", str(models))
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert "listening" not in out.stderr


def test_an_unknown_model_to_preload_refuses_to_start(tmp_path: Path) -> None:
    """It used to start, log the unknown name, and serve without it."""
    port = free_port()
    out = serve(tmp_path, "--preload", "tiny", "--preload", "nope", port=port)
    assert out.returncode == 1
    assert out.stderr.startswith("deepdream serve: --preload: unknown model 'nope'; choose one")
    assert len(out.stderr.strip().splitlines()) == 1 and "tiny" in out.stderr
    assert not accepts_tcp(port)
