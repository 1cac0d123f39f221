"""bench/bench_dream.py on a tiny photo: every line is JSON, the engine and reference rows
carry the figures RESULTS.md quotes, and the reference loop really dreams."""

from __future__ import annotations

import json

import pytest
import torch
from deepdream.models import registry

from bench import bench_dream
from bench.reference_loop import reference_dream
from tests.support import TINY_MODELS


def test_quick_bench_reports_every_figure(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.jsonl"
    threads = torch.get_num_threads()
    try:
        assert bench_dream.main(["--quick", "--size", "96x64", "--no-daemon", "--repeats", "1",
                                 "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    modes = {r["mode"]: r for r in rows}
    assert {"matmul", "reference", "engine"} <= set(modes), rows
    assert modes["matmul"]["bf16_tflops"] > 0
    for mode in ("reference", "engine"):
        r = modes[mode]
        assert r["seconds"] > 0 and r["mpix_steps_per_s"] > 0 and r["peak_host_mb"] > 0
        # the FLOP counter on meta tensors: GoogLeNet to inception4c is ~90 GFLOP/Mpx/step
        assert 50 < r["gflop_per_step_at_1mpix"] < 150
    assert modes["engine"]["speedup_vs_reference"] > 0
    assert any(line.startswith("case") for line in capsys.readouterr().out.splitlines())


def test_reference_loop_dreams_and_keeps_the_range() -> None:
    model = registry.load("tiny", "cpu", TINY_MODELS, accelerate=False)
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    out = reference_dream(x, model, "inception4c", octaves=2, steps=2)
    assert out.shape == x.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert (out - x).abs().max() > 0.005


def test_cuda_check_script_runs_its_own_code_on_the_cpu(tmp_path) -> None:
    """The GPU session's one call must not be lost to a mistake in the check script: its
    dry run on the CPU runs every check; those needing a CUDA graph fail as such (there is
    no GPU here, and the script says so), the rest pass."""
    import os
    import subprocess
    import sys

    out = tmp_path / "check.jsonl"
    subprocess.run([sys.executable, "bench/check_fastpath_cuda.py", "--dry-run-cpu", "--out",
                    str(out)], capture_output=True, text=True, timeout=600,
                   env={**os.environ, "PYTHONPATH": "daemon:shared"}, check=False)
    rows = {r["check"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"roll", "graph1", "graph10", "reuse", "tiled", "bf16", "engine",
                         "warm_up", "pixels", "compile"}
    for name in ("graph1", "graph10", "reuse", "tiled", "compile"):
        assert "capture failed" in rows[name]["exception"] or (
            name == "compile" and "no reduced precision" in rows[name]["exception"]), rows[name]
    for name in ("roll", "engine", "warm_up", "pixels"):
        assert rows[name]["ok"], rows[name]
    # bf16: the daemon's precision rule, where this CPU has native bf16 to check
    assert rows["bf16"]["ok"] or "no reduced precision" in rows["bf16"]["exception"]


def test_the_fused_conv_relu_experiment_fuses_every_pair_and_keeps_the_gradient(tmp_path) -> None:
    """The GPU probe's fused step (bench/fused_conv_relu.py) must be the engine's step but
    for rounding before a GPU session measures it: off CUDA its forward is the unfused pair,
    so this checks its fusing and its input-only backward (cuDNN's fused call needs a GPU)."""
    from bench.probe_gpu_step import fused_error

    models = tmp_path / "m.toml"
    models.write_text(bench_dream.MODELS_TOML)
    got = fused_error("googlenet", torch.device("cpu"), str(models), (64, 96))
    assert got["fused_convs"] == 57  # every BasicConv2d of torchvision's GoogLeNet
    assert got["fused_vs_engine"] < 1e-6
    assert 0 < got["engine_bf16_vs_fp32"] < 1


def test_the_concurrent_branches_experiment_keeps_the_network(tmp_path) -> None:
    """The probe's inception modules with branches on side streams: off CUDA they run in
    turn (no streams here), so this checks the rewiring: all nine replaced, same output."""
    import copy

    from bench.concurrent_branches import concurrent

    models = tmp_path / "m.toml"
    models.write_text(bench_dream.MODELS_TOML)
    model = registry.load("bench_googlenet", "cpu", str(models), accelerate=False)
    rewired = copy.deepcopy(model)
    assert concurrent(rewired) == 9
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    layer = "inception5b"
    assert torch.equal(rewired(x, [layer])[layer], model(x, [layer])[layer])


@pytest.mark.parametrize(("kernel", "padding", "size"),
                         [(7, 3, (96, 128)), (7, 3, (41, 53)), (3, 0, (45, 45)), (4, 1, (32, 32))])
def test_the_space_to_depth_stem_experiment_is_the_same_convolution(kernel, padding,
                                                                    size) -> None:
    """The probe's rewritten stem must compute the stride-2 conv it replaces (odd sizes
    included), and the same input gradient, before a GPU session times it."""
    from bench.s2d_stem import SpaceToDepthConv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, kernel, 2, padding).requires_grad_(False)
    x = torch.rand(1, 3, *size, requires_grad=True)
    grads = []
    for module in (conv, SpaceToDepthConv(conv)):
        y = module(x)
        grads.append((y, *torch.autograd.grad(y.square().sum(), x)))
    (y0, g0), (y1, g1) = grads
    assert y0.shape == y1.shape
    assert torch.allclose(y0, y1, atol=1e-5) and torch.allclose(g0, g1, rtol=1e-4, atol=1e-5)
