"""Is a compiled step loaded from inductor's on-disk cache as fast as one compiled afresh?

Session 11 (H200): VGG16's compiled dream (DEEPDREAM_COMPILE=1) took 0.059-0.061 s in a
process that compiled it afresh, and 0.094-0.100 s in later processes that found its kernels
in the cache, with 6x more CPU time than wall time.  A daemon that compiles ahead always
loads from that cache.  Run this twice with the same TORCHINDUCTOR_CACHE_DIR: each run
prints, as JSON lines, the wall and CPU seconds of a dream, the process's threads, and the
top CPU ops and GPU time of one profiled dream.

    TORCHINDUCTOR_CACHE_DIR=/tmp/c python bench/probe_compile_cache.py --arch vgg16  # afresh
    TORCHINDUCTOR_CACHE_DIR=/tmp/c python bench/probe_compile_cache.py --arch vgg16  # cached
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "daemon", REPO / "shared", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import torch  # noqa: E402
from deepdream import accel  # noqa: E402
from deepdream.engine import dream, fastpath  # noqa: E402
from deepdream.models import registry  # noqa: E402

from bench.bench_dream import CASES, MODELS_TOML, emit, engine_settings, photo  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="vgg16", choices=sorted(CASES))
    p.add_argument("--size", default="1024x768")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda", help="(cpu: only to try this script out)")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(MODELS_TOML)
    name = f"bench_{args.arch}"
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    model = registry.load(name, device, f.name)
    accel.prepare(model)
    settings = engine_settings(name, CASES[args.arch])
    rgb = photo(w, h)
    fastpath.COMPILE = True
    from deepdream.engine.compile_ahead import _inductor_count

    t0 = time.perf_counter()
    dream(rgb, model, settings)  # compiles (or loads) each octave size, captures its graph
    emit({"part": "first dream", "seconds": round(time.perf_counter() - t0, 2),
          "cache_hits": _inductor_count("fxgraph_cache_hit"),
          "cache_misses": _inductor_count("fxgraph_cache_miss"),
          "graphs": sum(g is not None for g in fastpath._graphs.values())})
    walls, cpus = [], []
    for _ in range(args.repeats):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        dream(rgb, model, settings)
        sync()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    emit({"part": "dreams", "wall_s": [round(x, 4) for x in walls],
          "cpu_s": [round(x, 4) for x in cpus], "median_wall_s": statistics.median(walls),
          "python_threads": sorted(t.name for t in threading.enumerate()),
          "os_threads": len(os.listdir("/proc/self/task"))})
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        dream(rgb, model, settings)
        sync()
    events = prof.key_averages()
    cpu_top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    gpu_us = sum(e.self_device_time_total for e in events)
    emit({"part": "profile", "gpu_ms": round(gpu_us / 1e3, 2),
          "cpu_top": [{"op": e.key[:90], "calls": e.count,
                       "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2)} for e in cpu_top]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
