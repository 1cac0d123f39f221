"""Compiling ahead (DEEPDREAM_COMPILE=ahead, CUDA): torch.compile's slow first compile of an
octave size runs in a separate process, so the daemon's own compile of it is a short load
from inductor's on-disk caches, made between jobs.

Why a process: compiling on a daemon thread (session 6, bench/RESULTS.md) held the GIL for
~35 s per size, slowed the tries meanwhile from 0.07 s to over a second, and broke the
captures of compiled steps (dynamo's FX-tracing flag is process-global).

The flow, all of it driven by the worker of the model's device:
1. A job's octave replays the plain graph; the fast path ``wish``es for its compiled one.
2. Between jobs, ``tick`` starts a child (``python -m deepdream.engine.compile_ahead SPEC``,
   at a lower priority) that loads the same model and compiles its step at the wished sizes.
   It prints the model's fingerprint and inductor's cache counts as one JSON line.
3. When the child succeeded for a model with the daemon's own fingerprint (the same
   network, prepared the same way), ``tick`` captures the compiled graph of one ready size
   at a time while no job waits: a compile that finds every kernel in the cache.
4. Later jobs of that size replay the compiled graph (``fastpath.octave_in_one_graph``).
A child that fails, or a different fingerprint, leaves the plain graphs in place (logged).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import IO, NamedTuple

import torch

from .objectives import Objective

log = logging.getLogger("deepdream.engine")

NICENESS = 10  # the child's: the daemon's jobs and the user's painting go first
CHILD_TIMEOUT_S = 900.0  # per size: a child still compiling after this is killed
MAX_FAILURES = 3  # children failing in a row (no compiler, no memory, ...) turn it off
MAX_CAPTURES = 2  # captures of one size (one that ran out of memory is tried again once)
KEPT_WISHES = 256  # wishes remembered (failed ones are never retried; done ones may go)


class Octave(NamedTuple):
    """``fastpath.octave_graph``'s arguments after the model, for its compiled graph."""

    objective: Objective
    shape: torch.Size
    steps: int
    step_size: float
    dtype: torch.dtype
    objective_key: Hashable


@dataclass(eq=False)
class Wish:
    """One octave's compiled graph, wished for: what ``fastpath.octave_graph`` captures."""

    model: weakref.ref
    device: torch.device
    octave: Octave
    state: str = "waiting"  # -> "compiling" -> "ready" -> "done", or "failed"
    captures: int = 0

    @property
    def shape(self) -> list[int]:
        return list(self.octave.shape)

    @property
    def layers(self) -> list[str]:
        return sorted(self.octave.objective.layers)


@dataclass(eq=False)
class _Child:
    proc: subprocess.Popen
    files: tuple[IO[str], IO[str]]  # its stdout and stderr
    wishes: list[Wish]
    fingerprint: str
    started: float = field(default_factory=time.monotonic)


_wishes: dict[Hashable, Wish] = {}
_child: _Child | None = None
_failures = 0  # children that failed in a row
_stopped = False  # for good: the daemon is shutting down
_lock = threading.RLock()


def fingerprint(model: torch.nn.Module) -> str:
    """What makes two processes' compiles of ``model`` the same: its modules (after
    accel.prepare's fold and rewrites) and its tensors' shapes, dtypes and layouts."""
    h = hashlib.sha256(repr(model).encode())
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if ".held_" not in name:  # (the fast forms' copies: the compiled step has none)
            h.update(f"{name}{tuple(t.shape)}{t.dtype}{t.stride()}".encode())
    return h.hexdigest()[:16]


def supported(devices: Iterable[torch.device]) -> bool:
    """Whether compiling ahead can help a daemon dreaming on ``devices``: an NVIDIA GPU among
    them (the compiled steps run as CUDA graphs; ROCm's are untried here), new enough for
    Triton (compute capability 7.0), and Triton, torch.compile's GPU compiler (Linux wheels
    of torch bring it; a child that still fails, e.g. without a C compiler, is logged and
    turns it off)."""
    import importlib.util

    gpus = [d for d in devices if d.type == "cuda"]
    return (bool(gpus) and torch.version.hip is None
            and importlib.util.find_spec("triton") is not None
            and all(torch.cuda.get_device_capability(d) >= (7, 0) for d in gpus))


