"""Where a GPU dream's time goes, and which step variant is fastest (one short GPU call).

For GoogLeNet inception4c and VGG16 relu4_3 at 1024x768, one octave's ten steps captured as
one CUDA graph, per variant:
  engine     what the engine does now: autocast + rewrites.py's rewrites (all three)
  autocast   the engine before session 6: float32 weights, bf16 autocast, no rewrites
  weights    the model itself in bf16 (no autocast, no per-step weight casts)
  nchw       the autocast step without channels_last
  fp16       the weights variant in float16
  fused      the autocast step with each conv + bias + ReLU as one cuDNN call
             (rewrites.fuse_conv_relu; its step error against autocast's is reported too)
  compile_dynamic  (--compile-dynamic, alone: a few minutes) the compile variant with
             dynamic shapes, one model over all four octave sizes in turn: the compile
             seconds of each size (does the second size recompile?) and its step time
  streams    the autocast step with GoogLeNet's inception branches on side streams
             (rewrites.concurrent_inceptions); fused_streams both
  s2d        the autocast step with the 7x7 stride-2 stem as space-to-depth + a stride-1
             conv (rewrites.space_to_depth_stems)
each with cuDNN's autotuner off and on; ``compile`` adds the weights variant under
torch.compile (inductor).  Also: a kernel profile of one eager step (the top kernels by
GPU time), and the host-side share of a whole dream() and of the daemon's decode/encode.
JSON lines on stdout (and --out); every part guarded so one failure loses nothing else.

    PYTHONPATH=daemon:shared python bench/probe_gpu_step.py --out /tmp/probe.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "daemon", REPO / "shared", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import torch  # noqa: E402
from deepdream import accel, rewrites  # noqa: E402
from deepdream.engine import fastpath  # noqa: E402
from deepdream.engine.objectives import layers_l2  # noqa: E402
from deepdream.models import registry  # noqa: E402
from deepdream.rewrites import (  # noqa: E402
    SpaceToDepthConv,
    concurrent_inceptions,
    fast_forms,
    fuse_conv_relu,
    hold_weights,
    space_to_depth_stems,
)

from bench import bench_dream  # noqa: E402
from bench.bench_dream import CASES, MODELS_TOML, SCHEDULE, emit, photo, rgba_u8  # noqa: E402

STEPS = 10


def guarded(name: str, fn: Callable[[], dict[str, Any] | None]) -> None:
    t0 = time.perf_counter()
    try:
        rec = fn() or {}
    except Exception as exc:  # noqa: BLE001 - report and go on
        rec = {"error": f"{type(exc).__name__}: {exc}"[:400],
               "trace": traceback.format_exc()[-900:]}
    emit({"part": name, "wall_s": round(time.perf_counter() - t0, 2), **rec})


def step_fn(model: torch.nn.Module, layer: str, dtype: torch.dtype | None,
            input_dtype: torch.dtype | None, compiled_ops: bool = False
            ) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The fast path's classic step in place on x (float32): autocast ``dtype`` when the
    weights are float32, or the input cast to ``input_dtype`` when the model is reduced;
    ``compiled_ops``: the step's roll and normalisation compiled too (as a compiled model's
    step runs them since session 11)."""
    objective = layers_l2(((layer, 1.0),))
    return lambda x, offset: fastpath.dream_step(x, offset, model, objective, 1.5 / 255, dtype,
                                                 input_dtype, compiled_ops=compiled_ops)


