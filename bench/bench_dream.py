"""DeepDream benchmark: the engine, the warm daemon end to end, and the plain reference loop.

Every case runs in the same process as the plain fp32 eager loop (bench/reference_loop.py),
so each figure is also a ratio.  Per case: seconds (median), megapixel-steps per second,
FLOPs per step at one megapixel (torch's FLOP counter, on meta tensors: free), the achieved
rate as a fraction of this device's MEASURED bf16 matrix rate, peak device and host memory.
One JSON object per line on stdout (and in --out), a short table last.

    PYTHONPATH=daemon:shared python bench/bench_dream.py            # everything (GPU box)
    PYTHONPATH=daemon:shared python bench/bench_dream.py --quick    # CPU: GoogLeNet only

Weights are random (seeded): speed does not depend on them.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "daemon", REPO / "shared", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from deepdream import accel  # noqa: E402
from deepdream.engine import DreamSettings, dream, fastpath  # noqa: E402
from deepdream.models import registry  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from bench.reference_loop import octave_sizes, reference_dream  # noqa: E402

PHOTO = Path(__file__).with_name("astronaut.png")
CASES = {"googlenet": "inception4c", "vgg16": "relu4_3"}
SCHEDULE = {"octaves": 4, "octave_scale": 1.4, "iterations": 10}  # Google's
MODELS_TOML = "".join(f'[models.bench_{a}]\narch = "{a}"\nweights = "random"\n' for a in CASES)

_out_file: Any = None
_rows: list[dict[str, Any]] = []


def emit(record: dict[str, Any]) -> None:
    line = json.dumps(record, default=str)
    print(line, flush=True)
    if _out_file is not None:
        _out_file.write(line + "\n")
        _out_file.flush()
    _rows.append(record)


# --- measuring ---------------------------------------------------------------------------


class PeakRSS:
    """Samples the resident memory of some processes (sum) in a thread; ``peak_mb``."""

    def __init__(self, pids: list[int], every: float = 0.02) -> None:
        self.pids, self.every, self.peak = pids, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_rss(p) for p in self.pids))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, sum(_rss(p) for p in self.pids))

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int,
          pids: list[int] | None = None) -> dict[str, Any]:
    """Median seconds of ``repeats`` runs (after the caller's warm-up), peak memories."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, cpu = [], []
    with PeakRSS([os.getpid(), *(pids or [])]) as rss:
        for _ in range(repeats):
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    # this process's CPU time: with one thread on a shared machine, the steadier figure
    out: dict[str, Any] = {"seconds": statistics.median(times),
                           "runs": [round(t, 4) for t in times], "peak_host_mb": rss.peak_mb,
                           "cpu_seconds": round(statistics.median(cpu), 3)}
    if device.type == "cuda":
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        # what the process holds: a replayed CUDA graph's working memory sits in its pool,
        # reserved but not "allocated", so the allocated peak alone undercounts graph runs
        out["peak_device_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20,
                                               1)
    return out


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matrix-multiply rate in TFLOP/s (random operands, median of runs)."""
    n = 8192 if device.type == "cuda" else 2048
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen).to(dtype)
    b = torch.randn(n, n, device=device, generator=gen).to(dtype)
    reps = 20 if device.type == "cuda" else 3
    torch.matmul(a, b)
    sync(device)
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


def schedule_flops(model: torch.nn.Module, layer: str, sizes: list[tuple[int, int]],
                   steps: int) -> float:
    """FLOPs of the whole schedule: forward to ``layer`` + gradient to the input, per step,
    counted on meta tensors (no compute)."""
    meta = copy.deepcopy(model).to("meta")
    total = 0.0
    for h, w in sizes:
        x = torch.empty(1, 3, h, w, device="meta", requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            meta(x, [layer])[layer].float().square().mean().backward()
        total += counter.get_total_flops() * steps
    return total


# --- inputs ------------------------------------------------------------------------------


def photo(width: int, height: int) -> np.ndarray:
    """The bench photo as (H, W, 3) float32 sRGB in [0, 1], resized."""
    src = PHOTO if PHOTO.exists() else Path("/work/shared/images/astronaut.png")
    img = Image.open(src).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def rgba_u8(rgb: np.ndarray) -> bytes:
    a = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)
    return np.concatenate([(rgb * 255 + 0.5).astype(np.uint8), a], axis=2).tobytes()


# --- cases -------------------------------------------------------------------------------


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        card = torch.cuda.get_device_name(device)
    else:
        card = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                card = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return {"device": str(device), "card": card, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "host": socket.gethostname(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def schedule_label() -> str:
    return f"{SCHEDULE['octaves']}x{SCHEDULE['octave_scale']:g}x{SCHEDULE['iterations']}"


def engine_settings(model_name: str, layer: str, tile: int = 0) -> DreamSettings:
    return DreamSettings.from_dict({"model": model_name, "layer": layer, "tile": tile,
                                    **SCHEDULE})


def run_model_case(arch: str, device: torch.device, size: tuple[int, int], args: Any,
                   models_file: str, base: dict[str, Any], bf16_rate: float,
                   daemons: dict[str, tuple[str, int]], compiled_pass: bool = False) -> None:
    """``daemons``: mode name ("e2e", "e2e_compiled", "e2e_ahead") -> (endpoint, pid, log
    file) of a warm daemon.
    ``compiled_pass``: the reference and the DEEPDREAM_COMPILE=1 rows only (a pass of their
    own, last, so minutes of compiling cannot cost the other rows)."""
    daemons = {m: d for m, d in daemons.items() if (m == "e2e_compiled") == compiled_pass}
    layer = CASES[arch]
    name = f"bench_{arch}"
    w, h = size
    rgb = photo(w, h)
    sizes = octave_sizes(h, w, SCHEDULE["octaves"], SCHEDULE["octave_scale"])
    mpix_steps = sum(a * b for a, b in sizes) * SCHEDULE["iterations"] / 1e6
    plain = registry.load(name, device, models_file, accelerate=False)
    flops = schedule_flops(plain, layer, sizes, SCHEDULE["iterations"])
    gflop_step_1mpix = flops / mpix_steps / 1e9
    common = {**base, "case": f"{arch}/{layer}", "size": f"{w}x{h}",
              "schedule": schedule_label(), "mpix_steps": round(mpix_steps, 3),
              "gflop_per_step_at_1mpix": round(gflop_step_1mpix, 1)}

    def record(mode: str, t: dict[str, Any], ref_s: float | None, **extra: Any) -> None:
        achieved = flops / t["seconds"] / 1e12
        emit({**common, "mode": mode, **t, **extra,
              "mpix_steps_per_s": round(mpix_steps / t["seconds"], 3),
              "tflops": round(achieved, 3),
              "fraction_of_bf16_rate": round(achieved / bf16_rate, 4) if bf16_rate else None,
              "speedup_vs_reference": round(ref_s / t["seconds"], 3) if ref_s else None})

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous().to(device)
    fast = registry.load(name, device, models_file)
    report = accel.prepare(fast)
    settings = engine_settings(name, layer, tile=args.engine_tile)

    runs: dict[str, Callable[[], object]] = {
        "reference": lambda: reference_dream(x, plain, layer, scale=SCHEDULE["octave_scale"])}
    # *_device: the pixels already on the device, in and out, as a daemon's are (it decodes
    # and encodes 8-bit frames there): the dream without the float32 image's trips over PCIe
    # (9.4 MB each way at 1024x768) that a host array in dream() costs
    on_device = torch.from_numpy(rgb).to(device) if device.type == "cuda" else None
    if compiled_pass:  # DEEPDREAM_COMPILE=1 (this pass's model: no other engine row uses it)
        runs["engine_compiled"] = dreaming_with(rgb, fast, settings, fastpath, "COMPILE", True)
        if on_device is not None:
            runs["engine_compiled_device"] = dreaming_with(on_device, fast, settings, fastpath,
                                                           "COMPILE", True)
    else:
        runs["engine"] = dreaming_with(rgb, fast, settings, fastpath, "ENABLED", True)
        if on_device is not None:
            runs["engine_device"] = dreaming_with(on_device, fast, settings, fastpath,
                                                  "ENABLED", True)
    if device.type == "cuda" and not compiled_pass:
        runs["engine_eager"] = dreaming_with(rgb, fast, settings, fastpath, "ENABLED", False)
        # the engine without rewrites.py's kernel-saving rewrites (its own model instance,
        # so its own graphs), what those rewrites gain in this run.  (cuDNN's autotuner had
        # a row here until session 6: no gain on H100 or H200, so it stays off.)
        unrewritten = registry.load(name, device, models_file, accelerate=False)
        accel.prepare(unrewritten, rewrites=False)
        runs["engine_no_rewrites"] = dreaming_with(rgb, unrewritten, settings, fastpath,
                                                   "ENABLED", True)
    clients = []
    if arch == "googlenet":
        from deepdream_protocol.client import Client
        from deepdream_protocol.pixels import PixelFormat

        pixels, fmt = rgba_u8(rgb), PixelFormat("RGBA", "u8", "srgb")
        wire = {"model": name, "layer": layer, **SCHEDULE}
        for mode, (endpoint, *_) in daemons.items():
            # a compiling daemon's first job takes minutes (one compile per octave size)
            client = Client(endpoint, timeout=600.0)
            clients.append(client)
            runs[mode] = lambda c=client: c.dream(wire, pixels, w, h, fmt)
    try:
        # warm-up: kernels, allocator, oneDNN primitives; on CUDA this size's graphs too
        reference_dream(x[:, :, : h // 4, : w // 4].contiguous(), plain, layer, steps=2)
        dream(rgb[: h // 4, : w // 4], fast, settings)
        if device.type == "cuda":
            for run in runs.values():
                run()
        if "e2e_ahead" in daemons:  # its first job wished for its sizes' compiled graphs
            wait_compiled_ahead(daemons["e2e_ahead"][2], len(sizes), args.ahead, common)
            # Idle that long, each daemon handed its kept memory back (RELEASE_AFTER_S): its
            # next try, timed here as such, warms up again before the warm tries
            for mode in daemons:
                t0 = time.perf_counter()
                runs[mode]()
                emit({**common, "mode": f"{mode}_after_idle",
                      "seconds": round(time.perf_counter() - t0, 4),
                      "note": "the first try after the wait for the compiled graphs"})
        # round robin, so a machine whose load drifts (shared CPUs) hits every mode alike
        got: dict[str, list[dict[str, Any]]] = {mode: [] for mode in runs}
        for _ in range(args.repeats):
            for mode, run in runs.items():
                pids = [daemons[mode][1]] if mode in daemons else None
                got[mode].append(timed(run, device, 1, pids))
    finally:
        for client in clients:
            client.close()
    merged = {mode: _merge(ts) for mode, ts in got.items()}
    ref_s = merged["reference"]["seconds"]
    for mode, t in merged.items():
        if mode == "reference":
            record(mode, t, None, compute_dtype="float32", graphs=False)
        elif mode in daemons:
            t.pop("peak_device_mb", None)  # the daemon's device memory is not ours to read
            t.pop("peak_device_reserved_mb", None)
            t.pop("cpu_seconds", None)  # only the client's, which waits
            record(mode, t, ref_s, note="client submit -> result, warm daemon, RGBA u8"
                   + {"e2e": ", DEEPDREAM_COMPILE=0", "e2e_compiled": ", DEEPDREAM_COMPILE=1",
                      "e2e_ahead": ", DEEPDREAM_COMPILE=ahead (a GPU daemon's default)"
                      }.get(mode, ""))
        else:
            record(mode, t, ref_s, compute_dtype=report.compute_dtype,
                   graphs=mode != "engine_eager" and device.type == "cuda",
                   folded_bn=report.folded_bn, channels_last=report.channels_last)


def dreaming_with(rgb: np.ndarray | torch.Tensor, model: torch.nn.Module, settings: DreamSettings,
                  owner: object, attr: str, value: object) -> Callable[[], object]:
    """A run of dream() with ``owner.attr`` set to ``value`` for its duration."""
    def run() -> object:
        before = getattr(owner, attr)
        setattr(owner, attr, value)
        try:
            return dream(rgb, model, settings)
        finally:
            setattr(owner, attr, before)
    return run


def _merge(timings: list[dict[str, Any]]) -> dict[str, Any]:
    runs = [t["seconds"] for t in timings]
    out: dict[str, Any] = {"seconds": statistics.median(runs), "runs": [round(r, 4) for r in runs],
                           "peak_host_mb": max(t["peak_host_mb"] for t in timings),
                           "cpu_seconds": statistics.median(t["cpu_seconds"] for t in timings)}
    for key in ("peak_device_mb", "peak_device_reserved_mb"):
        if key in timings[0]:
            out[key] = max(t[key] for t in timings)
    return out


def run_tiled_case(device: torch.device, models_file: str, base: dict[str, Any],
                   bf16_rate: float, args: Any) -> None:
    """4096x4096 GoogLeNet through tiles of ``--tile`` px; the figure to compare is
    megapixel-steps per second against the 1024x768 engine row (linear = equal)."""
    arch, layer = "googlenet", CASES["googlenet"]
    name = f"bench_{arch}"
    side = args.tiled_size
    fastpath.clear_graphs()  # the earlier cases' graph pools would count in the peak
    if device.type == "cuda":
        gc.collect()  # their models too, before the cache goes back to the driver
        torch.cuda.empty_cache()
    model = registry.load(name, device, models_file)
    accel.prepare(model)
    rgb = photo(side, side)
    settings = engine_settings(name, layer, tile=args.tile)
    sizes = octave_sizes(side, side, SCHEDULE["octaves"], SCHEDULE["octave_scale"])
    mpix_steps = sum(a * b for a, b in sizes) * SCHEDULE["iterations"] / 1e6
    flops = schedule_flops(model, layer, sizes, SCHEDULE["iterations"])
    # warm-up; on CUDA at full size, so the timed run replays the octaves' captured graphs
    dream(rgb if device.type == "cuda" else rgb[:256, :256], model, settings)
    t = timed(lambda: dream(rgb, model, settings), device, 1)
    achieved = flops / t["seconds"] / 1e12
    emit({**base, "case": f"{arch}/{layer}", "mode": "tiled", "size": f"{side}x{side}",
          "tile": args.tile, "schedule": schedule_label(), "mpix_steps": round(mpix_steps, 3), **t,
          "graphs": device.type == "cuda" and fastpath.ENABLED,
          "mpix_steps_per_s": round(mpix_steps / t["seconds"], 3), "tflops": round(achieved, 3),
          "fraction_of_bf16_rate": round(achieved / bf16_rate, 4) if bf16_rate else None})


# --- the daemon --------------------------------------------------------------------------


def start_daemon(models_file: str, device: torch.device, log_dir: str,
                 env: dict[str, str] | None = None) -> tuple[Any, str, Path]:
    """The warm daemon of the end-to-end case (the tests' serve command): (process, endpoint,
    log file)."""
    from tests.support.daemon import start_daemon as start

    Path(log_dir).mkdir(parents=True, exist_ok=True)
    daemon = start(Path(log_dir), models_file, timeout=180, env=env,
                   extra_args=("--preload", "bench_googlenet", "--device", str(device)))
    return daemon.proc, daemon.endpoint, daemon.log


def run_first_tries(models_file: str, device: torch.device, base: dict[str, Any],
                    size: tuple[int, int], log_dir: Path) -> None:
    """The artist's first try at an image size: in a fresh daemon, then in one restarted on
    the same state folder, which warms up for its recent jobs at start (CUDA only).  Each try
    starts once the daemon has logged its preload (and the restarted one its warm-up), as an
    artist's first click comes a while after the plug-in started the daemon; the wait is
    reported beside it."""
    from deepdream_protocol.client import Client
    from deepdream_protocol.pixels import PixelFormat

    w, h = size
    pixels, fmt = rgba_u8(photo(w, h)), PixelFormat("RGBA", "u8", "srgb")
    wire = {"model": "bench_googlenet", "layer": CASES["googlenet"], **SCHEDULE}
    # (the restarted daemon appends to the same log; a CPU daemon has no recent-job warm-up)
    restarted = ("a recent job", "cannot warm up") if device.type == "cuda" else ("preloaded",)
    for mode, ready in (("e2e_first_try", ("preloaded",)),
                        ("e2e_first_after_restart", restarted)):
        log = log_dir / "daemon.log"
        since = log.stat().st_size if log.exists() else 0
        t0 = time.monotonic()
        proc, endpoint, log = start_daemon(models_file, device, str(log_dir),
                                           {"DEEPDREAM_COMPILE": "auto"})  # the default's
        try:
            warm_up = wait_for_log(log, lambda text, r=ready: any(x in text for x in r), 120,
                                   since)
            ready_s = time.monotonic() - t0
            with Client(endpoint, timeout=600.0) as client:
                t1 = time.perf_counter()
                client.dream(wire, pixels, w, h, fmt)
                seconds = time.perf_counter() - t1
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        emit({**base, "case": f"googlenet/{CASES['googlenet']}", "mode": mode,
              "size": f"{w}x{h}", "schedule": schedule_label(), "seconds": round(seconds, 4),
              "ready_s": round(ready_s, 1), "warm_up_log": warm_up,
              "note": "one job, the daemon's first at this size, once its warm-up is logged"})


def wait_for_log(log: Path, done: Callable[[str], bool], seconds: float,
                 since: int = 0) -> list[str]:
    """Poll a daemon's log (from byte ``since``) until ``done(text)`` or ``seconds`` pass;
    its lines that speak of warming up or compiling, for the JSON line."""
    def text() -> str:
        with open(log, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and not done(text()):
        time.sleep(0.2)
    return [line[:200] for line in text().splitlines()
            if "warm" in line or "compil" in line]


def wait_compiled_ahead(log: Path, sizes: int, seconds: float, common: dict[str, Any]) -> None:
    """Wait until a DEEPDREAM_COMPILE=ahead daemon's log says it captured ``sizes`` compiled
    graphs (or failed, or ``seconds`` passed); one JSON line says how long that took."""
    t0 = time.monotonic()
    lines = wait_for_log(log, lambda text: text.count("compiled graph for") >= sizes
                         or "compiling ahead failed" in text, seconds)
    emit({**common, "mode": "e2e_ahead_wait", "seconds": round(time.monotonic() - t0, 1),
          "log": lines})


# --- main --------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'case':<22}{'mode':<24}{'size':<10}{'seconds':>9}{'x ref':>7}{'Mpx-st/s':>10}"
    head += f"{'TFLOP/s':>9}{'%bf16':>7}{'devMB':>8}{'resMB':>8}{'hostMB':>8}"
    lines = [head]
    for r in rows:
        if "seconds" not in r:
            continue
        frac = r.get("fraction_of_bf16_rate")
        lines.append(  # (waits and first tries have seconds only)
            f"{r['case']:<22}{r['mode']:<24}{r.get('size', ''):<10}{r['seconds']:>9.3f}"
            f"{(r.get('speedup_vs_reference') or 0):>7.2f}{r.get('mpix_steps_per_s', 0):>10.2f}"
            f"{r.get('tflops', 0):>9.3f}{(frac or 0) * 100:>6.1f}%"
            f"{r.get('peak_device_mb', 0):>8.0f}{r.get('peak_device_reserved_mb', 0):>8.0f}"
            f"{r.get('peak_host_mb', 0):>8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global _out_file
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="CPU-sized: GoogLeNet only, one run each, no 4096x4096 case")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    p.add_argument("--size", default="1024x768", help="photo size WxH")
    p.add_argument("--octave-scale", type=float, default=SCHEDULE["octave_scale"],
                   help="octave scale of the 4-octave, 10-step schedule (1.4: Google's; "
                   "1.8: the schedule ../shared/notes/anchors.md, outside this repository, "
                   "measured its CPU figures with)")
    p.add_argument("--tiled-size", type=int, default=4096)
    p.add_argument("--tile", type=int, default=1024, help="tile edge for the tiled case")
    p.add_argument("--engine-tile", type=int, default=0,
                   help="tile edge for the 1024x768 engine rows (default 0: the engine's own)")
    p.add_argument("--no-daemon", action="store_true", help="skip the end-to-end case")
    p.add_argument("--cases", default=None,
                   help="comma list of: googlenet, vgg16, tiled, first (the first tries alone)")
    p.add_argument("--compile", action="store_true",
                   help="CUDA: also each case with DEEPDREAM_COMPILE=1 (GoogLeNet also in a "
                   "second daemon), last: the first run of each compiles for minutes")
    p.add_argument("--first-tries", action="store_true",
                   help="also the first try at the photo's size in a fresh daemon and in one "
                   "restarted after it (two daemon starts)")
    p.add_argument("--ahead", type=float, default=0, metavar="SECONDS",
                   help="CUDA: also GoogLeNet end to end in a DEEPDREAM_COMPILE=ahead daemon, "
                   "timed once it has captured its compiled graphs (waiting at most SECONDS)")
    args = p.parse_args(argv)
    SCHEDULE["octave_scale"] = args.octave_scale
    # a timeout's SIGTERM unwinds like an exception, so the daemon is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from deepdream.devices import pick_device

    device = pick_device(args.device)
    if args.repeats is None:
        args.repeats = 1 if args.quick else (5 if device.type == "cuda" else 2)
    wanted = (args.cases.split(",") if args.cases else
              ["googlenet"] if args.quick else ["googlenet", "vgg16", "tiled"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        _out_file = open(args.out, "a", encoding="utf-8")
    if device.type == "cpu":
        accel.set_threads()
    base = device_info(device)
    bf16 = matmul_rate(device, torch.bfloat16)
    fp32 = matmul_rate(device, torch.float32)
    emit({**base, "mode": "matmul", "bf16_tflops": round(bf16, 2), "fp32_tflops": round(fp32, 3),
          "native_bf16_cpu": accel.cpu_has_native_bf16() if device.type == "cpu" else None})
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="deepdream-bench-") as tmp:
        models_file = str(Path(tmp) / "bench_models.toml")
        Path(models_file).write_text(MODELS_TOML, encoding="utf-8")
        procs, daemons = [], {}
        # e2e: the uncompiled steps (on a GPU the default compiles ahead: e2e_ahead)
        kinds = {"e2e": {"DEEPDREAM_COMPILE": "0"}}
        if args.compile and device.type == "cuda":
            kinds["e2e_compiled"] = {"DEEPDREAM_COMPILE": "1"}
        if args.ahead and device.type == "cuda":
            kinds["e2e_ahead"] = {"DEEPDREAM_COMPILE": "ahead"}
        for mode, env in kinds.items():
            if args.no_daemon or "googlenet" not in wanted:
                break
            try:
                proc, endpoint, log = start_daemon(models_file, device, str(Path(tmp) / mode), env)
                procs.append(proc)
                daemons[mode] = (endpoint, proc.pid, log)
            except Exception as exc:  # noqa: BLE001 - the engine figures still count
                emit({**base, "mode": mode, "error": str(exc).splitlines()[-1][:300]})
        try:
            for arch in (a for a in wanted if a in CASES):
                try:
                    run_model_case(arch, device, (w, h), args, models_file, base, bf16,
                                   daemons)
                except Exception as exc:  # noqa: BLE001 - report it, go on with the rest
                    emit({**base, "case": arch, "error": f"{type(exc).__name__}: {exc}"[:500]})
            if "tiled" in wanted:
                try:
                    run_tiled_case(device, models_file, base, bf16, args)
                except Exception as exc:  # noqa: BLE001
                    emit({**base, "case": "tiled", "error": f"{type(exc).__name__}: {exc}"[:500]})
            if (args.first_tries and "googlenet" in wanted) or "first" in wanted:
                try:
                    run_first_tries(models_file, device, base, (w, h), Path(tmp) / "first")
                except Exception as exc:  # noqa: BLE001
                    emit({**base, "case": "first tries",
                          "error": f"{type(exc).__name__}: {exc}"[:500]})
            for arch in (a for a in wanted if a in CASES and args.compile
                         and device.type == "cuda"):
                try:
                    run_model_case(arch, device, (w, h), args, models_file, base, bf16,
                                   daemons, compiled_pass=True)
                except Exception as exc:  # noqa: BLE001
                    emit({**base, "case": f"{arch} compiled",
                          "error": f"{type(exc).__name__}: {exc}"[:500]})
        finally:
            for daemon in procs:
                daemon.terminate()
                try:
                    daemon.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
    print(f"\n{base['card']} ({base['device']}, {base['threads']} threads, "
          f"bf16 matmul {bf16:.2f} TFLOP/s, fp32 {fp32:.3f}) {base['date']}")
    print(table(_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
