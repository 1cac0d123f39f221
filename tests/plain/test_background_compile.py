"""Background compiling of octave steps (engine/compiler.py, fastpath's compile modes).

torch.compile and CUDA graphs need a GPU (bench/check_fastpath_cuda.py and
``bench_dream.py --background`` run them there); here the graphs are faked and the compile
is a recorded stand-in, so what is tested is the decision logic a user's tries go through:
the first try of a size runs plain and queues the compile, a later try of a compiled size
steps the compiled model, failures keep the plain path, and the modes and their names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, dream, fastpath
from deepdream.engine.compiler import FAILED, QUEUED, READY, BackgroundCompiler
from deepdream.models import registry
from deepdream.precision import PrecisionError, compile_setting

from tests.support import TINY_MODELS


def test_compiler_runs_each_job_once_in_order_and_reports_its_state() -> None:
    compiler = BackgroundCompiler()
    ran: list[str] = []
    gate = threading.Event()
    compiler.request("a", lambda: (gate.wait(10), ran.append("a")))
    compiler.request("b", lambda: ran.append("b"))
    compiler.request("a", lambda: ran.append("a again"))  # asked before: not queued twice
    assert compiler.state("a") == QUEUED and compiler.state("c") is None
    gate.set()
    assert compiler.wait_idle(10)
    assert ran == ["a", "b"]
    assert compiler.state("a") == READY == compiler.state("b")


def test_a_compile_that_fails_turns_background_compiling_off_but_memory_does_not() -> None:
    compiler = BackgroundCompiler()

    def oom() -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    compiler.request("big", oom)
    assert compiler.wait_idle(10)
    assert compiler.state("big") == FAILED and not compiler.unavailable

    def broken() -> None:
        raise RuntimeError("Cannot find a working triton installation\nmore detail")

    compiler.request("x", broken)
    assert compiler.wait_idle(10)
    assert compiler.state("x") == FAILED
    assert compiler.unavailable == "Cannot find a working triton installation"
    compiler.request("y", lambda: None)  # off for the process now: not even queued
    assert compiler.state("y") is None


def test_forgotten_keys_lose_their_state() -> None:
    compiler = BackgroundCompiler()
    compiler.request(("model1", 1), lambda: None)
    compiler.request(("model2", 1), lambda: None)
    assert compiler.wait_idle(10)
    compiler.forget(lambda key: key[0] == "model1")
    assert compiler.state(("model1", 1)) is None and compiler.state(("model2", 1)) == READY


@pytest.mark.parametrize(("value", "mode"), [(None, "background"), ("", "background"),
                                             ("1", "wait"), ("WAIT", "wait"), ("0", "off"),
                                             ("off", "off"), ("background", "background")])
def test_compile_mode_names(monkeypatch, value, mode) -> None:
    monkeypatch.delenv("DEEPDREAM_COMPILE", raising=False)
    if value is not None:
        monkeypatch.setenv("DEEPDREAM_COMPILE", value)
    assert compile_setting() == mode
    with pytest.raises(PrecisionError, match="unknown compile mode 'sometimes'"):
        compile_setting("sometimes")


def test_serve_with_a_bad_compile_mode_says_why(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    run = subprocess.run([sys.executable, "-m", "deepdream", "serve", "--port", "9",
                          "--log-file", str(log), "--compile", "sometimes"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": "daemon:shared"})
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "unknown compile mode 'sometimes'" in run.stderr
    assert "ERROR cannot start: unknown compile mode" in log.read_text()


# --- the fast path's choice, graphs faked (no GPU here) -----------------------------------


class _Graph:
    def __init__(self, model, objective, step_size, compiled) -> None:
        self.args, self.compiled = (model, objective, step_size), compiled

    def run(self, x: torch.Tensor, offsets) -> torch.Tensor:
        model, objective, step_size = self.args
        return fastpath.run_octave_eager(x, model, objective, offsets, step_size)


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch):
    """(model, graphs made, compiles run): captures faked, bf16 as the compute dtype (the
    compiled step needs a reduced one), compile_step recorded instead of run."""
    model = registry.load("tiny", "cpu", str(TINY_MODELS))
    made: list[_Graph] = []
    compiles: list[tuple[int, int]] = []
    fail_compiled = {"on": False}

    def octave_graph(model, objective, shape, steps, step_size, dtype, key, compiled=False,
                     tile=None):
        if compiled and fail_compiled["on"]:
            return None
        made.append(_Graph(model, objective, step_size, compiled))
        return made[-1]

    def compile_step(model, objective, shape, step_size, dtype, steps=2) -> None:
        compiles.append(tuple(shape[-2:]))

    monkeypatch.setattr(fastpath, "captures", lambda device: True)
    monkeypatch.setattr(fastpath, "octave_graph", octave_graph)
    monkeypatch.setattr(fastpath, "compile_step", compile_step)
    monkeypatch.setattr(fastpath, "compute_dtype", lambda model, device: torch.bfloat16)
    monkeypatch.setattr(fastpath, "background", BackgroundCompiler())
    yield model, made, compiles, fail_compiled
    fastpath.COMPILE = None


SETTINGS = DreamSettings.from_dict({"model": "tiny", "octaves": 2, "iterations": 2,
                                    "seed": 3})
IMAGE = np.random.default_rng(8).random((60, 80, 3), dtype=np.float32)


def test_first_try_runs_plain_and_queues_each_size_later_tries_step_compiled(setup) -> None:
    model, made, compiles, _ = setup
    fastpath.COMPILE = "background"
    first = dream(IMAGE, model, SETTINGS)
    assert [g.compiled for g in made] == [False, False]
    assert fastpath.background.wait_idle(10)
    assert sorted(compiles) == [(43, 57), (60, 80)]  # both octave sizes, once each
    made.clear()
    again = dream(IMAGE, model, SETTINGS)
    assert [g.compiled for g in made] == [True, True]
    assert len(compiles) == 2  # nothing compiled twice
    np.testing.assert_allclose(again, first, atol=1e-5)  # same seed, same dream


def test_a_compiled_step_that_will_not_capture_runs_the_plain_graph(setup) -> None:
    model, made, compiles, fail_compiled = setup
    fastpath.COMPILE = "wait"  # compiled from the first try
    fail_compiled["on"] = True
    dream(IMAGE, model, SETTINGS)
    assert [g.compiled for g in made] == [False, False] and compiles == []


@pytest.mark.parametrize(("mode", "compiled"), [("wait", True), ("off", False)])
def test_wait_compiles_at_once_and_off_never(setup, mode, compiled) -> None:
    model, made, compiles, _ = setup
    fastpath.COMPILE = mode
    dream(IMAGE, model, SETTINGS)
    assert [g.compiled for g in made] == [compiled, compiled]
    assert compiles == []  # no background work in either