def replay_ms(fn: Callable[[int], None], calls: int, device: torch.device, warmup: int,
              replays: int = 1) -> float:
    """Milliseconds per call of ``fn(0) .. fn(calls - 1)`` captured as one CUDA graph
    (after ``warmup`` eager calls on a side stream and one untimed replay): the median of
    ``replays`` timed replays."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with fast_forms():  # as fastpath.OctaveGraph does: rewritten modules' graph forms
        with torch.cuda.stream(side):
            for i in range(warmup):
                fn(i % calls)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(calls):
                fn(i)
    graph.replay()
    times = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return statistics.median(times)


def graph_ms_per_step(step: Callable, shape: tuple[int, ...], device: torch.device,
                      replays: int = 5) -> dict[str, Any]:
    x = torch.rand(shape, device=device)
    offsets = torch.randint(-32, 33, (STEPS, 2), device=device)
    graph_ms = replay_ms(lambda s: step(x, offsets[s]), STEPS, device, warmup=3,
                         replays=replays)
    # eager: ten steps, host timed (launch-bound or not)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for s in range(STEPS):
        step(x, offsets[s])
    torch.cuda.synchronize(device)
    eager = (time.perf_counter() - t0) / STEPS * 1e3
    return {"graph_ms_per_step": round(graph_ms, 3), "eager_ms_per_step": round(eager, 3),
            "finite": bool(torch.isfinite(x).all())}


def variant_step(arch: str, device: torch.device, models_file: str, kind: str
                 ) -> tuple[Callable[[torch.Tensor, torch.Tensor], None], accel.AccelReport]:
    """The step of one variant (see the module's text) and what accel.prepare did.
    ``kind`` may end in modifiers: ``+pools`` (max pools in planar memory, ``PlanarMaxPool``)
    and, for a compiled kind, ``+cdt`` (inductor's coordinate-descent tuning: ``variant``
    holds the config while it compiles) and ``+eagerops`` (the step's own ops uncompiled, as
    before session 11)."""
    kind, *mods = kind.split("+")
    model = registry.load(f"bench_{arch}", device, models_file, accelerate=False)
    report = accel.prepare(model, channels_last=kind != "nchw", precision="bfloat16",
                           rewrites=kind.startswith("engine") or kind == "compile_engine")
    if "pools" in mods:
        planar_pools(model)
    dtype: torch.dtype | None = torch.bfloat16
    input_dtype = None
    if kind in ("weights", "fp16", "compile", "compile_engine"):
        input_dtype = torch.float16 if kind == "fp16" else torch.bfloat16
        model = copy.deepcopy(model).to(input_dtype)
        dtype = None
    if kind == "compile_engine":  # as fastpath.compiled_model: the stem's fast form traced
        hold_weights(model, None)
    if kind in ("compile", "compile_engine"):
        model = torch.compile(model, dynamic=False)
    if kind == "compile_dynamic":  # one compile for every octave size (height, width symbolic)
        model = copy.deepcopy(model).to(torch.bfloat16)
        dtype, input_dtype = None, torch.bfloat16
        model = torch.compile(model, dynamic=True)
    if kind in ("fused", "fused_streams"):
        fuse_conv_relu(model)
    if kind in ("streams", "fused_streams"):
        concurrent_inceptions(model)
    if kind == "s2d":
        space_to_depth_stems(model)
        model.to(memory_format=torch.channels_last)  # its new weight, as prepare does
    if kind == "engine_s2d12":  # the stem as before session 11: 12 channels, not 16
        for m in model.modules():
            if isinstance(m, SpaceToDepthConv) and m.extra_channels:
                m.weight = torch.nn.Parameter(m.weight[:, :-4 * m.extra_channels].contiguous(
                    memory_format=torch.channels_last), requires_grad=False)
                m.extra_channels = 0
    if kind in ("engine_pad4", "engine_pad8"):  # VGG16's conv1_1 on 4 or 8 channels
        pad_first_conv(model, int(kind[-1]))
    compiled_ops = kind in ("compile", "compile_engine") and "eagerops" not in mods
    return step_fn(model, CASES[arch], dtype, input_dtype, compiled_ops), report


class PlanarMaxPool(torch.nn.Module):
    """A max pool run on planar (NCHW) memory inside a channels-last model: PyTorch's
    channels-last max-pool kernels took 0.9 ms of GoogLeNet's 2.2 ms step on an H200
    (session 11), and its all-planar step was faster than its channels-last one before the
    rewrites (session 6).  The experiment: do the two layout copies cost less than that?"""

    def __init__(self, pool: torch.nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x.contiguous())
        return y.contiguous(memory_format=torch.channels_last)


def planar_pools(model: torch.nn.Module) -> int:
    """Every MaxPool2d of ``model`` as a PlanarMaxPool; how many."""
    return rewrites._replace(model, lambda m: type(m) is torch.nn.MaxPool2d, PlanarMaxPool)


class _ZeroChannels(torch.nn.Module):
    def __init__(self, extra: int) -> None:
        super().__init__()
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra))


def pad_first_conv(model: torch.nn.Module, channels: int) -> None:
    """The model's first stage (a fused conv on RGB) reading ``channels`` channels, the
    image padded with zero ones: what cuDNN's kernels make of an RGB input's gradient."""
    first = model.stages[0]
    conv = first.conv
    wider = torch.nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride,
                            conv.padding).to(conv.weight.device)
    with torch.no_grad():
        wider.weight.zero_()
        wider.weight[:, :conv.in_channels] = conv.weight
        wider.bias.copy_(conv.bias)
    wider.requires_grad_(False).to(memory_format=torch.channels_last)
    fused = type(first)(wider)
    fused.hold(torch.bfloat16)
    model.stages[0] = torch.nn.Sequential(_ZeroChannels(channels - conv.in_channels), fused)


def fused_error(arch: str, device: torch.device, models_file: str,
                size: tuple[int, int]) -> dict[str, Any]:
    """One step's gradient, bf16 autocast, fused vs the engine's model; beside it the
    engine's own bf16-vs-float32 error, the scale that decides whether a change matters."""
    from deepdream.engine.tiling import objective_gradient

    model = registry.load(f"bench_{arch}", device, models_file, accelerate=False)
    accel.prepare(model, precision="bfloat16", rewrites=False)
    fused = copy.deepcopy(model)
    count = fuse_conv_relu(fused)
    objective = layers_l2(((CASES[arch], 1.0),))
    x = torch.rand(1, 3, *size, device=device, generator=torch.Generator(device).manual_seed(0))

    def grad(m: torch.nn.Module, dtype: torch.dtype | None) -> torch.Tensor:
        return objective_gradient(x.clone(), m, objective, dtype).float()

    engine = grad(model, torch.bfloat16)
    with fast_forms():
        fused_grad = grad(fused, torch.bfloat16)
    with accel.exact_float32():
        exact = grad(model, None)
    return {"arch": arch, "fused_convs": count,
            "fused_vs_engine": accel.relative_error(fused_grad, engine),
            "engine_bf16_vs_fp32": accel.relative_error(engine, exact)}


def variant(arch: str, device: torch.device, models_file: str, kind: str, autotune: bool,
            size: tuple[int, int]) -> dict[str, Any]:
    step, report = variant_step(arch, device, models_file, kind)
    torch.backends.cudnn.benchmark = autotune
    tuning = (torch._inductor.config.patch(coordinate_descent_tuning=True)
              if kind.endswith("+cdt") else contextlib.nullcontext())
    try:
        with tuning:  # (the compile happens at the step's first call)
            got = graph_ms_per_step(step, (1, 3, *size), device)
    finally:
        torch.backends.cudnn.benchmark = False
    return {"arch": arch, "variant": kind, "autotune": autotune, "size": f"{size[1]}x{size[0]}",
            "prepare": report.summary(), **got}


def profile_step(arch: str, device: torch.device, models_file: str, kind: str,
                 size: tuple[int, int], top: int = 22) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    step, _ = variant_step(arch, device, models_file, kind)
    x = torch.rand(1, 3, *size, device=device)
    offsets = torch.randint(-32, 33, (STEPS, 2), device=device)
    n = 3
    with fast_forms():  # the kernels a captured step runs (eager steps run the plain forms)
        for s in range(3):
            step(x, offsets[s])
        torch.cuda.synchronize(device)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for s in range(n):
                step(x, offsets[s])
            torch.cuda.synchronize(device)
    kernels: dict[str, list[float]] = {}
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            k = kernels.setdefault(ev.name[:110], [0, 0.0])
            k[0] += 1
            k[1] += ev.time_range.elapsed_us()
    total = sum(v[1] for v in kernels.values())
    rows = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:top]
    return {"arch": arch, "variant": kind, "size": f"{size[1]}x{size[0]}",
            "kernels_per_step": sum(v[0] for v in kernels.values()) / n,
            "gpu_ms_per_step": round(total / n / 1e3, 3),
            "top": [{"kernel": k, "calls_per_step": c / n, "ms_per_step": round(t / n / 1e3, 3),
                     "share": round(t / total, 3)} for k, (c, t) in rows]}