def wish(key: Hashable, model: torch.nn.Module, octave: Octave) -> None:
    """Ask for the compiled graph ``key`` (``fastpath.graph_key`` of ``octave``, compiled)."""
    with _lock:
        if _stopped:
            return
        known = _wishes.get(key)
        if known is not None and known.model() is model:  # (else: a new model, same id)
            if known.state == "done":  # its graph was evicted (or its capture ran out of
                # memory): the cache still serves it
                known.state = "ready" if known.captures < MAX_CAPTURES else "failed"
            return
        if _failures >= MAX_FAILURES:
            return
        done = [k for k, w in _wishes.items() if w.state == "done"]
        for old in done[:max(0, len(_wishes) - KEPT_WISHES)]:  # the oldest done ones go
            del _wishes[old]
        _wishes[key] = Wish(weakref.ref(model), next(model.parameters()).device, octave)


def busy() -> bool:
    """Whether ``tick`` has work: a child to start or watch, or a ready size to capture."""
    with _lock:
        return _child is not None or any(
            w.state in ("waiting", "ready") for w in _wishes.values())


def states() -> dict[str, int]:
    """How many wishes are in each state (for logs, checks and tests)."""
    with _lock:
        return dict(Counter(w.state for w in _wishes.values()))


def tick(device: torch.device, job_waiting: Callable[[], bool]) -> bool:
    """The worker of ``device``, between jobs: collect a finished child, start the next
    one, and (while ``job_waiting()`` is false) capture ready sizes of its own device.
    Returns whether it captured any."""
    with _lock:  # the wishes of unloaded models go (here: a finalizer could run mid-loop)
        for key in [k for k, w in _wishes.items() if w.model() is None]:
            del _wishes[key]
    _collect()
    _start()
    device = _indexed(device)
    captured = False
    while not job_waiting():
        with _lock:
            ready = next((k for k, w in _wishes.items()
                          if w.state == "ready" and w.device == device), None)
        if ready is None:
            break
        _capture(ready)
        captured = True
    return captured


