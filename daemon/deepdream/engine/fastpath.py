"""The fast path for an octave: its steps as captured CUDA graphs.

Per step the eager loop does: roll by a random offset, forward to the layer, backward to
the input, unroll, normalise, ``x += step * g``, clip.  Here the offsets of every step are
drawn ahead (from the same ``random.Random`` sequence the eager loop uses) and held in a
device tensor, and the roll is a gather whose indices are computed on the device from that
tensor, so no step reads anything from the host and the whole octave can be captured as a
graph.  An octave larger than the tile runs the tiled gradient (tiling.py) inside the graph,
its gather indices likewise computed on the device.  Graphs are cached per (model, shape,
objective, dtype, step, tile) with their input buffers, so a second job of the same size
only copies its pixels in and replays.

Where CUDA is absent, or capture fails, the same step runs eagerly (``run_octave_eager``;
``octave_in_one_graph`` returns False and the engine's own loop runs); on the CPU that
eager form is what the tests compare with the engine.
A one-tile octave is one replay of all its steps (progress and cancel between octaves); a
tiled octave, whose graph would grow with steps x tiles, replays a one-step graph per step.

DEEPDREAM_COMPILE=1 captures the step of a torch.compile'd (inductor) copy of the model,
its weights in the compute dtype, and the step's own roll and normalisation compiled too
(one-tile octaves; tiled ones stay uncompiled).  On an
H100 that made GoogLeNet's steps 1.45x (full size) to 1.9x (small octaves) faster, but each
new octave size first compiles for ~35 s: for zoom videos and long sessions at one image
size.  DEEPDREAM_COMPILE=ahead compiles each new size in a separate process instead
(compile_ahead.py): its jobs replay the plain graphs until the compiled one is captured
between jobs.  A daemon on an NVIDIA GPU does that by default ("auto", resolved by serve);
a one-off dream in its own process (auto there) gains nothing from it and stays plain.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from contextlib import nullcontext

import torch
from deepdream_protocol.messages import first_line
from deepdream_protocol.settings import DEFAULTS

from ..accel import compute_dtype, out_of_memory
from ..models.network import DreamModel
from ..precision import PrecisionError, compile_setting
from ..rewrites import fast_forms, hold_weights
from . import compile_ahead
from .objectives import Objective, layers_l2
from .priors import keep_in_range, normalize_gradient
from .tiling import gradient, objective_gradient, random_offsets

log = logging.getLogger("deepdream.engine")

#: DEEPDREAM_CUDA_GRAPHS=0 turns the graph path off (debugging, benchmarks of the eager loop)
ENABLED = os.environ.get("DEEPDREAM_CUDA_GRAPHS", "1") != "0"
try:
    _COMPILE_MODE = compile_setting()
except PrecisionError:  # (the command line has refused it in one line already)
    _COMPILE_MODE = None
#: DEEPDREAM_COMPILE=1 (or now) steps a torch.compile'd copy of the model (the module's text)
COMPILE = _COMPILE_MODE == "now"
#: DEEPDREAM_COMPILE=ahead: the same, each size compiled in a separate process first
COMPILE_AHEAD = _COMPILE_MODE == "ahead"


def set_compile_mode(mode: str | None) -> None:
    """How the dream steps of every model are compiled from now on: "now", "ahead" or None
    (not), as the daemon's --compile says; DEEPDREAM_COMPILE set it at import."""
    global COMPILE, COMPILE_AHEAD
    COMPILE, COMPILE_AHEAD = mode == "now", mode == "ahead"


GRAPH_CACHE_SIZE = 16  # graphs kept (a model's graphs share one pool; each has its buffers)
#: and their image buffers together within this share of the device's memory
GRAPH_BUFFER_SHARE = 1 / 16
_WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN/autograd set-up)


def draw_offsets(rng: random.Random, steps: int, size: tuple[int, int], tile: int,
                 jitter: int) -> list[tuple[int, int]]:
    """The offsets the eager loop would draw for ``steps`` steps, in its order."""
    return [random_offsets(rng, size[0], size[1], tile, jitter) for _ in range(steps)]


def rolled_index(n: int, shift: torch.Tensor, arange: torch.Tensor) -> torch.Tensor:
    """Indices ``(i + shift) mod n``: gathering with them views the image on the torus
    shifted by ``shift`` (a 0-d device tensor, so no host read)."""
    return (arange + shift).remainder(n)