def host_share(device: torch.device, models_file: str, size: tuple[int, int]) -> dict[str, Any]:
    """A whole dream() with graphs warm: its wall time against the time in graph replays,
    and the daemon's decode and encode of an RGBA u8 frame around it (on the device)."""
    from deepdream.engine import DreamSettings, dream
    from deepdream.pixelformat import decode_for, encode
    from deepdream_protocol.pixels import PixelFormat

    h, w = size
    model = registry.load("bench_googlenet", device, models_file)
    accel.prepare(model)
    settings = DreamSettings.from_dict({"model": "bench_googlenet", "layer": "inception4c",
                                        **SCHEDULE})
    rgb = photo(w, h)
    pixels, fmt = rgba_u8(rgb), PixelFormat("RGBA", "u8", "srgb")
    in_graph = [0.0]
    original = fastpath.OctaveGraph.run

    def timed_run(self: Any, x: torch.Tensor, offsets: Any) -> torch.Tensor:
        torch.cuda.synchronize(device)
        t = time.perf_counter()
        out = original(self, x, offsets)
        torch.cuda.synchronize(device)
        in_graph[0] += time.perf_counter() - t
        return out

    image = decode_for(device, pixels, fmt, w, h)
    for _ in range(2):
        dream(image, model, settings)
    rows: dict[str, list[float]] = {k: [] for k in ("decode", "dream", "encode", "in_graphs")}
    fastpath.OctaveGraph.run = timed_run  # type: ignore[method-assign]
    try:
        for _ in range(5):
            in_graph[0] = 0.0
            t0 = time.perf_counter()
            image = decode_for(device, pixels, fmt, w, h)
            torch.cuda.synchronize(device)  # the upload and conversion are only queued
            t1 = time.perf_counter()
            out = dream(image, model, settings)
            torch.cuda.synchronize(device)
            t2 = time.perf_counter()
            encode(out, fmt, pixels, w, h, decoded=image)
            t3 = time.perf_counter()
            for k, v in (("decode", t1 - t0), ("dream", t2 - t1), ("encode", t3 - t2),
                         ("in_graphs", in_graph[0])):
                rows[k].append(v * 1e3)
    finally:
        fastpath.OctaveGraph.run = original  # type: ignore[method-assign]
    return {"ms": {k: round(statistics.median(v), 2) for k, v in rows.items()}}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path)
    p.add_argument("--size", default="1024x768")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--short", action="store_true",
                   help="the engine's own step at each octave size, pools, compile")
    p.add_argument("--stems", action="store_true",
                   help="only the input-channel padding: GoogLeNet's stem, VGG16's conv1_1")
    p.add_argument("--compile-only", action="store_true",
                   help="with --stems: only GoogLeNet's compiled step, both stems")
    p.add_argument("--pools", action="store_true",
                   help="only max pools on planar memory, and VGG16's compiled step")
    p.add_argument("--vgg", action="store_true",
                   help="only VGG16's compiled step per octave size, cuDNN's autotuner off "
                   "and on, and its kernel profile at the largest and smallest size")
    p.add_argument("--compile-dynamic", action="store_true",
                   help="only the dynamic-shape compile across the octave sizes")
    args = p.parse_args()
    if args.out:
        bench_dream._out_file = args.out.open("a", encoding="utf-8")
    w, h = (int(v) for v in args.size.split("x"))
    device = torch.device("cuda")
    emit({"part": "env", "torch": torch.__version__, "card": torch.cuda.get_device_name(),
          "cudnn": torch.backends.cudnn.version()})
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(MODELS_TOML)
    models = f.name
    if args.compile_dynamic:
        return compile_dynamic(device, models, (h, w))
    if args.pools:
        return pools(device, models, (h, w))
    if args.vgg:
        return vgg(device, models, (h, w))
    if args.stems:
        return stems(device, models, (h, w), not args.no_compile, not args.compile_only)
    if args.short:
        return short(device, models, (h, w), not args.no_compile)
    guarded("profile googlenet autocast", lambda: profile_step("googlenet", device, models,
                                                               "autocast", (h, w)))
    guarded("host share", lambda: host_share(device, models, (h, w)))
    for arch in ("googlenet", "vgg16"):
        for kind in ("autocast", "weights", "nchw", "fp16"):
            for tune in (False, True):
                guarded(f"variant {arch} {kind} {tune}",
                        lambda a=arch, k=kind, t=tune: variant(a, device, models, k, t, (h, w)))
    # the smaller octaves of Google's schedule (launch-bound or not)
    for scale in (1.4 ** -3, 1.4 ** -2, 1.4 ** -1):
        small = (round(h * scale), round(w * scale))
        for kind, tune in (("autocast", False), ("weights", True)):
            guarded(f"octave googlenet {kind} {tune} {small}",
                    lambda k=kind, t=tune, sz=small: variant("googlenet", device, models, k, t,
                                                             sz))
    guarded("profile googlenet weights", lambda: profile_step("googlenet", device, models,
                                                              "weights", (h, w)))
    guarded("profile vgg16 weights", lambda: profile_step("vgg16", device, models,
                                                          "weights", (h, w), top=10))
    if not args.no_compile:
        guarded("variant googlenet compile", lambda: variant("googlenet", device, models,
                                                             "compile", True, (h, w)))
    return 0


