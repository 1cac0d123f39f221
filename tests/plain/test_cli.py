"""`deepdream dream` and `deepdream models` as a user runs them: files in, files out,
one-line errors with exit code 2 and no output file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deepdream.cli import ProgressBar, main
from deepdream.engine import Progress
from deepdream.imageio import read_image, write_image

pytestmark = pytest.mark.usefixtures("isolated_config")
ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--model", "tiny", "--layer", "inception3b", "--iterations", "2", "--octaves", "1",
         "--quiet"]


@pytest.fixture
def run(tiny_models_file: Path, capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--models-file", str(tiny_models_file)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_dream_16_bit_png_stays_16_bit_with_alpha_kept(tmp_path: Path, run, make_image) -> None:
    image = make_image(40, 48, 4)
    image[..., 3] = np.linspace(0, 1, 48, dtype=np.float32)[None, :]
    write_image(tmp_path / "in.png", image, bits=16)
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), *QUICK)
    assert code == 0, err
    out, info = read_image(tmp_path / "out.png")
    source, _ = read_image(tmp_path / "in.png")
    assert info.bits == 16 and out.shape == (40, 48, 4)
    assert np.array_equal(out[..., 3], source[..., 3])
    # 16-bit precision survives: values that an 8-bit file could not hold
    assert not np.allclose(out * 255, np.rint(out * 255), atol=1e-3)
    assert np.abs(out[..., :3] - source[..., :3]).mean() > 0.005


def test_gray_16_bit_tiff_stays_gray(tmp_path: Path, run, make_image) -> None:
    write_image(tmp_path / "in.tif", make_image(40, 40, 1), bits=16)
    code, _, err = run("dream", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), *QUICK)
    assert code == 0, err
    out, info = read_image(tmp_path / "out.tif")
    assert info.bits == 16 and out.shape == (40, 40, 1)


@pytest.mark.parametrize("channels", [4, 2])
def test_an_opaque_alpha_goes_into_a_jpeg_and_a_transparent_one_is_refused(
        tmp_path: Path, run, make_image, channels: int) -> None:
    """Screenshots and many PNG exports are RGBA with nothing transparent: they were refused
    a JPEG ("cannot keep the alpha channel") though no transparency would be lost."""
    image = make_image(40, 48, channels)
    image[..., -1] = 1.0
    write_image(tmp_path / "opaque.png", image)
    code, _, err = run("dream", str(tmp_path / "opaque.png"), "-o", str(tmp_path / "out.jpg"),
                       *QUICK)
    assert code == 0, err
    assert read_image(tmp_path / "out.jpg")[0].shape == (40, 48, channels - 1)
    image[0, 0, -1] = 0.5  # one pixel see-through: a JPEG would lose it
    write_image(tmp_path / "clear.png", image)
    code, _, err = run("dream", str(tmp_path / "clear.png"), "-o", str(tmp_path / "no.jpg"),
                       *QUICK)
    assert (code, err) == (2, f"deepdream: error: {tmp_path / 'no.jpg'}: JPEG cannot keep the "
                              "alpha channel; write .png or .tif\n")
    assert not (tmp_path / "no.jpg").exists()


def test_mask_and_max_size(tmp_path: Path, run, make_image) -> None:
    write_image(tmp_path / "in.png", make_image(80, 64), bits=8)
    mask = np.zeros((80, 64, 1), np.float32)
    mask[40:] = 1
    write_image(tmp_path / "mask.png", mask)
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                       "--mask", str(tmp_path / "mask.png"), *QUICK)
    assert code == 0, err
    out, _ = read_image(tmp_path / "out.png")
    source, _ = read_image(tmp_path / "in.png")
    assert np.array_equal(out[:40], source[:40]) and not np.array_equal(out[40:], source[40:])
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "small.jpg"),
                       "--max-size", "40", *QUICK)
    assert code == 0, err
    assert read_image(tmp_path / "small.jpg")[0].shape == (40, 32, 3)


@pytest.mark.parametrize(("args", "words"), [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "tiny", "--layer", "inception9"], "has no layer 'inception9'"),
    # finite for Python but past float32's range: the dream came out all NaN, saved black
    (["--model", "tiny", "--layer", "inception3b:1e39"], "layer weight in 'inception3b:1e39'"),
    (["--model", "tiny", "--channels", "0,999"], "channel 999 is out of range"),
    (["--model", "tiny", "--iterations", "9999"], "iterations must be between 0 and 500"),
    (["--model", "tiny", "--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_one_line_errors_and_write_nothing(
    tmp_path: Path, run, make_image, args: list[str], words: str,
) -> None:
    write_image(tmp_path / "in.png", make_image(40, 40))
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                       "--iterations", "1", "--octaves", "1", "--quiet", *args)
    assert code == 2
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("problem", ["missing", "unreadable", "zero-size", "mask-size"])
def test_bad_files_are_one_line_errors_and_write_nothing(
    tmp_path: Path, run, make_image, problem: str,
) -> None:
    source = tmp_path / "in.png"
    extra: list[str] = []
    if problem == "unreadable":
        source.write_bytes(b"definitely not a picture")
    elif problem == "zero-size":
        source.write_bytes(b"")
    elif problem == "mask-size":
        write_image(source, make_image(40, 40))
        write_image(tmp_path / "mask.png", np.ones((20, 20, 1), np.float32))
        extra = ["--mask", str(tmp_path / "mask.png")]
    code, _, err = run("dream", str(source), "-o", str(tmp_path / "out.png"), *QUICK, *extra)
    assert code == 2 and err.startswith("deepdream: error: ") and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()
    if problem == "mask-size":
        assert "mask" in err and "20x20" in err and "40x40" in err


def test_models_lists_models_and_layers_with_channels(run) -> None:
    code, out, _ = run("models")
    assert code == 0
    assert "googlenet" in out and "inception4c (512)" in out and "relu4_3 (512)" in out
    assert "tiny" in out
    code, out, _ = run("models", "tiny")
    assert code == 0 and out.startswith("tiny") and "vgg16" not in out


def test_models_says_which_models_cannot_dream_for_want_of_their_weights(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """(Listed like any other, the model failed only when dreamed.)"""
    (tmp_path / "w.pth").write_bytes(b"")
    (tmp_path / "m.toml").write_text('[models.gone]\narch = "vgg16"\nweights = "gone.pth"\n'
                                     '[models.here]\narch = "vgg16"\nweights = "w.pth"\n')
    assert main(["models", "--models-file", str(tmp_path / "m.toml")]) == 0
    out = capsys.readouterr().out
    gone, here = out.split("\ngone  ")[1].split("\nhere  ")
    assert f"weights file {tmp_path / 'gone.pth'} does not exist: this model cannot dream" in gone
    assert "does not exist" not in here


def test_models_name_reads_the_models_files_once(run, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdream.models import registry

    reads, available = [], registry.available
    monkeypatch.setattr(registry, "available", lambda *a: reads.append(a) or available(*a))
    assert run("models", "tiny")[0] == 0 and len(reads) == 1
    code, _, err = run("models", "nothing")
    assert code == 2 and "unknown model 'nothing'" in err and err.count("\n") == 1


def test_help_explains_every_dream_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dream", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, words in (("--model", "network to dream with"), ("--layer", "layer to amplify"),
                          ("--channels", "only amplify these channels"),
                          ("--octaves", "number of scales"), ("--octave-scale", "size ratio"),
                          ("--iterations", "gradient steps per octave"),
                          ("--step", "how far each step moves"), ("--jitter", "random shift"),
                          ("--seed", "the same seed gives the same dream"),
                          ("--tile", "in tiles"), ("--mask", "leave untouched"),
                          ("--device", "where to compute"), ("--models-file", "models file"),
                          ("--max-size", "longer side")):
        assert option in text and words in text, option


def test_progress_bar_draws_one_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    bar(Progress(0.5, 1, 2, 3, 6))
    bar(Progress(1.0, 2, 2, 6, 6))
    bar.done()
    text = stream.getvalue()
    assert "[#####.....]  50%  octave 1/2  step 3/6" in text
    assert "[##########] 100%" in text and text.endswith("\n") and text.count("\n") == 1


def test_ctrl_c_under_the_progress_bar_is_said_on_a_line_of_its_own(
        tmp_path: Path, run, make_image, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a terminal the bar's line is ended before 'interrupted' (or an error) is said;
    it used to follow the bar on the same line."""
    import deepdream.engine

    def interrupted(image, model, settings, mask=None, progress=None):
        progress(Progress(0.4, 1, 1, 2, 5))
        raise KeyboardInterrupt

    write_image(tmp_path / "in.png", make_image(24, 32))
    monkeypatch.setattr(deepdream.engine, "dream", interrupted)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # (pytest's capture is no tty)
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                       *QUICK[:-1])
    assert code == 130 and not (tmp_path / "out.png").exists()
    bar, said = err.rstrip("\n").rsplit("\n", 1)
    assert "step 2/5" in bar and said == "deepdream: interrupted", err
    stream = io.StringIO()
    ProgressBar(stream).done()  # a bar that drew nothing ends no line
    assert stream.getvalue() == ""


