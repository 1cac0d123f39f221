"""Compiling octave steps in the background, so compiled speed never costs a wait.

``torch.compile`` made an H100's GoogLeNet dream 1.5x faster (bench/RESULTS.md: 55 ms end to
end against 84), but it compiles for ~35 s per octave size.  Artists repeat tries at one
image size, so the fast path asks here for each octave size it meets: the first tries run the
plain captured graphs while this module's one thread compiles the step (a few steps of the
compiled model on a side stream, which is what triggers inductor), and once a size is ready
the next job captures the compiled step instead.  Nothing here captures a graph: captures
stay on the job's thread (``fastpath.OctaveGraph``, in the thread-local capture mode that
lets this thread allocate meanwhile).

A compile that fails is remembered for its size; one that fails for another reason than
memory (no inductor on this platform, say) turns background compiling off for the process,
with one line in the log.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable

from ..accel import out_of_memory

log = logging.getLogger("deepdream.engine")

QUEUED, READY, FAILED = "queued", "ready", "failed"


class BackgroundCompiler:
    """One worker thread that runs compile jobs in the order asked, each at most once."""

    def __init__(self) -> None:
        self._state: dict[Hashable, str] = {}
        self._jobs: queue.Queue[tuple[Hashable, Callable[[], None], str]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self.unavailable = ""  # why compiling is off for this process, once it is

    def state(self, key: Hashable) -> str | None:
        """QUEUED, READY, FAILED, or None (never asked)."""
        with self._lock:
            return self._state.get(key)

    def request(self, key: Hashable, compile_step: Callable[[], None], label: str = "") -> None:
        """Queue ``compile_step`` for ``key`` unless it was asked for before; ``label`` names
        it in the log."""
        with self._lock:
            if key in self._state or self.unavailable:
                return
            self._state[key] = QUEUED
            self._jobs.put((key, compile_step, label or str(key)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deepdream-compile",
                                                daemon=True)
                self._thread.start()

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Drop the states of the keys ``match`` accepts (their model is gone); a job of
        theirs still queued runs, and its result is not recorded."""
        with self._lock:
            for key in [k for k in self._state if match(k)]:
                del self._state[key]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (tests, benchmarks); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: QUEUED not in self._state.values(), timeout)

    def _run(self) -> None:
        while True:
            key, compile_step, label = self._jobs.get()
            with self._lock:  # forgotten, or compiling went off since it was queued
                skip = bool(self.unavailable) or self._state.get(key) != QUEUED
            if skip:
                with self._idle:
                    self._idle.notify_all()
                continue
            started = time.perf_counter()
            try:
                compile_step()
                outcome = READY
                log.info("compiled the step for %s in %.1f s", label,
                         time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 - a failed compile only keeps it plain
                outcome = FAILED
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if out_of_memory(exc):
                    log.warning("background compile of %s ran out of memory; it stays "
                                "uncompiled", label)
                else:
                    log.warning("background compile failed (%s): compiled steps off", reason)
                    with self._lock:
                        self.unavailable = reason
            with self._idle:
                if self._state.get(key) == QUEUED:  # (not forgotten meanwhile)
                    self._state[key] = outcome
                if self.unavailable:
                    for k, v in self._state.items():
                        if v == QUEUED:
                            self._state[k] = FAILED
                self._idle.notify_all()
