"""Compiling ahead (DEEPDREAM_COMPILE=ahead) on the CPU: a real child process fills
inductor's cache so that this process's compile of the same step loads it, and the
wish -> child -> capture flow between jobs.  The capture of a CUDA graph needs a GPU: here a
stand-in records what would be captured (bench/check_fastpath_cuda.py's ``ahead`` check
runs the real one)."""

from __future__ import annotations

import gc
import json
import logging
import re
import sys
import time

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, compile_ahead, dream, fastpath
from deepdream.engine.objectives import layers_l2
from deepdream.models import registry

from tests.support import TINY_MODELS
from tests.support.graphs import EagerGraph

SIZE = (48, 64)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return registry.load("tiny", "cpu", str(TINY_MODELS))


@pytest.fixture(autouse=True)
def clean() -> None:
    yield
    compile_ahead.reset()
    fastpath.clear_graphs()


def _octave(model: torch.nn.Module, dtype: torch.dtype) -> compile_ahead.Octave:
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    return compile_ahead.Octave(objective, torch.Size((1, 3, *SIZE)), 2, 0.01, dtype, "key")


def _settle(device: torch.device, deadline_s: float = 600) -> None:
    """Tick as an idle worker would until compile_ahead has nothing left to do."""
    end = time.monotonic() + deadline_s
    while compile_ahead.busy():
        assert time.monotonic() < end, "compile_ahead never settled"
        compile_ahead.tick(device, lambda: False)
        time.sleep(0.05)