def test_the_command_line_in_a_fresh_process_exits_2_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "daemon"),
                                                         str(ROOT / "shared")])}
    result = subprocess.run(
        [sys.executable, "-m", "deepdream", "dream", str(tmp_path / "none.png"), "-o",
         str(tmp_path / "out.png")], capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("none.png: no such file")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.fixture
def no_dream(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Record dreams (where, settings) instead of running them (here or in a daemon)."""
    import deepdream.cli_daemon
    import deepdream.engine

    started: list[tuple[str, dict]] = []

    def here(image: np.ndarray, model: object, settings: object, **_: object) -> np.ndarray:
        started.append(("here", vars(settings)))
        return image

    def via_daemon(endpoint: str, settings: dict, image: np.ndarray, *_: object) -> np.ndarray:
        started.append(("daemon", settings))
        return image

    monkeypatch.setattr(deepdream.engine, "dream", here)
    monkeypatch.setattr(deepdream.cli_daemon, "dream_via_daemon", via_daemon)
    return started


@pytest.mark.parametrize("daemon", [[], ["--daemon", "tcp://127.0.0.1:9"]])
@pytest.mark.parametrize("alias", ["same", "dot", "link"])
def test_output_that_is_the_input_is_refused(
    tmp_path: Path, run, make_image, no_dream: list[tuple[str, dict]], daemon: list[str],
    alias: str,
) -> None:
    source = tmp_path / "in.png"
    write_image(source, make_image(40, 40))
    before = source.read_bytes()
    output = {"same": source, "dot": tmp_path / "." / "in.png", "link": tmp_path / "l.png"}[alias]
    if alias == "link":
        output.symlink_to(source)
    code, _, err = run("dream", str(source), "-o", str(output), *QUICK, *daemon)
    assert code == 2 and err.count("\n") == 1 and "is the input file" in err
    assert no_dream == [] and source.read_bytes() == before


@pytest.mark.parametrize("what", ["mask", "guide image"])
def test_output_that_is_the_mask_or_guide_is_refused_naming_it(
    tmp_path: Path, run, make_image, no_dream: list[tuple[str, dict]], what: str,
) -> None:
    write_image(tmp_path / "in.png", make_image(40, 40))
    write_image(tmp_path / "other.png", make_image(40, 40, seed=3))
    before = (tmp_path / "other.png").read_bytes()
    option = "--mask" if what == "mask" else "--guide"
    code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "other.png"),
                       option, str(tmp_path / "other.png"), *QUICK)
    assert code == 2 and err.count("\n") == 1
    assert f"is the {what} file" in err  # (it said "the input file")
    assert no_dream == [] and (tmp_path / "other.png").read_bytes() == before


@pytest.mark.parametrize("problem", ["no folder", "folder", "alpha to jpeg", "no new files"])
def test_output_problems_are_found_before_the_dream(
    tmp_path: Path, run, make_image, no_dream: list[tuple[str, dict]], problem: str,
) -> None:
    """(A folder that takes no new files, though its permissions would let root write, was
    found only after the dream, in words naming a temporary file.)"""
    source = tmp_path / "in.png"
    write_image(source, make_image(40, 40, 4 if problem == "alpha to jpeg" else 3))
    output = {"no folder": tmp_path / "missing" / "out.png", "folder": tmp_path / "dir.png",
              "alpha to jpeg": tmp_path / "out.jpg",
              "no new files": Path("/sys/deepdream-out.png")}[problem]
    if problem == "folder":
        output.mkdir()
    code, _, err = run("dream", str(source), "-o", str(output), *QUICK)
    assert code == 2 and err.count("\n") == 1 and str(output) in err
    assert ".deepdream-" not in err and no_dream == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["home", "in.png"] + (["dir.png"] if problem == "folder" else []))


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_output_gets_normal_permissions(tmp_path: Path, run, make_image) -> None:
    write_image(tmp_path / "in.png", make_image(40, 40))
    old = os.umask(0o022)
    try:
        code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "new.png"),
                           *QUICK)
        assert code == 0, err
        assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.png"
        kept.write_bytes(b"old")
        kept.chmod(0o640)
        code, _, err = run("dream", str(tmp_path / "in.png"), "-o", str(kept), *QUICK)
        assert code == 0, err
        assert kept.stat().st_mode & 0o777 == 0o640 and read_image(kept)[0].shape[:2] == (40, 40)
    finally:
        os.umask(old)


def test_a_photos_colour_profile_stays_with_its_dream(tmp_path: Path, run, make_image) -> None:
    # e.g. a phone's Display P3 photo: without its profile the dream's colours would shift
    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    pixels = np.rint(make_image(40, 40) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.jpg", quality=95, icc_profile=profile)
    code, _, err = run("dream", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "out.png"),
                       *QUICK)
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as out:
        assert out.info.get("icc_profile") == profile