def compile_dynamic(device: torch.device, models: str, size: tuple[int, int]) -> int:
    """One dynamic-shape compiled model over Google's four octave sizes, smallest first: per
    size the seconds to the first graph (compile + capture) and the graph's ms per step."""
    h, w = size
    step, _ = variant_step("googlenet", device, models, "compile_dynamic")
    for k in (3, 2, 1, 0):
        sz = (round(h * 1.4 ** -k), round(w * 1.4 ** -k))
        guarded(f"octave googlenet compile_dynamic {sz}",
                lambda sz=sz: {"size": f"{sz[1]}x{sz[0]}",
                               **graph_ms_per_step(step, (1, 3, *sz), device)})
    return 0


def stems(device: torch.device, models: str, size: tuple[int, int], compile_: bool,
          uncompiled: bool = True) -> int:
    """Session 11's question: does a first conv reading a multiple of 8 channels (zeros
    added) step faster?  GoogLeNet's space-to-depth stem on 16 channels (the engine now)
    against 12 (before), per octave size, with the kernel profile at full size; VGG16's
    conv1_1 on 3 (the engine), 4 and 8 channels; then (compile_) GoogLeNet's compiled step
    with the plain stem (before) and with the space-to-depth one (now)."""
    h, w = size
    sizes = [(round(h * 1.4 ** -k), round(w * 1.4 ** -k)) for k in (3, 2, 1, 0)]
    for sz in sizes if uncompiled else ():
        for kind in ("engine", "engine_s2d12"):
            guarded(f"octave googlenet {kind} {sz}",
                    lambda k=kind, sz=sz: variant("googlenet", device, models, k, False, sz))
    for kind in ("engine", "engine_s2d12") if uncompiled else ():
        guarded(f"profile googlenet {kind}", lambda k=kind: profile_step(
            "googlenet", device, models, k, size, top=8))
    for kind in ("engine", "engine_pad4", "engine_pad8") if uncompiled else ():
        guarded(f"variant vgg16 {kind}", lambda k=kind: variant("vgg16", device, models, k,
                                                                False, size))
    if uncompiled:
        guarded("profile vgg16 engine", lambda: profile_step("vgg16", device, models,
                                                             "engine", size, top=10))
    if compile_:  # (compile_engine's kernels may be in the cache: the daemon's, if one ran)
        guarded("variant googlenet compile_engine", lambda: variant(
            "googlenet", device, models, "compile_engine", False, size))
        guarded("profile googlenet compile_engine", lambda: profile_step(
            "googlenet", device, models, "compile_engine", size, top=12))
        guarded("variant googlenet compile", lambda: variant(
            "googlenet", device, models, "compile", False, size))
    return 0