def roll_gather(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) with out[..., i, j] = x[..., (i + oy) % H, (j + ox) % W], the same
    view tiling.gradient takes of a one-tile image."""
    h, w = x.shape[-2:]
    rows = rolled_index(h, oy, torch.arange(h, device=x.device))
    cols = rolled_index(w, ox, torch.arange(w, device=x.device))
    return x.index_select(-2, rows).index_select(-1, cols)


def dream_step(x: torch.Tensor, offset: torch.Tensor, model: torch.nn.Module,
               objective: Objective, step_size: float, dtype: torch.dtype | None,
               input_dtype: torch.dtype | None = None, tile: int | None = None,
               compiled_ops: bool = False) -> None:
    """One DeepDream step on ``x`` in place; ``offset`` is a (2,) int64 device tensor.
    ``dtype``: autocast; ``input_dtype``: the model's own (reduced) dtype, x cast to it;
    ``tile``: an image larger than it steps tile by tile (the model's own compute dtype);
    ``compiled_ops`` (a compiled model's one-tile step): the roll and cast before the model,
    and the unroll and normalisation after it, as torch.compile'd kernels too."""
    if tile is not None and not fits_one_tile(tuple(x.shape[-2:]), tile):
        g = gradient(x, model, objective, tile, offset, cache_enabled=False)  # type: ignore[arg-type]
        g = normalize_gradient(g)
    else:
        rolled_in, unrolled = ((_compiled_op(_rolled_in), _compiled_op(_unrolled_direction))
                               if compiled_ops else (_rolled_in, _unrolled_direction))
        xin = rolled_in(x, offset, input_dtype or x.dtype)
        g = unrolled(objective_gradient(xin, model, objective, dtype, cache_enabled=False),
                     offset)
    x.add_(g, alpha=step_size)
    keep_in_range(x)


def _rolled_in(x: torch.Tensor, offset: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The model's input: ``x`` rolled by ``offset``, in ``dtype``."""
    return roll_gather(x, offset[0], offset[1]).to(dtype)


def _unrolled_direction(g: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The step's direction: the input gradient ``g`` rolled back, float32, mean |g| = 1."""
    return normalize_gradient(roll_gather(g.float(), -offset[0], -offset[1]))


def _compiled_op(fn: Callable) -> Callable:
    """``fn`` torch.compile'd, once per process.  Around the compiled model's step these
    two are ~20 small kernels a step (index arithmetic, gathers, a cast, a norm, a divide),
    which a CUDA graph still runs one by one: compiled, they are a few."""
    with _lock:
        if fn not in _compiled_ops:
            _compiled_ops[fn] = torch.compile(fn, dynamic=False)
        return _compiled_ops[fn]


def run_octave_eager(x: torch.Tensor, model: torch.nn.Module, objective: Objective,
                     offsets: Sequence[tuple[int, int]], step_size: float,
                     on_step: Callable[[int], None] | None = None,
                     tile: int | None = None) -> torch.Tensor:
    """All of an octave's steps on ``x`` in place, eagerly, offsets kept on the device."""
    table = torch.tensor(offsets, dtype=torch.int64).to(x.device)
    dtype = compute_dtype(model, x.device)
    for s in range(len(offsets)):
        dream_step(x, table[s], model, objective, step_size, dtype, tile=tile)
        if on_step is not None:
            on_step(s)
    return x


class OctaveGraph:
    """One captured octave: static image and offset buffers plus the graph that steps them."""

    def __init__(self, model: torch.nn.Module, objective: Objective, shape: torch.Size,
                 steps: int, step_size: float, dtype: torch.dtype | None,
                 compiled: bool = False, tile: int | None = None) -> None:
        device = next(model.parameters()).device
        owner, input_dtype, ops = model, None, False
        if steps_compiled(compiled, dtype, tile):  # its weights are in dtype
            model, input_dtype, dtype, ops = compiled_model(model, dtype), dtype, None, True
        self.x = torch.empty(shape, device=device)
        self.offsets = torch.zeros(steps, 2, dtype=torch.int64, device=device)
        self.host_offsets = torch.zeros(steps, 2, dtype=torch.int64).pin_memory()
        self.copied = torch.cuda.Event()  # the pinned buffer may be rewritten after this
        self.x.uniform_()  # capture on real-looking data, never zeros
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        # rewrites.py's fast forms, in graphs only (unless found wrong for this model)
        with fast_forms() if fast_forms_used(owner) else nullcontext():
            with torch.cuda.stream(side):
                for s in range(_WARMUP_STEPS):  # (a compiled model compiles here)
                    dream_step(self.x, self.offsets[s % steps], model, objective, step_size,
                               dtype, input_dtype, tile, ops)
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=_pool(owner)):
                for s in range(steps):
                    dream_step(self.x, self.offsets[s], model, objective, step_size, dtype,
                               input_dtype, tile, ops)

    def run(self, x: torch.Tensor, offsets: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Steps ``x`` in place: copy in, replay, copy out; nothing waits on the host."""
        self.copied.synchronize()  # the previous job's upload has left the pinned buffer
        self.host_offsets.copy_(torch.tensor(offsets, dtype=torch.int64))
        self.offsets.copy_(self.host_offsets, non_blocking=True)
        self.copied.record()
        self.x.copy_(x)
        self.graph.replay()
        return x.copy_(self.x)


def steps_compiled(compiled: bool, dtype: torch.dtype | None, tile: int | None) -> bool:
    """Whether an OctaveGraph asked for ``compiled`` steps the compiled copy: one tile in a
    reduced precision (a compiled step runs none of rewrites.py's fast forms but the
    space-to-depth stem's, which compile traces as plain torch ops)."""
    return compiled and dtype is not None and tile is None


_graphs: OrderedDict[tuple, OctaveGraph | None] = OrderedDict()
_compiled: dict[tuple[int, torch.dtype], torch.nn.Module] = {}
_compiled_ops: dict[Callable, Callable] = {}  # dream_step's own ops (``_compiled_op``)
# One memory pool for all of a model's graphs: each graph's activations are freed by the end
# of its capture, and the graphs replay one at a time on one stream, so they can share the
# blocks (the image and offset buffers live outside the pool).  Without it every cached
# octave size would keep its own peak: one tile's activations each, when dreaming in tiles.
_pools: dict[int, tuple] = {}
_watched: set[int] = set()  # ids of models whose graphs go when the model goes
# The caches are shared by the workers of all devices (one thread each) and emptied by
# finalizers from any thread: their bookkeeping holds this lock (a capture does not).
_lock = threading.RLock()
# One capture at a time in the process: a compile's dynamo state is process-wide (while one
# thread compiles, another's capture would see is_compiling() and trace the wrong forms).
# With several GPUs a job's capture may so wait for another device's (rare: new sizes only).
_capture_lock = threading.Lock()


def forget(model: torch.nn.Module) -> None:
    """Drop ``model``'s cached graphs, compiled copy and memory pool (after running out of
    memory: other models', and other devices', stay)."""
    _drop(id(model))


def _forget_model(model_id: int) -> None:
    with _lock:
        _watched.discard(model_id)
        _drop(model_id)


def _drop(model_id: int) -> None:
    with _lock:
        for key in [k for k in _graphs if k[0] == model_id]:
            del _graphs[key]
        for key in [k for k in _compiled if k[0] == model_id]:
            del _compiled[key]
        _pools.pop(model_id, None)


def _pool(model: torch.nn.Module) -> tuple:
    with _lock:
        if id(model) not in _pools:
            _watch(model)
            _pools[id(model)] = torch.cuda.graph_pool_handle()
        return _pools[id(model)]


def _watch(model: torch.nn.Module) -> None:
    with _lock:
        if id(model) not in _watched:  # a later model with a recycled id must not hit
            _watched.add(id(model))
            weakref.finalize(model, _forget_model, id(model))


def compiled_model(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A torch.compile'd copy of ``model`` with its weights in ``dtype`` (no per-step weight
    casts), made once per model; it compiles at its first call for each input size."""
    key = (id(model), dtype)
    with _lock:
        if key not in _compiled:
            _watch(model)
            config = torch._dynamo.config
            # one compiled graph per octave size: more sizes than dynamo's default 8 before
            # it gives up and runs eagerly (still correct, only slower)
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(config, name):
                    setattr(config, name, max(getattr(config, name), 64))
            reduced = copy.deepcopy(model).to(dtype)
            hold_weights(reduced, None)  # (the fast forms' copies: compiled steps use none)
            _compiled[key] = torch.compile(reduced, dynamic=False)
        return _compiled[key]


def octave_graph(model: torch.nn.Module, objective: Objective, shape: torch.Size, steps: int,
                 step_size: float, dtype: torch.dtype | None,
                 objective_key: Hashable | None = None,
                 compiled: bool = False, tile: int | None = None) -> OctaveGraph | None:
    """The cached graph for this octave, captured on first use; None if capture failed
    (remembered, so a failing shape is not retried every job; not when it ran out of memory,
    which a later job may have).

    ``objective_key`` names what the objective computes (e.g. its layers and channels) so
    a new job's equal objective reuses the graph; without it only the same object does.
    ``compiled``: step a torch.compile'd copy of the model (``compiled_model``; one tile
    only); ``tile``: step tile by tile (None: the image is one tile)."""
    key = graph_key(model, objective, shape, steps, step_size, dtype, objective_key, compiled,
                    tile)
    _watch(model)
    cached = _cached(key)
    if cached is not _ABSENT:
        return cached
    try:
        with _capture_lock:
            graph: OctaveGraph | None = OctaveGraph(model, objective, shape, steps, step_size,
                                                    dtype, compiled, tile)
    except Exception as exc:  # noqa: BLE001 - any capture failure means: run eagerly
        log.warning("CUDA graph capture failed for %s (%s); running eagerly",
                    tuple(shape), first_line(exc))
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # let a half-captured stream settle before eager work
        if out_of_memory(exc):
            return None  # this time only: with memory free again, a later job captures
        if fast_forms_used(model) and not steps_compiled(compiled, dtype, tile):
            # they may be what failed: the plain forms, from now on
            log.warning("capturing with the rewritten modules' fast forms failed; %s keeps "
                        "its plain forms", getattr(model, "name", "the model"))
            model.plain_forms = True  # type: ignore[assignment]
            return octave_graph(model, objective, shape, steps, step_size, dtype,
                                objective_key, compiled, tile)
        graph = None
    budget = GRAPH_BUFFER_SHARE * _total_memory(next(model.parameters()).device)
    with _lock:
        _graphs[key] = graph
        while len(_graphs) > GRAPH_CACHE_SIZE or (len(_graphs) > 1 and _buffer_bytes() > budget):
            _graphs.popitem(last=False)  # the least recently used
    return graph


def graph_key(model: torch.nn.Module, objective: Objective, shape: Sequence[int], steps: int,
              step_size: float, dtype: torch.dtype | None, objective_key: Hashable | None,
              compiled: bool, tile: int | None) -> tuple:
    """The graph cache's key: ``octave_graph``'s arguments, the objective by its key."""
    return (id(model), objective_key if objective_key is not None else id(objective),
            tuple(shape), steps, step_size, dtype, compiled, tile)


def compiled_ahead(model: torch.nn.Module, objective: Objective, shape: torch.Size, steps: int,
                   step_size: float, dtype: torch.dtype | None,
                   objective_key: Hashable | None) -> OctaveGraph | None:
    """DEEPDREAM_COMPILE=ahead: this octave's compiled graph once compile_ahead has captured
    it; until then None, and the wish for it."""
    octave = compile_ahead.Octave(objective, shape, steps, step_size, dtype, objective_key)
    key = graph_key(model, *octave, compiled=True, tile=None)
    cached = _cached(key)
    if cached is not _ABSENT:  # (None: its capture failed, the plain graph serves)
        return cached
    compile_ahead.wish(key, model, octave)
    return None


_ABSENT = object()


def _cached(key: tuple) -> OctaveGraph | None | object:
    """The cached graph ``key`` (None: its capture failed), now the most recently used;
    _ABSENT when there is none."""
    with _lock:
        if key not in _graphs:
            return _ABSENT
        _graphs.move_to_end(key)
        return _graphs[key]


def _buffer_bytes() -> int:
    return sum(g.x.numel() * g.x.element_size() for g in _graphs.values() if g is not None)


def _total_memory(device: torch.device) -> int:
    if device.type != "cuda":
        return 1 << 62  # (no graphs are captured there)
    return torch.cuda.get_device_properties(device).total_memory


def clear_graphs() -> None:
    """Drop every cached graph and compiled copy, and their memory."""
    with _lock:
        _graphs.clear()
        _compiled.clear()
        _pools.clear()


def warm_up(model: DreamModel, device: torch.device | str, size: int = 64,
            steps: int = 2) -> None:
    """Run a tiny dream so the first job finds kernels loaded and cuDNN tuned.

    The tiny graph is captured and dropped again: what is warm is the process, not the
    cache (a job's shapes differ anyway)."""
    device = torch.device(device)
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    x = torch.rand(1, 3, size, size, device=device,
                   generator=torch.Generator(device=device).manual_seed(0))
    offsets = [(0, 0)] * steps
    capture = captures(device)
    graph = None
    if capture:
        graph = octave_graph(model, objective, x.shape, steps, 1.0 / 255,
                             compute_dtype(model, device))
    if graph is None:  # no CUDA, or the capture failed
        run_octave_eager(x, model, objective, offsets, 1.0 / 255)
    else:
        graph.run(x, offsets)
    if capture:
        with _lock:
            for key in [k for k in _graphs if k[0] == id(model) and k[2][-2:] == (size, size)]:
                del _graphs[key]
        torch.cuda.synchronize(device)


def fast_forms_used(model: torch.nn.Module) -> bool:
    """Whether ``model``'s graphs hold rewrites.py's fast forms: it was rewritten (prepare's
    report says so) and they were not turned off for it (``model.plain_forms``: a capture
    or a dream they failed)."""
    report = getattr(model, "_accel_report", None)
    return bool(getattr(report, "rewrites", None)) and not getattr(model, "plain_forms", False)


def captures(device: torch.device) -> bool:
    """Whether octaves on ``device`` run as CUDA graphs (CUDA only)."""
    return device.type == "cuda"


def fits_one_tile(size: tuple[int, int], tile: int) -> bool:
    return size[0] <= tile and size[1] <= tile


# settings that change the step or the objective away from the classic one: with any of
# them set, the engine's eager loop (engine/looks.py) runs instead
_CLASSIC = {k: DEFAULTS[k] for k in (
    "norm", "transform", "smooth", "tv", "l2", "keep_colors", "seamless", "from_noise",
    "classes", "guide", "neuron", "rank")}


def classic_steps(settings: object) -> bool:
    """True when the settings ask for nothing but the classic layer-L2 step."""
    return all(getattr(settings, k, v) == v for k, v in _CLASSIC.items())


def octave_in_one_graph(x: torch.Tensor, model: DreamModel, objective: Objective,
                        settings: object, rng: random.Random, size: tuple[int, int],
                        tile: int, step_size: float,
                        on_step: Callable[[int], None] | None = None) -> bool:
    """Run the octave's steps on ``x`` as a CUDA graph when that applies (CUDA, classic
    step) and returns True.  Returns False with ``rng`` and ``x`` untouched when it does not
    apply or capture fails, so the engine's eager loop runs the same steps.

    A one-tile octave is one replay of all its steps; a tiled one (long, and its graph
    grows with steps x tiles) replays a one-step graph per step.  ``on_step(s)`` runs after
    each replay with the last step done (0-based): progress, and a cancel by raising."""
    if not (ENABLED and captures(x.device) and classic_steps(settings)):
        return False
    ahead = random.Random()
    ahead.setstate(rng.getstate())
    steps = settings.iterations  # type: ignore[attr-defined]
    offsets = draw_offsets(ahead, steps, size, tile, settings.jitter)  # type: ignore[attr-defined]
    key = ("layers_l2", settings.layers or model.spec.default_layer,  # type: ignore[attr-defined]
           settings.channels)  # type: ignore[attr-defined]
    tiled = not fits_one_tile(size, tile)
    chunk = 1 if tiled else steps
    dtype = compute_dtype(model, x.device)
    graph = None
    if COMPILE_AHEAD and not COMPILE and not tiled and dtype is not None:
        graph = compiled_ahead(model, objective, x.shape, chunk, step_size, dtype, key)
    if graph is None:
        graph = octave_graph(model, objective, x.shape, chunk, step_size, dtype, key,
                             compiled=COMPILE, tile=tile if tiled else None)
    if graph is None:
        return False
    for start in range(0, steps, chunk):
        graph.run(x, offsets[start:start + chunk])
        if on_step is not None:
            on_step(start + chunk - 1)
    rng.setstate(ahead.getstate())
    return True
