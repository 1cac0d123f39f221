"""Making a loaded model fast on its device without changing what it computes.

``prepare(model)`` folds eval-mode BatchNorm into the convolution before it, switches the
weights (and, through a pre-hook, every input) to channels_last where that helps, sets the
CPU thread counts and picks the compute dtype.  One rule on every device: the device's
reduced precision (bf16/fp16 autocast on CUDA and MPS; bf16 on a CPU with native bf16
matrix units) is used when one dream step's direction under it stays as close to float32's
as rounding the photo to 8 bits moves float32's own step (``precision_check``), else
float32.  The choice is stored on the model as ``model.compute_dtype`` (tiling.gradient
reads it; None = float32).  DEEPDREAM_PRECISION=float32 turns reduced precision off.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import os
import platform
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from deepdream_protocol.messages import first_line
from torch import nn

from . import rewrites as _rewrites
from .devices import autocast_dtype
from .precision import precision_setting, threads_setting

#: a folded model's output may differ from the unfolded one by this relative L2 error
#: (float32 rounding of the rescaled weights; measured ~1e-6)
FOLD_TOLERANCE = 1e-4
#: float32 re-orderings (fold, channels_last) keep one step's direction within this
FP32_STEP_TOLERANCE = 1e-2
#: Reduced precision is accepted when one step's direction (the input gradient) differs
#: from float32's by at most QUANTISATION_RATIO x the change that rounding the input to
#: 8 bits (uniform noise of +-half a level) makes to float32's own step -- or by at most
#: ABSOLUTE_TOLERANCE, whichever is larger.  Dreams are chaotic: even a 1/65535 change
#: of the photo moves float32's finished detail by 30-70 %, so a step-level bound against
#: a floor the photo itself already carries is what can be held.  Measured on this
#: project's CPU (bench/RESULTS.md): bf16 is 0.8-1.3x that floor on random GoogLeNet and
#: VGG16 and on HED's trained VGG16, and the whole dream then lands as far from float32's
#: as the 8-bit-rounded photo's float32 dream does, with the layer's gain within 2 %.
QUANTISATION_RATIO = 1.5
ABSOLUTE_TOLERANCE = 0.05

_UNSET = object()


@dataclass
class AccelReport:
    """What ``prepare`` did, for logs and benchmarks."""

    folded_bn: int = 0
    channels_last: bool = False
    compute_dtype: str = "float32"
    threads: int = 0
    rewrites: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs: the precision first, then what else was done."""
        parts = [self.compute_dtype]
        if self.channels_last:
            parts.append("channels_last")
        if self.folded_bn:
            parts.append(f"{self.folded_bn} BatchNorms folded")
        parts += self.rewrites
        if self.threads:
            parts.append(f"{self.threads} threads")
        return ", ".join(parts) + "".join(f"; {note}" for note in self.notes)


SYSFS_CPUS = Path("/sys/devices/system/cpu")