def _indexed(device: torch.device | str) -> torch.device:
    """``device`` with its index (a worker's "cuda" is its models' "cuda:0")."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def stop() -> None:
    """For good (the daemon is shutting down): kill a running child, forget every wish and
    take no more."""
    global _stopped
    with _lock:
        _stopped = True
        _clear()


def reset() -> None:
    """Kill a running child, forget every wish and failure, and take wishes again."""
    global _stopped, _failures
    with _lock:
        _clear()
        _stopped, _failures = False, 0


def _clear() -> None:
    global _child
    if _child is not None:
        _kill(_child)
        for f in _child.files:
            f.close()
        _child = None
    _wishes.clear()


def _kill(child: _Child) -> None:
    """The child and its own children (inductor's compile workers)."""
    with contextlib.suppress(OSError):
        if hasattr(os, "killpg"):
            os.killpg(child.proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):  # (gone already, or no process groups)
        child.proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.proc.wait(10)


def _collect() -> None:
    global _child, _failures
    with _lock:
        child = _child
        if child is None:
            return
        took = time.monotonic() - child.started
        hung = child.proc.poll() is None
        if hung and took < CHILD_TIMEOUT_S * len(child.wishes):
            return
        if hung:  # (a compile this long is stuck, or starved of CPU)
            _kill(child)
        _child = None
    out, err = (_read(f) for f in child.files)
    said = _said(out) if child.proc.returncode == 0 else {}
    if hung:
        err = f"no result after {_duration(took)}"
    with _lock:
        if said.get("fingerprint") == child.fingerprint:
            state, _failures = "ready", 0
            log.info("compiled ahead: %d sizes in %.0f s (cache: %s hits, %s misses)",
                     len(child.wishes), took, said.get("hits"), said.get("misses"))
        else:
            state = "failed"
            _failures += not said  # (a different model is not the machine's failure)
            why = ("its model differs from the daemon's" if said
                   else (err.strip().splitlines() or [f"exit {child.proc.returncode}"])[-1])
            log.warning("compiling ahead failed (%s); those sizes keep their plain graphs "
                        "(deepdream serve --compile off stops trying)", why[:300])
            if _failures >= MAX_FAILURES:
                log.warning("compiling ahead is off: %d compiles failed in a row",
                            _failures)
                for w in _wishes.values():
                    if w.state == "waiting":
                        w.state = "failed"
        for w in child.wishes:
            w.state = state


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _said(out: str) -> dict:
    """The child's JSON line (its last), or {} when there is none."""
    try:
        said = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return said if isinstance(said, dict) else {}


def _read(f: IO[str]) -> str:
    with f:
        f.seek(0)
        return f.read()


def _start() -> None:
    global _child
    with _lock:
        if _child is not None:  # (after stop() there are no wishes)
            return
        first = next((w for w in _wishes.values() if w.state == "waiting"), None)
        model = None if first is None else first.model()
        if model is None:  # (none waits, or its model is gone: tick drops its wishes)
            return
        batch = [w for w in _wishes.values() if w.state == "waiting"
                 and w.model() is model and w.octave.dtype == first.octave.dtype]
        spec = child_spec(model, first.device, first.octave.dtype,
                          [(w.shape, w.layers) for w in batch])
        files: list[IO[str]] = []
        try:
            # files, not pipes: a chatty compile would fill a pipe and wait on it for good
            files = [tempfile.TemporaryFile("w+", errors="replace") for _ in range(2)]
            # its own session: a kill reaches inductor's compile workers too
            proc = subprocess.Popen(child_command(spec), stdin=subprocess.DEVNULL,
                                    stdout=files[0], stderr=files[1], text=True,
                                    env=_child_env(), start_new_session=True)
        except OSError as exc:
            for f in files:
                f.close()
            log.warning("cannot start compiling ahead: %s", exc)
            for w in batch:
                w.state = "failed"
            return
        for w in batch:
            w.state = "compiling"
        _child = _Child(proc, (files[0], files[1]), batch, fingerprint(model))
        log.info("compiling %d octave sizes of %s ahead, in process %d",
                 len(batch), model.name, proc.pid)


def child_command(spec: dict) -> list[str]:
    return [sys.executable, "-m", "deepdream.engine.compile_ahead", json.dumps(spec)]


#: the daemon's process id, in the child's environment (see ``_go_with_the_daemon``)
PARENT_VAR = "DEEPDREAM_COMPILE_PARENT"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the parent's import path, so the child imports this same package
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env[PARENT_VAR] = str(os.getpid())
    return env


def _go_with_the_daemon() -> None:
    """End this child once the daemon that started it is gone: killed outright (SIGKILL,
    out of memory) it cannot stop it, and the compile would run on for its hour, holding
    the GPU, beside the next daemon's own child.  (POSIX: the child is handed to another
    parent then; a Windows daemon's children are not, and are not watched.)"""
    parent = os.environ.get(PARENT_VAR, "")
    if os.name != "posix" or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def child_spec(model: torch.nn.Module, device: torch.device, dtype: torch.dtype,
               sizes: list[tuple[list[int], list[str]]]) -> dict:
    """What the child needs to load ``model`` as the daemon did and compile its step."""
    spec = model.spec  # type: ignore[attr-defined]
    return {"model": spec.name,
            "models_file": None if spec.source == "built-in" else spec.source,
            "device": str(device), "dtype": str(dtype).removeprefix("torch."),
            "sizes": [[shape, layers] for shape, layers in sizes]}


def _capture(key: Hashable) -> None:
    from . import fastpath

    with _lock:
        w = _wishes.get(key)
        if w is None:  # (forgotten meanwhile)
            return
        w.state, w.captures = "done", w.captures + 1
        model = w.model()
    if model is None:
        return
    misses = _inductor_count("fxgraph_cache_miss")
    started = time.monotonic()
    graph = fastpath.octave_graph(model, *w.octave, compiled=True)
    missed = _inductor_count("fxgraph_cache_miss") - misses
    log.log(logging.WARNING if missed else logging.INFO,
            "compiled graph for %s: %s in %.1f s%s", tuple(w.shape),
            "captured" if graph is not None else "not captured", time.monotonic() - started,
            f" ({missed} kernels were not in the cache: compiled here)" if missed else "")


def compile_sizes(spec: dict) -> dict:
    """The child's work: load the model as the daemon does, compile its step at each size
    (``fastpath.dream_step`` on the compiled copy, as ``OctaveGraph`` warms it up)."""
    from ..models import registry
    from . import fastpath
    from .objectives import layers_l2

    device = torch.device(spec["device"])
    dtype = getattr(torch, spec["dtype"])
    model = registry.load(spec["model"], device, spec["models_file"])
    compiled = fastpath.compiled_model(model, dtype)
    for shape, layers in spec["sizes"]:
        objective = layers_l2(tuple((layer, 1.0) for layer in layers))
        x = torch.rand(shape, device=device)
        offset = torch.zeros(2, dtype=torch.int64, device=device)
        fastpath.dream_step(x, offset, compiled, objective, 1.0 / 255, None, dtype,
                            compiled_ops=True)
    return {"fingerprint": fingerprint(model), "hits": _inductor_count("fxgraph_cache_hit"),
            "misses": _inductor_count("fxgraph_cache_miss")}


def _inductor_count(name: str) -> int:
    """Inductor's count ``name`` in this process (looked up afresh: dynamo may replace
    its counters)."""
    return int(torch._dynamo.utils.counters["inductor"][name])


def main(argv: list[str]) -> int:
    """``python -m deepdream.engine.compile_ahead SPEC``: one JSON line out, exit 0."""
    _go_with_the_daemon()
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    print(json.dumps(compile_sizes(json.loads(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