def pools(device: torch.device, models: str, size: tuple[int, int]) -> int:
    """For the next GPU session (prepared in session 11, when the device time had run out):
    max pools on planar memory (``+pools``) in the engine's uncompiled graphs, GoogLeNet per
    octave size and VGG16 at full size; VGG16's compiled step as the engine runs it (its
    own ops compiled too, session 11), with them eager (before), with planar pools and with
    inductor's coordinate-descent tuning, and its kernel profile (what VGG16's 35 % target
    has left to win); GoogLeNet's compiled step with its ops compiled and eager."""
    h, w = size
    sizes = [(round(h * 1.4 ** -k), round(w * 1.4 ** -k)) for k in (3, 2, 1, 0)]
    for sz in sizes:
        for kind in ("engine", "engine+pools"):
            guarded(f"octave googlenet {kind} {sz}",
                    lambda k=kind, sz=sz: variant("googlenet", device, models, k, False, sz))
    guarded("profile googlenet engine+pools", lambda: profile_step(
        "googlenet", device, models, "engine+pools", size, top=8))
    for kind in ("engine", "engine+pools", "compile_engine", "compile_engine+eagerops"):
        guarded(f"variant vgg16 {kind}", lambda k=kind: variant("vgg16", device, models, k,
                                                                False, size))
    guarded("profile vgg16 compile_engine", lambda: profile_step(
        "vgg16", device, models, "compile_engine", size, top=14))
    for kind in ("compile_engine", "compile_engine+eagerops"):
        guarded(f"variant googlenet {kind}", lambda k=kind: variant(
            "googlenet", device, models, k, False, size))
    for kind in ("compile_engine+pools", "compile_engine+cdt"):  # (the slowest compiles last)
        guarded(f"variant vgg16 {kind}", lambda k=kind: variant("vgg16", device, models, k,
                                                                False, size))
    return 0