def physical_cores(allowed: Iterable[int] | None = None, sysfs: Path = SYSFS_CPUS) -> int:
    """Physical cores among the CPUs this process may use (hyper-threads share one core's
    matrix units).  Linux counts the allowed CPUs' distinct (package, core) pairs, so an
    affinity of one hyper-thread per core (taskset, containers) counts every core; where
    that is unknown, the logical CPUs over /proc/cpuinfo's threads per core."""
    if allowed is None and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
    cpus = sorted(allowed) if allowed is not None else []
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            cores.add(tuple((topology / name).read_text().strip()
                            for name in ("physical_package_id", "core_id")))
        except OSError:
            break
    else:
        if cores:
            return len(cores)
    logical = len(cpus) or os.cpu_count() or 1
    return max(1, logical // _threads_per_core())


def _threads_per_core() -> int:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return 1
    siblings = cores = 0
    for line in text.splitlines():
        if line.startswith("siblings") and not siblings:
            siblings = int(line.split(":")[1])
        elif line.startswith("cpu cores") and not cores:
            cores = int(line.split(":")[1])
    return max(1, siblings // cores) if siblings and cores else 1


def set_threads(cores: int | None = None) -> int:
    """Intra-op threads = physical cores (or DEEPDREAM_THREADS, to leave cores to the
    painting program), inter-op 1 (the dream is one chain of ops)."""
    n = cores or threads_setting() or physical_cores()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before the first parallel op; the default is then kept
    return n


def cpu_has_native_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16: bf16 matrix work runs natively rather than emulated."""
    cpu = torch.cpu
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except RuntimeError:
                pass
    return False


# --- the host allocator ---------------------------------------------------------------------
# glibc hands big blocks (above a threshold that starts at 128 KiB) to mmap and returns
# freed heap tops to the kernel, so each CPU step re-faults every activation's pages:
# ~50k page faults, ~7 % of a 1024x768 GoogLeNet step on 2 cores (bench/RESULTS.md).
# Within a job freed blocks are kept for the next step; release_memory() hands them back
# after the job, so an idle daemon does not hold its peak.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_BLOCK_MAX = 32 << 20  # glibc's largest allowed mmap threshold on 64-bit


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError, AttributeError):
            lib = ctypes.CDLL(None)
            if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                return lib
    return None


@functools.cache  # process-wide: once is enough, however many models load
def keep_step_memory() -> bool:
    """Keep freed host blocks (up to 32 MiB each) for reuse instead of unmapping them.
    Returns False where the C library is not glibc (nothing to tune)."""
    lib = _glibc()
    if lib is None:
        return False
    ok = lib.mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCK_MAX) == 1
    return bool(lib.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and ok)


def release_memory() -> None:
    """Return free heap pages (without glibc: none) and torch's cached pinned host memory
    (the staging of frames uploaded to a GPU, as big as the biggest frame) to the system."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
    empty_host_cache = getattr(getattr(torch, "accelerator", None), "empty_host_cache", None)
    if empty_host_cache is not None:  # (not in every torch this runs on)
        with contextlib.suppress(RuntimeError):  # a build without an accelerator
            empty_host_cache()


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device (CUDA, MPS), a CUDA library (cuDNN, cuBLAS, cuFFT), the
    CPU allocator or numpy ran out of memory."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("out of memory", "can't allocate memory", "ALLOC_FAILED"))


def release_device_cache(device: torch.device) -> None:
    """Hand the blocks torch keeps cached on ``device`` back to the driver (after running
    out of memory, so a retry in smaller pieces can use them)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


# --- BatchNorm folding --------------------------------------------------------------------


def fold_batchnorm(model: nn.Module, example: torch.Tensor,
                   run: Callable[[nn.Module, torch.Tensor], object] | None = None) -> int:
    """Fold each BatchNorm2d whose only input is a Conv2d's output into that conv, in place.

    Which conv feeds which BN is found by running ``example`` once and matching tensors, so
    it follows the real forward order whatever the module nesting.  Returns the count.
    """
    if model.training:
        return 0  # batch statistics, not running ones: nothing to fold
    run = run or (lambda m, x: m(x))
    producer: dict[int, nn.Conv2d] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []
    uses: dict[int, int] = {}
    hooks = []

    def conv_out(mod: nn.Module, _args: tuple, out: torch.Tensor) -> None:
        producer[id(out)] = mod  # type: ignore[assignment]
        keep.append(out)  # keep alive so ids stay unique

    def bn_in(mod: nn.Module, args: tuple) -> None:
        conv = producer.get(id(args[0]))
        if conv is not None:
            pairs.append((conv, mod))  # type: ignore[arg-type]

    def any_in(mod: nn.Module, args: tuple) -> None:
        for a in args:
            if isinstance(a, torch.Tensor) and id(a) in producer:
                uses[id(producer[id(a)])] = uses.get(id(producer[id(a)]), 0) + 1

    keep: list[torch.Tensor] = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_out))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(bn_in))
        if not list(m.children()):
            hooks.append(m.register_forward_pre_hook(any_in))
    try:
        with torch.no_grad():
            run(model, example)
    finally:
        for h in hooks:
            h.remove()
    parents = {id(child): (parent, name) for parent in model.modules()
               for name, child in parent.named_children()}
    folded = 0
    for conv, bn in pairs:
        # a conv output read by anything besides its BN (a leaf that sees it) can't be folded
        if uses.get(id(conv), 0) != 1 or not bn.track_running_stats or bn.running_var is None:
            continue
        _fold_into(conv, bn)
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Identity())
        folded += 1
    return folded


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = bn.running_var.add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        w = conv.weight
        conv.weight.copy_(w * scale.view(-1, *([1] * (w.dim() - 1))))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias.to(w.dtype), requires_grad=False)


# --- the model as a whole -----------------------------------------------------------------


def _to_channels_last(_mod: nn.Module, args: tuple) -> tuple:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x, *args[1:])


def _layers(model: nn.Module) -> tuple[list[str], list[str]]:
    """(every dreamable layer, so a run reaches the whole trunk; the default layer)."""
    spec = getattr(model, "spec", None)
    if spec is None:
        return [], []
    every = list(spec.layers)
    return every, [getattr(spec, "default_layer", "") or every[-1]]


def _run_model(layers: list[str]) -> Callable[[nn.Module, torch.Tensor], object]:
    return lambda m, x: m(x, layers) if layers else m(x)


def relative_error(a: torch.Tensor, ref: torch.Tensor) -> float:
    """‖a − ref‖ / ‖ref‖ in float64 (inf when ref is zero and a is not)."""
    a64, r64 = a.detach().double(), ref.detach().double()
    den = r64.norm().item()
    num = (a64 - r64).norm().item()
    return num / den if den else (0.0 if num == 0 else float("inf"))


def prepare(model: nn.Module, *, channels_last: bool | None = None,
            precision: str | None = None, example_size: int = 96,
            rewrites: bool | None = None) -> AccelReport:
    """Make ``model`` (a DreamModel or any eval-mode module) fast on its device, in place.

    ``channels_last`` None: on for CUDA and for the CPU (oneDNN's blocked convolutions).
    ``rewrites`` None: rewrites.py's kernel-saving rewrites on CUDA (DEEPDREAM_REWRITES=0:
    off), kept where the model computes the same within float32 re-ordering (``_rewrite``).
    ``precision``: "auto" (reduced precision where ``precision_check`` accepts it),
    "float32", or "bfloat16"/"float16" (forced, no check); None reads DEEPDREAM_PRECISION.
    """
    if getattr(model, "_accel_report", None) is not None:
        return model._accel_report  # type: ignore[return-value]
    precision = precision_setting(precision)  # a bad name fails before the model is touched
    report = AccelReport()
    device = _device_of(model)
    if device.type == "cpu":
        report.threads = set_threads()
        if keep_step_memory():
            report.notes.append("freed host blocks kept between steps")
    every, layers = _layers(model)
    example = torch.rand(1, 3, example_size, example_size, device=device,
                         generator=torch.Generator(device=device).manual_seed(0))
    run = _run_model(every)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    reference = copy.deepcopy(model) if has_bn else model
    report.folded_bn = fold_batchnorm(model, example, run) if has_bn else 0
    if report.folded_bn:
        err = _output_error(model, reference, example, run)
        if err > FOLD_TOLERANCE:  # something unusual in the graph: undo
            _take_modules(model, reference)
            report.folded_bn = 0
            report.notes.append(f"BatchNorm fold off: relative error {err:.1e}")
    del reference  # (before the rewrites copy the model again)
    use_cl = device.type in ("cuda", "cpu") if channels_last is None else channels_last
    if use_cl:
        model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(_to_channels_last)
        report.channels_last = True
    if rewrites_wanted(device, rewrites):
        _rewrite(model, example, every, report)
    dtype = _choose_dtype(model, device, layers, precision, report)
    if report.rewrites and dtype is not None:  # no weight casts in the fast forms' steps
        _rewrites.hold_weights(model, dtype)
    model.compute_dtype = dtype  # type: ignore[assignment]
    report.compute_dtype = str(dtype).removeprefix("torch.") if dtype else "float32"
    model._accel_report = report  # type: ignore[assignment]
    return report


def rewrites_wanted(device: torch.device, rewrites: bool | None = None) -> bool:
    """``rewrites``, else: on CUDA unless DEEPDREAM_REWRITES=0."""
    return (_rewrites.ENABLED and device.type == "cuda") if rewrites is None else rewrites


def _rewrite(model: nn.Module, example: torch.Tensor, every: list[str],
             report: AccelReport) -> None:
    """rewrites.rewrite on a copy, whose modules the model takes only if, in their fast
    forms, every layer's output and one step's direction at the deepest layer stay within
    FP32_STEP_TOLERANCE of the model's own, and a step in the device's reduced precision
    runs (and is finite where the model's own is); else the model stays as it is, with a
    note."""
    rewritten = copy.deepcopy(model)
    done = _rewrites.rewrite(rewritten)
    if not done:
        return
    if report.channels_last:  # (new weights, e.g. the space-to-depth stem's)
        rewritten.to(memory_format=torch.channels_last)
    deepest = every[-1:]
    reduced = reduced_dtype(_device_of(model))
    try:
        with _rewrites.fast_forms():
            err = max(_output_error(rewritten, model, example, _run_model(every)),
                      _output_error(rewritten, model, example, _run_model(deepest)))
            with exact_float32():
                err = max(err, relative_error(_step_direction(rewritten, example, deepest),
                                              _step_direction(model, example, deepest)))
            if reduced is not None and not bool(torch.isfinite(_step_direction(
                    rewritten, example, deepest, reduced)).all()) and bool(torch.isfinite(
                    _step_direction(model, example, deepest, reduced)).all()):
                err = float("inf")  # (a plain step non-finite too is the precision's case)
    except Exception as exc:  # noqa: BLE001 - e.g. no cuDNN engine for a fused call
        report.notes.append(f"rewrites off: {first_line(exc)[:200]}")
        return
    # Outputs too are held to the step's 1e-2, not the fold's 1e-4: whether cuDNN's fused
    # engines honour the TF32 switch was not measured, and TF32 moves outputs ~1e-3.  A
    # wrongly wired rewrite is off by O(1).
    if err > FP32_STEP_TOLERANCE:
        report.notes.append(f"rewrites off: relative error {err:.1e}")
        return
    _take_modules(model, rewritten)
    report.rewrites = done


def _step_direction(model: nn.Module, x0: torch.Tensor, layers: list[str],
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """One dream step's direction: the input gradient of the layer's mean square (the
    engine's objective, to the bit), under ``dtype`` autocast (None: float32)."""
    from .engine.objectives import mean_square  # (the engine imports this module)

    device = x0.device
    x = x0.clone().requires_grad_(True)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = _run_model(layers)(model, x)
        act = next(iter(out.values())) if isinstance(out, dict) else out
        loss = mean_square(act)
    (g,) = torch.autograd.grad(loss, x)
    return g


def reduced_dtype(device: torch.device) -> torch.dtype | None:
    """The device's fast reduced precision: the GPU's autocast type; bf16 on a CPU with
    native bf16 matrix units (emulated bf16 is slower than float32); else None."""
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return autocast_dtype(device)


def _choose_dtype(model: nn.Module, device: torch.device, layers: list[str], precision: str,
                  report: AccelReport) -> torch.dtype | None:
    if precision == "float32":
        return None
    if precision != "auto":
        return getattr(torch, precision)
    dtype = reduced_dtype(device)
    if dtype is None:
        return None
    check = precision_check(model, dtype, layers)
    name = str(dtype).removeprefix("torch.")
    report.notes.append(f"{name} step error {check.error:.3f}, "
                        f"8-bit floor {check.floor:.3f}: {'on' if check.ok else 'off'}")
    return dtype if check.ok else None


@dataclass(frozen=True)
class PrecisionCheck:
    """One step's direction under a reduced dtype against float32 (``error``), next to
    what 8-bit rounding of the input changes in float32's own step (``floor``)."""

    error: float
    floor: float

    @property
    def bound(self) -> float:
        return max(ABSOLUTE_TOLERANCE, QUANTISATION_RATIO * self.floor)

    @property
    def ok(self) -> bool:
        return self.error <= self.bound


def _device_of(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


_FLAGS_LOCK = threading.RLock()


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """Float32 as float32 on CUDA: no TF32 in convolutions or matrix products.

    PyTorch lets cuDNN use TF32 for float32 convolutions by default; its 10-bit mantissa
    moves GoogLeNet's output by ~1.4e-3 (H100), so the fold check below, run with it,
    rejected every fold on a GPU and left GoogLeNet's 57 BatchNorms unfolded (~100 extra
    kernels a step).  The checks compare float32 results, so they run in true float32."""
    with _FLAGS_LOCK:  # process-wide flags; the daemon loads models on a thread per device
        conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def _output_error(model: nn.Module, reference: nn.Module, x: torch.Tensor,
                  run: Callable[[nn.Module, torch.Tensor], object]) -> float:
    with torch.no_grad(), exact_float32():
        a, b = run(model, x), run(reference, x)
    if isinstance(a, dict):
        return max(relative_error(a[k], b[k]) for k in a)  # type: ignore[index]
    return relative_error(a, b)  # type: ignore[arg-type]


def _take_modules(model: nn.Module, source: nn.Module) -> None:
    """``model``'s top-level modules replaced by ``source``'s (a copy of it, changed)."""
    for (name, _), (_, module) in zip(model.named_children(), source.named_children(),
                                      strict=True):
        setattr(model, name, module)


def compute_dtype(model: nn.Module, device: torch.device) -> torch.dtype | None:
    """The autocast dtype to dream ``model`` with: what ``prepare`` chose, else the device's
    default (devices.autocast_dtype)."""
    chosen = getattr(model, "compute_dtype", _UNSET)
    return autocast_dtype(device) if chosen is _UNSET else chosen  # type: ignore[return-value]


def precision_check(model: nn.Module, dtype: torch.dtype, layers: list[str],
                    size: int = 128) -> PrecisionCheck:
    """Compare one dream step (the input gradient of the layer's L2) under ``dtype``
    autocast with float32's, on a seeded random image, and measure the float32 floor."""
    device = _device_of(model)
    gen = torch.Generator(device=device)
    start = torch.rand(1, 3, size, size, device=device, generator=gen.manual_seed(1))
    rounding = (torch.rand(start.shape, device=device, generator=gen.manual_seed(2)) - 0.5) / 255

    def direction(x0: torch.Tensor, dt: torch.dtype | None) -> torch.Tensor:
        with _rewrites.fast_forms():  # what a captured step computes, where rewritten
            return _step_direction(model, x0, layers, dt)

    with exact_float32():  # the reference is float32's own step, not TF32's
        exact = direction(start, None)
        floor = relative_error(direction(start + rounding, None), exact)
    return PrecisionCheck(error=relative_error(direction(start, dtype), exact), floor=floor)
