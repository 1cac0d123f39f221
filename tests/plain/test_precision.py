"""Reduced precision (bf16) keeps the dream: a bf16 dream lands as close to float32's as
float32's own dream of the same photo rounded to 8 bits does, with the layer raised as
much; and the precision setting is a one-line error when it is wrong.

Dreams are chaotic (a change far below one 8-bit level moves the finished detail by tens
of percent), so "the same result" means: no farther from float32 than that floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream.cli import main
from deepdream.engine import DreamSettings, dream
from deepdream.models import registry
from PIL import Image

from tests.support import MATERIAL, TINY_MODELS

MODELS = str(TINY_MODELS)
WEIGHTS = MATERIAL / "models" / "vgg16-hed-features.pth"
PHOTO = MATERIAL / "images" / "chelsea.png"
#: the bf16 dream may be this much farther from float32's than the 8-bit floor
#: (measured 0.95-1.08x on these models)
MARGIN = 1.25


def _photo(make_image) -> np.ndarray:
    if not PHOTO.is_file():
        return make_image(96, 128)
    photo = Image.open(PHOTO).convert("RGB").resize((128, 96), Image.Resampling.LANCZOS)
    return np.asarray(photo, dtype=np.float32) / 255


def _gain(model, image: np.ndarray, before: np.ndarray, layer: str) -> float:
    with torch.no_grad():
        def ms(a: np.ndarray) -> float:
            x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
            return model(x, [layer])[layer].float().square().mean().item()
        return ms(image) / ms(before)


def _models_file(tmp_path: Path, name: str) -> str:
    if name == "tiny":
        return MODELS
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.hed]\narch = "vgg16"\nweights = "{WEIGHTS.as_posix()}"\n'
                    'preprocess = "caffe"\n')
    return str(toml)


@pytest.mark.parametrize(("name", "layer"), [
    ("tiny", "inception4c"),
    pytest.param("hed", "relu4_3", marks=[
        pytest.mark.weights,
        pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"no trained weights at {WEIGHTS}")]),
])
def test_bf16_dream_stays_within_the_8bit_floor(tmp_path: Path, make_image, name: str,
                                                layer: str) -> None:
    model = registry.load(name, "cpu", _models_file(tmp_path, name))
    image = _photo(make_image)
    settings = DreamSettings.from_dict({"model": name, "layer": layer, "octaves": 2,
                                        "iterations": 6, "seed": 0, "tile": 4096})
    model.compute_dtype = None
    exact = dream(image, model, settings)
    rounded = np.clip(image + (np.random.default_rng(0).random(image.shape, np.float32) - 0.5)
                      / 255, 0, 1)
    floor_run = dream(rounded, model, settings)
    model.compute_dtype = torch.bfloat16
    half = dream(image, model, settings)

    detail = exact - image
    def off(out: np.ndarray, source: np.ndarray) -> float:
        return float(np.linalg.norm((out - source) - detail) / np.linalg.norm(detail))

    floor, err = off(floor_run, rounded), off(half, image)
    assert 0 < err <= MARGIN * floor, (err, floor)
    model.compute_dtype = None
    want = _gain(model, exact, image, layer)
    assert want > 1.5  # the dream did raise the layer
    assert abs(_gain(model, half, image, layer) - want) <= 0.05 * want


def test_precision_option_and_variable_are_checked(tmp_path: Path, tiny_models_file: Path,
                                                   make_image, monkeypatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from deepdream.imageio import write_image

    write_image(tmp_path / "in.png", make_image(40, 40))
    argv = ["dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model",
            "tiny", "--iterations", "1", "--octaves", "1", "--quiet", "--models-file",
            str(tiny_models_file)]
    monkeypatch.setenv("DEEPDREAM_PRECISION", "quarter")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown precision 'quarter'" in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(SystemExit) as info:  # argparse's own one-line usage error
        main([*argv, "--precision", "quarter"])
    assert info.value.code == 2
    assert main([*argv, "--precision", "float32"]) == 0  # the option wins over the variable
    assert (tmp_path / "out.png").is_file()


def test_precision_with_daemon_is_refused_and_aliases_are_taken(
        tmp_path: Path, tiny_models_file: Path, make_image, monkeypatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from deepdream.imageio import write_image

    monkeypatch.setenv("DEEPDREAM_PRECISION", "auto")  # restored after the test
    write_image(tmp_path / "in.png", make_image(40, 40))
    argv = ["dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model",
            "tiny", "--iterations", "1", "--octaves", "1", "--quiet", "--models-file",
            str(tiny_models_file)]
    assert main([*argv, "--precision", "fp32", "--daemon", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "a daemon has its own" in err and err.count("\n") == 1
    assert main([*argv, "--device", "cpu", "--daemon", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--device applies to dreams in this process" in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()
    assert main([*argv, "--precision", "fp32"]) == 0


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("DEEPDREAM_PRECISION", "quarter", "unknown precision 'quarter'"),
    ("DEEPDREAM_COMPILE", "yes", "unknown compile mode 'yes'"),
    ("DEEPDREAM_THREADS", "two", "DEEPDREAM_THREADS must be a whole number")])
def test_serve_with_a_bad_speed_setting_says_why_in_its_log(
        tmp_path: Path, variable: str, value: str, says: str) -> None:
    """A plug-in starts the daemon with no terminal: the reason must be in the log file."""
    import os
    import subprocess
    import sys

    log = tmp_path / "d.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPDREAM_")}
    run = subprocess.run([sys.executable, "-m", "deepdream", "serve", "--port", "9",
                          "--log-file", str(log)], capture_output=True, text=True,
                         timeout=120, env={**env, variable: value,
                                           "PYTHONPATH": "daemon:shared"})
    assert run.returncode == 1
    assert says in run.stderr
    assert f"ERROR cannot start: {says}" in log.read_text()


@pytest.mark.parametrize(("value", "mode"), [("", "auto"), ("Auto", "auto"), ("0", None),
                                              ("off", None), ("1", "now"), ("NOW", "now"),
                                              (" ahead ", "ahead")])
def test_compile_setting_takes_what_serve_compile_takes(
        monkeypatch: pytest.MonkeyPatch, value: str, mode: str | None) -> None:
    from deepdream.precision import compile_setting

    monkeypatch.setenv("DEEPDREAM_COMPILE", value)
    assert compile_setting() == mode
    assert compile_setting("ahead") == "ahead"  # (the command line's, over the variable)


def test_a_dream_with_a_mistyped_compile_setting_is_one_line(
        tmp_path: Path, tiny_models_file: Path, make_image, monkeypatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from deepdream.imageio import write_image

    write_image(tmp_path / "in.png", make_image(40, 40))
    monkeypatch.setenv("DEEPDREAM_COMPILE", "ahaed")
    assert main(["dream", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                 "--model", "tiny", "--quiet", "--models-file", str(tiny_models_file)]) == 2
    err = capsys.readouterr().err
    assert "unknown compile mode 'ahaed'" in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(("devices", "capability", "triton", "mode"), [
    (["cuda:0"], (9, 0), True, "ahead"), (["cuda:0"], (9, 0), False, None),
    (["cuda:0"], (6, 1), True, None), (["cpu"], (9, 0), True, None),
    (["cpu", "cuda:0"], (8, 6), True, "ahead")])
def test_a_daemon_compiles_ahead_by_default_only_on_an_nvidia_gpu_with_triton(
        monkeypatch: pytest.MonkeyPatch, devices: list[str], capability: tuple[int, int],
        triton: bool, mode: str | None) -> None:
    # No CUDA GPU here: its capability (and Triton's presence) is mocked; what compiling
    # ahead does on one is checked by bench/gpu_check.sh (AHEAD=1) on a lent GPU.  A daemon
    # told --device cpu on a machine with a GPU does not compile (nothing would use it).
    import importlib.util

    import torch
    from deepdream.cli_daemon import compile_mode

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device: capability)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (find_spec("os") if triton else None)
                        if name == "triton" else find_spec(name, *a))
    monkeypatch.delenv("DEEPDREAM_COMPILE", raising=False)
    chosen = [torch.device(d) for d in devices]
    assert compile_mode(None, chosen)[0] == mode
    assert compile_mode("off", chosen) == (None, "--compile off")  # the artist's word wins
    monkeypatch.setattr(torch.version, "hip", "6.2")  # ROCm: untried, so not by default
    assert compile_mode(None, chosen)[0] is None
    monkeypatch.setenv("DEEPDREAM_COMPILE", "0")
    assert compile_mode(None, chosen)[0] is None
    monkeypatch.setenv("DEEPDREAM_COMPILE", "now")
    assert compile_mode(None, chosen) == ("now", "DEEPDREAM_COMPILE")
