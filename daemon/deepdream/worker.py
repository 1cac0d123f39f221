"""The daemon's workers: a thread per device that takes jobs in order of arrival, keeps its
models warm (``ModelCache``) and sends progress and results through an in-process socket,
which the main thread (server.py) forwards to the client.  Between jobs a worker gives
compile_ahead its turn and hands freed memory back; at start it preloads and warms up."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
from deepdream_protocol import messages as m

from .jobs import Job
from .modelcache import ModelCache

if TYPE_CHECKING:  # the engine (and torch) load in the worker's methods, not at import
    from .engine import DreamSettings, Progress
    from .server import Server

log = logging.getLogger("deepdream.server")

#: where the workers send their messages for the main thread to forward
OUTBOX = "inproc://deepdream-outbox"
#: what the jobs that a shutdown stops are told
SHUTTING_DOWN = "the daemon is shutting down"
#: a worker idle this long hands the last job's freed memory back to the system; sooner,
#: the next try would first fault it all in again (~0.3 s of a 4 s CPU dream at 1024x768)
RELEASE_AFTER_S = 30.0
AHEAD_POLL_S = 1.0  # how often an idle worker looks at compile_ahead's child
UNLOAD_POLL_S = 30.0  # how often an idle worker looks for models idle past --unload-after
#: compile_ahead captures (seconds each, and a job arriving meanwhile waits for them) only
#: once the last job ended this long ago: an artist often asks again right after a result
CAPTURE_AFTER_S = 10.0


class Worker(threading.Thread):
    """Runs jobs on one device, one at a time, keeping its models warm."""

    def __init__(self, server: Server, device: Any) -> None:
        super().__init__(name=f"worker-{device}", daemon=True)
        from .models import registry

        self.server = server
        self.device = device
        opts = server.opts

        def load(name: str) -> Any:
            model = registry.load(name, device, opts.models_file)
            report = getattr(model, "_accel_report", None)
            if report is not None:  # which precision, and why: users ask after speed
                log.info("model %s on %s: %s", name, device, report.summary())
            return model

        self.cache = ModelCache(load, opts.cache_mb * 2**20, opts.unload_after_min * 60,
                                version=lambda name: registry.version(name, opts.models_file))

    def run(self) -> None:
        from . import accel
        from .engine import compile_ahead

        out = self.server.ctx.socket(zmq.PUSH)
        out.connect(OUTBOX)
        try:
            self._preload()
            holding = False  # freed memory of the last job kept for the next one
            idle_since = time.monotonic()
            while True:
                wait = RELEASE_AFTER_S - (time.monotonic() - idle_since) if holding else None
                if compile_ahead.busy():  # (DEEPDREAM_COMPILE=ahead) its work, between jobs
                    if self._compile_ahead():
                        holding, idle_since = True, time.monotonic()
                    wait = AHEAD_POLL_S if wait is None else min(wait, AHEAD_POLL_S)
                if self.cache.idle_seconds > 0:  # (--unload-after) look at the models too
                    wait = UNLOAD_POLL_S if wait is None else min(wait, UNLOAD_POLL_S)
                try:
                    job = self.server.queue.get(max(wait, 0.0) if wait is not None else None)
                except TimeoutError:  # idle a while: don't sit on the last job's peak
                    if self.cache.unload_idle():  # its memory back to the system too
                        accel.release_memory()
                        accel.release_device_cache(self.device)
                    if holding and time.monotonic() - idle_since >= RELEASE_AFTER_S:
                        holding = self.server.queue.status() != ([], 0)
                        if holding:  # other workers' jobs: look again in a while
                            idle_since = time.monotonic()
                        else:
                            accel.release_memory()
                    continue
                if job is None:
                    break
                try:
                    self._run(job, out)
                finally:  # (_run's last message marks it done; this covers an escape)
                    self.server.queue.done(job)
                    self.cache.touch(getattr(job.settings, "model", ""))  # idle from its end
                    job = None  # (its pixels go now, not when the next job comes)
                    holding, idle_since = True, time.monotonic()
                    self.server.last_job_end = idle_since  # (any device's: one artist)
        finally:
            out.close(linger=0)

    def _preload(self) -> None:
        """Load, warm up and (on a GPU) ready the recent sizes of each --preload model; a
        shutdown meanwhile stops it.  (A method: the models are the cache's alone after.)"""
        from .engine.fastpath import warm_up

        for name in self.server.opts.preload:
            if self.server.queue.closed:
                return
            try:
                model = self.cache.get(name)
                # a tiny dream loads the kernels (and tunes cuDNN) before the first job
                warm_up(model, model.device)
                log.info("preloaded %s on %s and warmed it up", name, model.device)
            except Exception as exc:
                log.error("cannot preload model %s: %s", name, exc)
                continue
            self._warm_up_recent(name, model)

    def _warm_up_recent(self, name: str, model: Any) -> None:
        """Dream each remembered job of ``name`` once, on noise of its size: its graphs are
        captured (and with --compile ahead, wished for) now, not on the artist's first try."""
        import numpy as np

        from .engine import DreamSettings, dream
        from .engine.fastpath import captures

        recent = self.server.recent
        if recent is None or not captures(model.device):
            return
        for values, width, height in recent.of_model(name):
            if self.server.queue.closed:  # a shutdown meanwhile
                return
            try:
                settings = DreamSettings.from_dict({**values, "device": str(self.device)})
                noise = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
                dream(noise, model, settings)
                log.info("warmed up %s for %dx%d, the size of a recent job", name, width, height)
            except Exception as exc:  # (a settings change since, no memory, ...): a speed-up
                log.warning("cannot warm up %s for %dx%d: %s", name, width, height,
                            m.first_line(exc))

    def _compile_ahead(self) -> bool:
        """compile_ahead's turn between jobs; True when it captured graphs.  It captures
        nothing while any worker has a job, within CAPTURE_AFTER_S of the last job's end
        (the artist's next try is likeliest then), or once the daemon is stopping."""
        from .engine import compile_ahead

        server = self.server

        def hold_captures() -> bool:
            return (server.queue.closed or server.queue.status() != ([], 0)
                    or time.monotonic() - server.last_job_end < CAPTURE_AFTER_S)

        try:
            return compile_ahead.tick(self.device, hold_captures)
        except Exception:  # the jobs go on without it
            log.exception("compiling ahead failed; it is off until the daemon restarts")
            compile_ahead.stop()
            return False

    def _run(self, job: Job, out: zmq.Socket) -> None:
        from . import accel
        from .engine import Cancelled, DreamError, OutOfMemory, SettingsError
        from .models import ModelError

        def send(header: dict[str, Any], *frames: Any) -> None:
            with self.server.last_words:  # (see _op_ping)
                if header["op"] != m.PROGRESS:  # the last word: the job is over before it
                    self.server.queue.done(job)  # is said, so a ping after it says "gone"
                out.send_multipart([job.peer, m.encode_header({"job": job.id, **header}),
                                    *frames], copy=False)

        def progress(p: Any) -> None:
            send({"op": m.PROGRESS, "fraction": p.fraction, "octave": p.octave,
                  "octaves": p.octaves, "step": p.step, "steps": p.steps})

        started = time.monotonic()
        settings = dataclasses.replace(job.settings, device=str(self.device))
        out_of_memory = False
        try:
            # A first progress message says the job left the queue.
            send({"op": m.PROGRESS, "fraction": 0.0, "octave": 0, "octaves": 0, "step": 0,
                  "steps": 0})
            # Nothing to dream (from noise too, as the engine has it): the frame goes back
            # as received, unconverted and uncopied (what the transport benchmark measures)
            data = (job.pixels if settings.iterations == 0
                    else self._dreamed(job, settings, progress))
            send({"op": m.RESULT, "width": job.width, "height": job.height,
                  "format": job.format.to_wire()}, data)
            log.info("job %s done in %.2f s", job.id, time.monotonic() - started)
        except Cancelled:
            if self.server.queue.closed:  # stopped by the daemon's shutdown, not the user
                send({"op": m.ERROR, "code": m.E_SHUTDOWN, "message": SHUTTING_DOWN})
                log.info("job %s stopped: the daemon is shutting down", job.id)
            else:
                send({"op": m.CANCELLED})
                log.info("job %s cancelled", job.id)
        except OutOfMemory as exc:  # (the engine tried smaller tiles first)
            log.warning("job %s: %s", job.id, exc)
            send({"op": m.ERROR, "code": m.E_TOO_LARGE, "message": str(exc)})
        except (SettingsError, DreamError) as exc:
            send({"op": m.ERROR, "code": m.E_BAD_SETTINGS, "message": str(exc)})
        except ModelError as exc:
            send({"op": m.ERROR, "code": m.E_MODEL, "message": str(exc)})
        except Exception as exc:  # the daemon must outlive any one job
            if not accel.out_of_memory(exc):
                log.exception("job %s failed", job.id)
                send({"op": m.ERROR, "code": m.E_INTERNAL,
                      "message": f"the dream failed: {type(exc).__name__}: {m.first_line(exc)}"})
                return
            # out of memory outside the dream (the frame's conversion, the model's loading)
            out_of_memory = True
            log.warning("job %s ran out of memory: %s", job.id, m.first_line(exc)[:300])
            send({"op": m.ERROR, "code": m.E_TOO_LARGE,
                  "message": str(OutOfMemory.on(self.device, (job.height, job.width)))})
        if out_of_memory:  # here the failed job's tensors are gone with its traceback
            accel.release_device_cache(self.device)

    def _dreamed(self, job: Job, settings: DreamSettings,
                 progress: Callable[[Progress], None]) -> bytes:
        """The job's frame dreamed, as bytes in the format it came in."""
        from .engine import Cancelled, SettingsError, dream
        from .pixelformat import decode_for, decode_mask, encode

        # 8-bit frames go to the GPU as bytes and come back as bytes (pixelformat)
        image = decode_for(self.device, job.pixels, job.format, job.width, job.height)
        model = self.cache.get(settings.model)
        mask = (decode_mask(job.mask, job.mask_dtype, job.width, job.height)
                if job.mask is not None else None)
        if job.cancel.is_set():
            raise Cancelled()
        with job.guide_on_disk() as guide:
            try:
                # the engine returns a new array, so ``image`` still holds the input
                result = dream(image, model, settings if guide is None else
                               dataclasses.replace(settings, guide=guide), mask, progress,
                               job.cancel.is_set)
            except SettingsError as exc:  # named as the client named it, not as stored here
                if guide is None:
                    raise
                raise SettingsError(str(exc).replace(guide, settings.guide)) from None
        self._remember(settings, job)
        return encode(result, job.format, job.pixels, job.width, job.height, decoded=image,
                      own_alpha=settings.from_noise)

    def _remember(self, settings: DreamSettings, job: Job) -> None:
        """Note a dream whose octaves ran as graphs, for the next start's warm-up."""
        from .engine.fastpath import captures, classic_steps

        recent = self.server.recent
        if recent is not None and captures(self.device) and classic_steps(settings):
            recent.remember(settings.to_dict(), job.width, job.height)
