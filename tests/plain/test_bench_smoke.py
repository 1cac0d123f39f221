"""bench/bench_dream.py on a tiny photo: every line is JSON, the engine and reference rows
carry the figures RESULTS.md quotes, and the reference loop really dreams."""

from __future__ import annotations

import json

import pytest
import torch
from deepdream.models import registry

from bench import bench_dream
from bench.reference_loop import reference_dream


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
    model = registry.load("tiny", "cpu", "tests/support/tiny_models.toml", accelerate=False)
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    out = reference_dream(x, model, "inception4c", octaves=2, steps=2)
    assert out.shape == x.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert (out - x).abs().max() > 0.005
