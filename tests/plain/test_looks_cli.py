"""The looks on the command line: options, 'presets', 'classes' and 'zoom'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from deepdream.cli import build_parser, dream_settings, main
from deepdream.imageio import read_image, write_image

from tests.support import TINY_MODELS

TINY = str(TINY_MODELS)
FAST = ["--models-file", TINY, "--model", "tiny", "--layer", "inception3a", "--octaves", "1",
        "--iterations", "1", "-q"]


@pytest.fixture()
def picture(tmp_path: Path) -> Path:
    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    img = np.stack([xx, yy, 0.5 + 0.3 * np.sin(7 * xx)], -1).astype(np.float32)
    write_image(tmp_path / "in.png", img)
    return tmp_path / "in.png"


def test_look_options_become_settings() -> None:
    args = build_parser().parse_args([
        "dream", "in.png", "-o", "out.png", "--preset", "animal", "--class", "tabby cat",
        "--class", "goldfish", "--guide", "g.png", "--neuron", "inception4c:3@0.2,0.8",
        "--rank", "-5", "--norm", "laplacian", "--smooth", "1.5", "--tv", "0.5", "--l2", "0.2",
        "--transform", "--keep-colours", "--seamless", "--from-noise"])
    d = dream_settings(args)
    assert {k: d[k] for k in ("preset", "classes", "guide", "neuron", "rank", "norm", "smooth",
                              "tv", "l2", "transform", "keep_colors", "seamless",
                              "from_noise")} == {
        "preset": "animal", "classes": "tabby cat, goldfish", "guide": "g.png",
        "neuron": "inception4c:3@0.2,0.8", "rank": -5, "norm": "laplacian", "smooth": 1.5,
        "tv": 0.5, "l2": 0.2, "transform": True, "keep_colors": True, "seamless": True,
        "from_noise": True}
    # unset options stay out, so a preset's values apply
    plain = dream_settings(build_parser().parse_args(["dream", "a.png", "-o", "b.png"]))
    assert not {"transform", "keep_colors", "norm", "classes"} & set(plain)


def test_no_switches_turn_off_what_a_preset_turns_on() -> None:
    from deepdream.engine import DreamSettings

    def settings(*extra: str) -> DreamSettings:
        args = build_parser().parse_args(["dream", "a.png", "-o", "b.png", *extra])
        return DreamSettings.from_dict(dream_settings(args))

    assert settings("--preset", "tileable-texture").seamless is True
    assert settings("--preset", "tileable-texture", "--no-seamless").seamless is False
    assert settings("--preset", "deep-objects").transform is True
    off = settings("--preset", "deep-objects", "--no-transform", "--no-keep-colours")
    assert (off.transform, off.keep_colors, off.layers) == (False, False, (("inception4e", 1.0),))
    assert settings("--preset", "animal").classes  # and --class '' drops them, as --help says
    assert settings("--preset", "animal", "--class", "").classes == ""


def test_presets_and_classes_commands_list_what_users_pick_from(capsys) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("classic", "shallow-textures", "deep-objects", "animal", "subtle"):
        assert any(line.startswith(name + " ") and len(line.split()) > 2
                   for line in out.splitlines()), name
    assert main(["classes", "retriever"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert " 207  golden retriever" in lines and all("retriever" in x for x in lines)
    # what --class takes by its words is listed too (it used to find nothing, although
    # LOOKS.md says --class "tabby cat" finds tabby)
    assert main(["classes", "tabby cat"]) == 0
    assert " 281  tabby" in capsys.readouterr().out.splitlines()
    assert main(["classes", "zzzzqqq"]) == 1  # (it printed nothing, with success)
    assert capsys.readouterr() == ("", "deepdream: no ImageNet class name matches 'zzzzqqq'\n")


def test_dream_with_looks_writes_the_result(picture: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    assert main(["dream", str(picture), "-o", str(out), *FAST, "--class", "tabby cat",
                 "--keep-colors", "--norm", "std", "--transform"]) == 0
    result = read_image(out)[0]
    assert result.shape == (40, 48, 3)
    assert np.abs(result - read_image(picture)[0]).max() > 0.01


@pytest.mark.parametrize("extra, message", [
    (["--class", "tabbby"], "unknown class 'tabbby'; did you mean 'tabby'"),
    (["--preset", "dreamy"], "unknown preset 'dreamy'"),
    (["--tv", "-2"], "tv must be between 0 and 10"),
    (["--neuron", "inception3a:999"], "out of range"),
    (["--guide", "missing.png"], "guide image missing.png does not exist"),
    (["--guide", "."], "guide image . is a folder, not an image file"),  # (was "does not exist")
    (["--mask", "nope.png"], "mask nope.png: no such file"),  # (it did not say "mask")
    (["--rank", "3", "--channels", "1"], "either channels or rank"),
    # its position was lost: the seamless dream moves the texture round at every step
    (["--neuron", "inception3a:3@0.2,0.2", "--seamless"], "turn off seamless or clear"),
])
def test_bad_look_options_are_one_line_errors_and_write_nothing(picture: Path, tmp_path: Path,
                                                                 capsys, extra, message) -> None:
    out = tmp_path / "out.png"
    assert main(["dream", str(picture), "-o", str(out), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_zoom_command_writes_and_resumes_frames(picture: Path, tmp_path: Path, capsys) -> None:
    frames = tmp_path / "frames"
    args = ["zoom", str(picture), "-o", str(frames), "--zoom", "1.05", "--rotate", "2",
            *[a for a in FAST if a != "-q"]]
    assert main([*args, "--frames", "2"]) == 0
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    capsys.readouterr()
    assert main([*args, "--frames", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("already there") == 2 and err.count("dreamed") == 1
    assert main([*args, "--frames", "3", "--zoom", "9"]) == 2
    assert "--zoom must be between" in capsys.readouterr().err


def test_zoom_from_noise_dreams_the_first_frame_from_noise_and_then_follows_the_zoom(
        picture: Path, tmp_path: Path) -> None:
    """Each later frame dreams the zoomed last one (every frame from noise ignored the zoom
    and turn: the frames were unrelated pictures, the same whatever the zoom)."""
    frames = {}
    for name, motion in (("slow", ["--zoom", "1.04"]), ("fast", ["--zoom", "1.9", "--rotate",
                                                                 "90"])):
        out = tmp_path / name
        assert main(["zoom", str(picture), "-o", str(out), "--frames", "2", "--from-noise",
                     *motion, *FAST]) == 0
        frames[name] = [read_image(out / f"frame_0000{i}.png")[0] for i in range(2)]
    slow, fast = frames["slow"], frames["fast"]
    assert np.array_equal(slow[0], fast[0])  # the first: from noise, the same seed
    assert np.abs(slow[1] - fast[1]).mean() > 0.005  # the second: the zoom shows (was 0)
    assert np.abs(slow[0] - read_image(picture)[0]).mean() > 0.05  # (the input was not used)


def test_zoom_refuses_to_continue_frames_dreamed_otherwise(picture: Path, tmp_path: Path,
                                                           capsys) -> None:
    frames = tmp_path / "frames"
    args = ["zoom", str(picture), "-o", str(frames), *FAST]
    assert main([*args, "--frames", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--frames", "2", "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "frame_00000.png does not match this run" in err and "(seed)" in err
    assert err.count("\n") == 1 and "new folder" in err
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png"]
