"""What a user sees when the command line is mistyped, piped into `head`, or given a bad
DEEPDREAM_THREADS: one line (exit code 2), never the whole usage block or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from deepdream.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("isolated_config")
ROOT = Path(__file__).resolve().parents[2]


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err  # one line, no usage block
    assert "usage:" not in err
    return err.rstrip("\n")


COMMANDS = ["classes", "dream", "keygen", "models", "presets", "serve", "zoom"]


def test_the_commands_checked_here_are_all_there_are() -> None:
    assert sorted(build_parser().commands) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommands_usage_error_is_one_line_naming_its_help(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error([command, "--no-such-option"], capsys)
    assert err.startswith(f"deepdream {command}: error: ")
    assert err.endswith(f"(see 'deepdream {command} --help')")


def test_usage_errors_say_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error(["models", "--bogus"], capsys) == (
        "deepdream models: error: unrecognized arguments: --bogus "
        "(see 'deepdream models --help')")
    assert usage_error(["dream", "in.png"], capsys) == (
        "deepdream dream: error: the following arguments are required: -o/--output "
        "(see 'deepdream dream --help')")
    assert usage_error(["dream", "in.png", "-o", "out.png", "--octaves", "many"], capsys) == (
        "deepdream dream: error: argument --octaves: invalid int value: 'many' "
        "(see 'deepdream dream --help')")
    assert usage_error([], capsys) == (
        "deepdream: error: the following arguments are required: COMMAND "
        "(see 'deepdream --help')")
    assert usage_error(["dreem"], capsys).startswith(
        "deepdream: error: argument COMMAND: invalid choice: 'dreem'")
    # --daemon took the input file as its endpoint: it said "arguments are required: IN"
    photo = str(ROOT / "README.md")  # (any file that is there)
    assert usage_error(["dream", "--daemon", photo, "-o", "out.png"], capsys) == (
        f"deepdream dream: error: argument --daemon: took {photo!r} as the daemon's endpoint; "
        "put --daemon last, or give it one (tcp://HOST:PORT) (see 'deepdream dream --help')")


def _cli(*argv: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DEEPDREAM_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT / "daemon"), str(ROOT / "shared")]),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.Popen([sys.executable, "-m", "deepdream", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.skipif(os.name == "nt", reason="a POSIX pipe's reader closing")
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # `deepdream classes | head -1` with head gone before the first 8 KiB are written
    proc = _cli("classes", tmp_path=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, err  # as SIGPIPE ends `yes | head`
    assert err == ""
    # `deepdream models | head` with the reader gone before the (buffered) list is written
    proc = _cli("models", tmp_path=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, err
    assert err == ""


def test_a_bad_deepdream_threads_is_refused_in_one_line(
        tmp_path: Path, tiny_models_file: Path, make_image, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from deepdream.imageio import write_image

    write_image(tmp_path / "in.png", make_image(32, 32))
    monkeypatch.setenv("DEEPDREAM_THREADS", "abc")
    code = main(["dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                 "--model", "tiny", "--iterations", "1", "--octaves", "1", "--quiet",
                 "--models-file", str(tiny_models_file)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("deepdream: error: DEEPDREAM_THREADS must be a whole number of CPU threads "
                   "(or unset for one per physical core), not 'abc'\n")
    assert not (tmp_path / "out.png").exists()
