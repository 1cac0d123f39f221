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


def test_quick_bench_times_the_warm_daemon_end_to_end(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The e2e row: a real daemon started by the benchmark, its client submit -> result; and
    the first tries in a fresh and in a restarted daemon (rows the table shows too)."""
    out = tmp_path / "b.jsonl"
    threads = torch.get_num_threads()
    try:
        assert bench_dream.main(["--quick", "--size", "96x64", "--repeats", "1",
                                 "--first-tries", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert not [r for r in rows if "error" in r], rows
    modes = {r["mode"]: r for r in rows}
    e2e = modes["e2e"]
    assert e2e["seconds"] > 0 and e2e["speedup_vs_reference"] > 0
    assert e2e["note"].startswith("client submit -> result")
    assert e2e["note"].endswith("DEEPDREAM_COMPILE=0")  # the uncompiled figure, on a GPU too
    for mode in ("e2e_first_try", "e2e_first_after_restart"):
        assert modes[mode]["seconds"] > 0 and modes[mode]["size"] == "96x64"
        # timed once the daemon logged its preload (a restarted one: its own log lines)
        assert [line for line in modes[mode]["warm_up_log"] if "preloaded" in line]
    table = capsys.readouterr().out.splitlines()
    assert any(line.split()[1:2] == ["e2e_first_after_restart"] for line in table)


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
                         "warm_up", "pixels", "rewrites", "compile", "ahead"}
    assert "0 compiled graphs captured" in rows["ahead"]["exception"]  # (CUDA graphs only)
    for name in ("graph1", "graph10", "reuse", "tiled", "compile"):
        assert "capture failed" in rows[name]["exception"] or (
            name == "compile" and "no reduced precision" in rows[name]["exception"]), rows[name]
    for name in ("roll", "engine", "warm_up", "pixels"):
        assert rows[name]["ok"], rows[name]
    # bf16: the daemon's precision rule, where this CPU has native bf16 to check; rewrites:
    # the rewritten models' bf16 steps (their plain forms here)
    for name in ("bf16", "rewrites"):
        assert rows[name]["ok"] or "no reduced precision" in rows[name]["exception"], rows[name]




def test_the_ahead_row_waits_for_the_daemons_compiled_graphs(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench_dream --ahead (a GPU run) times its e2e_ahead row once the daemon's log says
    it captured every octave size's compiled graph; here the log is written by hand."""
    import threading
    import time

    log = tmp_path / "daemon.log"
    log.write_text("compiled steps ahead on (--compile ahead)\n"
                   "compiling 2 octave sizes of bench_googlenet ahead, in process 7\n")

    def daemon() -> None:
        time.sleep(1.5)
        with open(log, "a") as f:
            f.write("compiled ahead: 2 sizes in 70 s (cache: 0 hits, 12 misses)\n"
                    "compiled graph for (1, 3, 548, 731): captured in 2.9 s\n"
                    "compiled graph for (1, 3, 768, 1024): captured in 3.1 s\n")
    threading.Thread(target=daemon).start()
    bench_dream.wait_compiled_ahead(log, 2, 60, {"case": "googlenet/inception4c"})
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert row["mode"] == "e2e_ahead_wait" and 1.0 < row["seconds"] < 30
    assert len(row["log"]) == 5 and "captured in 3.1 s" in row["log"][-1]
    assert row["log"][0].startswith("compiled steps ahead on")  # which mode the daemon ran