def vgg(device: torch.device, models: str, size: tuple[int, int]) -> int:
    """Where VGG16's compiled dream (34.6 % of the bf16 rate on an H100, session 14; the
    target is 35 %) spends its time: the compiled step at each octave size of Google's
    schedule with cuDNN's autotuner off (the engine) and on, and the kernel profile of the
    largest and the smallest size."""
    h, w = size
    sizes = [(round(h * 1.4 ** -k), round(w * 1.4 ** -k)) for k in (3, 2, 1, 0)]
    for sz in sizes:
        for tune in (False, True):
            guarded(f"octave vgg16 compile_engine {tune} {sz}", lambda t=tune, sz=sz: variant(
                "vgg16", device, models, "compile_engine", t, sz))
    for sz in (sizes[-1], sizes[0]):
        guarded(f"profile vgg16 compile_engine {sz}", lambda sz=sz: profile_step(
            "vgg16", device, models, "compile_engine", sz, top=16))
    return 0


def short(device: torch.device, models: str, size: tuple[int, int], compile_: bool) -> int:
    """The engine's step (with its rewrites) against the step before them, per octave size
    and for VGG16, with kernel profiles; the rewrites' step error; compile if asked."""
    h, w = size
    sizes = [(round(h * 1.4 ** -k), round(w * 1.4 ** -k)) for k in (3, 2, 1, 0)]
    guarded("profile googlenet engine", lambda: profile_step("googlenet", device, models,
                                                             "engine", size, top=12))
    guarded("host share", lambda: host_share(device, models, size))
    for sz in sizes:
        for kind in ("autocast", "engine"):
            guarded(f"octave googlenet {kind} {sz}",
                    lambda k=kind, sz=sz: variant("googlenet", device, models, k, False, sz))
    for kind in ("autocast", "engine"):
        guarded(f"variant vgg16 {kind}", lambda k=kind: variant("vgg16", device, models, k,
                                                                False, size))
    for arch in ("googlenet", "vgg16"):
        guarded(f"fused error {arch}", lambda a=arch: fused_error(a, device, models, size))
    guarded("profile googlenet engine small", lambda: profile_step(
        "googlenet", device, models, "engine", sizes[0], top=8))
    if compile_:
        for sz in (sizes[0], sizes[-1]):
            guarded(f"octave googlenet compile {sz}",
                    lambda sz=sz: variant("googlenet", device, models, "compile", False, sz))
    return 0


if __name__ == "__main__":
    sys.exit(main())