def test_a_child_fills_the_cache_so_this_process_compiles_the_step_from_it(
        model: torch.nn.Module, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child loads the same model (same fingerprint) and compiles; this process's own
    compile of the same step (the model, and the step's own compiled ops around it) then
    finds every kernel in the cache (no inductor misses), and steps as the plain step does."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    octave = _octave(model, torch.float32)
    compile_ahead.wish("k", model, octave)
    # a job is waiting the whole time: the worker starts and collects the child only
    end = time.monotonic() + 900
    while compile_ahead._wishes["k"].state in ("waiting", "compiling"):
        assert time.monotonic() < end
        compile_ahead.tick(model.device, lambda: True)
        time.sleep(0.2)
    assert compile_ahead._wishes["k"].state == "ready"

    torch._dynamo.reset()
    misses = compile_ahead._inductor_count("fxgraph_cache_miss")
    hits = compile_ahead._inductor_count("fxgraph_cache_hit")
    compiled = fastpath.compiled_model(model, torch.float32)
    x = torch.rand(1, 3, *SIZE)
    before = x.clone()
    fastpath.dream_step(x, torch.tensor([3, -2]), compiled, octave.objective, 0.05, None,
                        torch.float32, compiled_ops=True)  # (as OctaveGraph steps it)
    assert compile_ahead._inductor_count("fxgraph_cache_miss") == misses
    assert compile_ahead._inductor_count("fxgraph_cache_hit") > hits
    # and the loaded step is the model's step
    want = before.clone()
    fastpath.dream_step(want, torch.tensor([3, -2]), model, octave.objective, 0.05, None)
    assert (x - before).abs().max() > 1e-3
    assert torch.allclose(x, want, atol=1e-4)


@pytest.fixture
def ahead(monkeypatch: pytest.MonkeyPatch) -> list[EagerGraph]:
    made: list[EagerGraph] = []

    def graph(*args, **kw) -> EagerGraph:
        made.append(EagerGraph(*args, **kw))
        return made[-1]

    monkeypatch.setattr(fastpath, "captures", lambda device: True)
    monkeypatch.setattr(fastpath, "OctaveGraph", graph)
    monkeypatch.setattr(fastpath, "COMPILE_AHEAD", True)
    monkeypatch.setattr(fastpath, "compute_dtype", lambda model, device: torch.bfloat16)
    return made


def _fake_child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(compile_ahead, "child_command",
                        lambda spec: [sys.executable, "-c", code, json.dumps(spec)])


SETTINGS = DreamSettings.from_dict({"model": "tiny", "octaves": 2, "iterations": 2, "seed": 4})


def test_a_wished_size_is_compiled_by_a_child_then_captured_between_jobs(
        model: torch.nn.Module, ahead: list[EagerGraph],
        monkeypatch: pytest.MonkeyPatch) -> None:
    said = json.dumps({"fingerprint": compile_ahead.fingerprint(model), "hits": 0,
                       "misses": 0})
    # the child: checks the spec it is handed, answers like compile_sizes
    _fake_child(monkeypatch, "import json, sys; s = json.loads(sys.argv[1]); "
                "assert s['model'] == 'tiny' and s['dtype'] == 'bfloat16', s; "
                "assert [x[0][2:] for x in s['sizes']] == [[34, 46], [48, 64]], s; "
                f"print({said!r})")
    image = np.random.default_rng(1).random((*SIZE, 3), dtype=np.float32)
    first = dream(image, model, SETTINGS)
    assert [g.compiled for g in ahead] == [False, False]  # the plain graphs serve at once
    assert compile_ahead.busy()
    _settle(model.device)
    assert [g.compiled for g in ahead] == [False, False, True, True]  # captured, between jobs
    second = dream(image, model, SETTINGS)
    assert [g.runs for g in ahead] == [[2]] * 4  # the second job replayed the compiled
    assert np.array_equal(first, second)  # (the stand-ins step the same model)
    assert not compile_ahead.busy()
    dream(image, model, SETTINGS)  # nothing new is wished
    assert not compile_ahead.busy() and len(ahead) == 4


@pytest.mark.parametrize(("code", "says"), [
    ("print('{\"fingerprint\": \"0000\"}')", "its model differs from the daemon's"),
    ("import sys; sys.exit('RuntimeError: no C compiler')", "RuntimeError: no C compiler"),
    ("print('[1]')", "exit 0")])
def test_a_failed_child_leaves_the_plain_graphs(
        model: torch.nn.Module, ahead: list[EagerGraph], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, code: str, says: str) -> None:
    _fake_child(monkeypatch, code)
    image = np.random.default_rng(2).random((*SIZE, 3), dtype=np.float32)
    with caplog.at_level(logging.INFO, "deepdream.engine"):
        dream(image, model, SETTINGS)
        _settle(model.device)
        dream(image, model, SETTINGS)
    assert [g.compiled for g in ahead] == [False, False]
    assert [g.runs for g in ahead] == [[2, 2]] * 2  # both jobs: the plain graphs
    assert f"compiling ahead failed ({says})" in caplog.text
    assert not compile_ahead.busy()


def test_after_failures_in_a_row_it_turns_itself_off(
        model: torch.nn.Module, ahead: list[EagerGraph], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _fake_child(monkeypatch, "import sys; sys.exit(3)")
    monkeypatch.setattr(compile_ahead, "MAX_FAILURES", 2)
    seen = []
    with caplog.at_level(logging.WARNING, "deepdream.engine"):
        for size in ((48, 64), (40, 56), (36, 52)):
            image = np.random.default_rng(6).random((*size, 3), dtype=np.float32)
            dream(image, model, SETTINGS)
            _settle(model.device)
            seen.append(compile_ahead.states())
    assert "compiling ahead is off: 2 compiles failed in a row" in caplog.text
    assert set(seen[1]) == {"failed"} and seen[2] == seen[1]  # the third is not wished
    assert not any(g.compiled for g in ahead)


def test_an_evicted_compiled_graph_is_captured_again_from_the_cache(
        model: torch.nn.Module, ahead: list[EagerGraph],
        monkeypatch: pytest.MonkeyPatch) -> None:
    said = json.dumps({"fingerprint": compile_ahead.fingerprint(model)})
    _fake_child(monkeypatch, f"print({said!r})")
    image = np.random.default_rng(7).random((*SIZE, 3), dtype=np.float32)
    dream(image, model, SETTINGS)
    _settle(model.device)
    assert compile_ahead.states() == {"done": 2}
    fastpath.clear_graphs()  # (as the graph cache's LRU or an out-of-memory retry drops them)
    _fake_child(monkeypatch, "import sys; sys.exit('no second child was wanted')")
    dream(image, model, SETTINGS)
    assert compile_ahead.states() == {"ready": 2} and compile_ahead._child is None
    _settle(model.device)
    assert [g.compiled for g in ahead] == [False, False, True, True, False, False, True, True]


def test_a_size_whose_capture_keeps_failing_is_given_up_after_two(
        model: torch.nn.Module, ahead: list[EagerGraph],
        monkeypatch: pytest.MonkeyPatch) -> None:
    said = json.dumps({"fingerprint": compile_ahead.fingerprint(model)})
    _fake_child(monkeypatch, f"print({said!r})")

    def out_of_memory(*args, **kw) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")  # (not remembered: tried again)

    monkeypatch.setattr(fastpath, "OctaveGraph", out_of_memory)
    image = np.random.default_rng(9).random((*SIZE, 3), dtype=np.float32)
    for _ in range(4):
        dream(image, model, SETTINGS)  # (no graph: the engine's eager loop dreams)
        _settle(model.device)
    assert compile_ahead.states() == {"failed": 2}


def test_the_wishes_of_a_model_that_is_gone_are_forgotten(
        ahead: list[EagerGraph], monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import time; time.sleep(600)")
    gone = registry.load("tiny", "cpu", str(TINY_MODELS))
    dream(np.random.default_rng(8).random((*SIZE, 3), dtype=np.float32), gone, SETTINGS)
    assert compile_ahead.states() == {"waiting": 2}
    fastpath.clear_graphs()
    ahead.clear()  # (the stand-in graphs hold their model; captured CUDA graphs do not)
    del gone
    gc.collect()
    compile_ahead.tick(torch.device("cpu"), lambda: False)
    assert compile_ahead.states() == {}


def test_no_capture_while_a_job_waits_and_stop_kills_the_child(
        model: torch.nn.Module, ahead: list[EagerGraph],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import time; time.sleep(600)")
    image = np.random.default_rng(3).random((*SIZE, 3), dtype=np.float32)
    dream(image, model, SETTINGS)
    compile_ahead.tick(model.device, lambda: True)
    child = compile_ahead._child
    assert child is not None and child.proc.poll() is None
    assert {w.state for w in compile_ahead._wishes.values()} == {"compiling"}
    compile_ahead.stop()
    assert child.proc.poll() is not None and not compile_ahead.busy()
    assert len(ahead) == 2
    dream(image, model, SETTINGS)  # a job still running at shutdown wishes in vain
    compile_ahead.tick(model.device, lambda: False)
    assert not compile_ahead.busy() and compile_ahead._child is None


def test_a_workers_plain_cuda_device_is_its_models_first_gpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a worker's device is "cuda" (pick_device), its model's tensors are on "cuda:0": the
    # captures between jobs must match them (no GPU here: the current device is stubbed)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert compile_ahead._indexed("cuda") == torch.device("cuda:0")
    assert compile_ahead._indexed(torch.device("cuda:1")) == torch.device("cuda:1")
    assert compile_ahead._indexed("cpu") == torch.device("cpu")


def test_old_done_wishes_are_forgotten_failed_ones_kept(
        model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_ahead, "KEPT_WISHES", 3)
    octave = _octave(model, torch.bfloat16)
    for key, state in (("a", "failed"), ("b", "done"), ("c", "done"), ("d", "waiting")):
        compile_ahead.wish(key, model, octave)
        compile_ahead._wishes[key].state = state
    compile_ahead.wish("e", model, octave)
    assert list(compile_ahead._wishes) == ["a", "c", "d", "e"]
    compile_ahead.wish("a", model, octave)  # a failed size is not tried again
    assert compile_ahead._wishes["a"].state == "failed"


def test_a_child_that_never_finishes_is_killed_after_its_time(
        model: torch.nn.Module, ahead: list[EagerGraph], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _fake_child(monkeypatch, "import time; time.sleep(600)")
    monkeypatch.setattr(compile_ahead, "CHILD_TIMEOUT_S", 0.5)
    image = np.random.default_rng(5).random((*SIZE, 3), dtype=np.float32)
    dream(image, model, SETTINGS)
    compile_ahead.tick(model.device, lambda: False)
    child = compile_ahead._child
    assert child is not None
    with caplog.at_level(logging.WARNING, "deepdream.engine"):
        _settle(model.device, deadline_s=30)
    assert child.proc.returncode is not None  # killed, and waited for
    assert compile_ahead.states() == {"failed": 2}
    assert re.search(r"compiling ahead failed \(no result after [12] s\)", caplog.text)
    assert compile_ahead._duration(900) == "15 minutes"  # (the real limit)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; a POSIX watch of the parent")
def test_a_child_whose_daemon_is_killed_outright_ends_too(
        model: torch.nn.Module, tmp_path) -> None:
    """SIGKILL or the OOM killer leaves the daemon no time to stop its child, which compiled
    on for up to an hour (holding the GPU) beside the next daemon's own."""
    import os
    import signal
    import subprocess

    spec = compile_ahead.child_spec(model, model.device, torch.float32,
                                    [([1, 3, *SIZE], [model.spec.default_layer])])
    env = {**compile_ahead._child_env(), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}  # (cold)
    daemon = subprocess.Popen(  # a stand-in daemon: starts the child as _start does
        [sys.executable, "-c",
         "import os, subprocess, sys, time\n"
         f"env = dict(os.environ, {compile_ahead.PARENT_VAR}=str(os.getpid()))\n"
         f"child = subprocess.Popen({compile_ahead.child_command(spec)!r}, env=env,\n"
         "                         stdout=subprocess.DEVNULL, start_new_session=True)\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(600)\n"], env=env, stdout=subprocess.PIPE, text=True)
    child = int(daemon.stdout.readline())

    def running() -> bool:
        try:
            with open(f"/proc/{child}/stat") as f:
                return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    try:
        time.sleep(1.0)
        assert running()
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        end = time.monotonic() + 60
        while running() and time.monotonic() < end:
            time.sleep(0.2)
        assert not running(), "the child compiled on without its daemon"
    finally:
        if running():
            os.kill(child, signal.SIGKILL)
