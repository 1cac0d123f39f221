"""The daemon behind ``deepdream serve``: a ZeroMQ ROUTER socket, a job queue, engine workers.

The main thread owns the ROUTER socket: it checks each request, answers the quick ones
(hello, ping, catalog, cancel) and queues dream jobs.  One worker thread per device
(worker.py) takes jobs in order of arrival and sends progress and results back through an
in-process socket; the main thread forwards them to the client, holding a job's last word
for a client that has no room for it yet.
The wire protocol is described in shared/deepdream_protocol/PROTOCOL.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from deepdream_protocol import messages as m
from deepdream_protocol.pixels import DTYPES, LAYOUTS, MASK_DTYPES, TRANSFERS, PixelFormat

from . import __version__
from .jobs import Job, JobQueue
from .recent_jobs import RecentJobs
from .security import SecurityError, check_bind, enable_curve
from .worker import OUTBOX, SHUTTING_DOWN, Worker

log = logging.getLogger("deepdream.server")

#: how long the main loop sleeps in poll before checking for a stop request.
_TICK_MS = 200
#: a job's last words, kept for a client that has no room for them just then (at most this
#: many for one client: its jobs' results, each up to a whole image)
_LAST_WORDS = frozenset({m.RESULT, m.ERROR, m.CANCELLED})
HELD_PER_CLIENT = 8
#: seconds between the reminders of their place that queued jobs get: a client that has
#: gone is only seen when a message to it finds no connection, and its queued jobs would
#: keep their places (the queue full for everyone) until the running job ended
QUEUE_ROLL_CALL = 1.0
#: how long a stopping daemon waits for its workers to end their jobs
STOP_WAIT_S = 10.0
_LEFT_RUNNING: list[Any] = []  # the contexts of workers not waited for
#: --max-pixels above this is a typo (a terapixel image alone would be 16 TB of floats).
MAX_PIXELS_LIMIT = 10**12
#: the most bytes one pixel takes on the wire: 4 channels of f32.
_MAX_PIXEL_BYTES = max(len(layout) for layout in LAYOUTS) * max(DTYPES.values())
#: an error text longer than this (quoting some other client text) is cut.
_MAX_MESSAGE_CHARS = 500


class ServeError(RuntimeError):
    """The daemon cannot start; the message is one line."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = m.DEFAULT_PORT
    models_file: str | None = None
    devices: tuple[str, ...] = ("auto",)
    preload: tuple[str, ...] = ()
    max_pixels: int = 100_000_000
    max_queue: int = 16
    cache_mb: int = 4096
    unload_after_min: float = 0.0
    curve_dir: Path | None = None
    log_file: Path | None = None
    recent_jobs: Path | None = None  # GPU: remember the last jobs, warm up for them at start

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


#: keys the client names in the log: a client's routing id is never written there
_PEER_KEY = os.urandom(16)


def _peer_name(peer: bytes) -> str:
    """A client as the log names it: a keyed hash of its routing id.  The ids themselves are
    libzmq's counter from a random start, and a peer that knows the next one can take it
    and so abort the daemon (libzmq 4.3.5 asserts when it then gives that id out again)."""
    return hashlib.blake2b(peer, digest_size=4, key=_PEER_KEY).hexdigest()


def _presets() -> dict[str, Any]:
    """Named presets for the catalog: {name: {description, settings}}."""
    from .engine import presets

    return {name: {"description": p.description, "settings": dict(p.settings)}
            for name, p in presets.PRESETS.items()}


class Server:
    """Binds the socket at construction (raising ServeError), serves in ``run()``."""

    def __init__(self, opts: ServeOptions) -> None:
        from .devices import pick_device

        self.opts = opts
        self._stop = threading.Event()
        _check_models_files(opts.models_file, opts.preload)
        self.ctx = zmq.Context()
        self.auth = None
        try:
            keys = check_bind(opts.host, opts.curve_dir)
            self.devices = [pick_device(d) for d in opts.devices]
        except (SecurityError, ValueError) as exc:
            self.ctx.term()
            raise ServeError(str(exc)) from None
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.router_mandatory = 1  # an unknown peer is an error, never a silent drop
        self.router.maxmsgsize = max_frame_bytes(opts.max_pixels)
        self.router.linger = 1000
        self.router.ipv6 = ":" in opts.host  # e.g. --bind ::1
        if keys is not None:
            self.auth = enable_curve(self.ctx, self.router, keys)
        try:
            self.router.bind(opts.endpoint)
        except zmq.ZMQError as exc:
            self._close()
            if exc.errno == zmq.EADDRINUSE:
                raise ServeError(f"{opts.endpoint} is already in use{_who_listens(opts)}; stop "
                                 "it or pick another port with --port") from None
            raise ServeError(f"cannot listen on {opts.endpoint}: {exc}") from None
        self.outbox = self.ctx.socket(zmq.PULL)
        self.outbox.bind(OUTBOX)
        self.queue = JobQueue(opts.max_queue)
        self.recent = RecentJobs(opts.recent_jobs) if opts.recent_jobs is not None else None
        self.last_job_end = -math.inf  # monotonic time the last job of any worker ended
        self.last_words = threading.Lock()  # a job marked done and its last word sent, as one
        self._slow_peers: set[bytes] = set()  # told once in the log that they lose messages
        self._held: dict[bytes, list[list[Any]]] = {}  # last words waiting for room, in order
        self.workers = [Worker(self, device) for device in self.devices]

    def stop(self) -> None:
        """Ask ``run()`` to shut down (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        log.info("deepdream %s daemon listening on %s (protocol %d, devices %s%s)", __version__,
                 self.opts.endpoint, m.PROTOCOL_VERSION, ", ".join(map(str, self.devices)),
                 ", CurveZMQ" if self.auth else "")
        for worker in self.workers:
            worker.start()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox, zmq.POLLIN)
        last_roll_call = time.monotonic()
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(_TICK_MS))
                if self.outbox in events:
                    self._forward()
                if self.router in events:
                    self._receive()
                self._send_all_held()
                if time.monotonic() - last_roll_call > QUEUE_ROLL_CALL:
                    last_roll_call = time.monotonic()
                    for job, ahead in self.queue.waiting():
                        if self.queue.known(job.key):  # (not dropped with a gone client's)
                            self._reply(job.peer, {"job": job.id}, m.ACCEPTED,
                                        position=ahead)
        finally:
            self._shutdown()

    # -- shutdown ----------------------------------------------------------------------------
    def _shutdown(self) -> None:
        log.info("shutting down")
        from .engine import compile_ahead

        compile_ahead.stop()
        self._tell_shutting_down(self.queue.close())
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self.workers:  # the running job was stopped: let it say why
            while worker.is_alive() and time.monotonic() < deadline:
                worker.join(0.05)
                self._forward()
                self._send_all_held()
        self._forward()
        self._send_all_held()
        stuck = [w for w in self.workers if w.is_alive()]
        if stuck:  # in what no cancel reaches (a model's first download): not waited for
            log.warning("%s did not stop within %g s; leaving it", stuck[0].name, STOP_WAIT_S)
            self._tell_shutting_down(self.queue.running())
        self._close(wait_for_workers=not stuck)
        log.info("stopped")

    def _tell_shutting_down(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._reply(job.peer, {"job": job.id}, m.ERROR, code=m.E_SHUTDOWN,
                        message=SHUTTING_DOWN)

    def _close(self, wait_for_workers: bool = True) -> None:
        for sock in (getattr(self, "outbox", None), self.router):
            if sock is not None:
                sock.close()
        if self.auth is not None:
            self.auth.stop()
        if wait_for_workers:  # (term waits for every socket: a stuck worker's would hang it)
            self.ctx.term()
        else:  # kept to the end of the process (collected, it would close the worker's socket
            _LEFT_RUNNING.append(self.ctx)  # under it, from this thread)

    # -- outgoing ----------------------------------------------------------------------------
    def _forward(self) -> None:
        """Pass the workers' messages on to their clients."""
        while True:
            try:
                frames = self.outbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._send(frames[0].bytes, frames[1:])

    def _send(self, peer: bytes, frames: list[Any]) -> None:
        """Send to one client without ever waiting: this loop serves everyone.

        A message finds room unless the client has left about a thousand unread (a client
        that reads takes each one as it comes).  One that finds none is dropped (the first
        drop for a client is logged), but for a job's last word (its result, error or
        cancel): that is kept, and sent once the client reads again, before anything newer.
        A message is sent whole or not at all.
        """
        if peer in self._held:
            room = self._send_held(peer)
            if room is None:  # the client is gone (or cannot be sent to)
                return
            if not room:
                self._hold_or_drop(peer, frames)  # (behind the words still waiting)
                return
        try:
            self.router.send_multipart([peer, *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self._hold_or_drop(peer, frames)
        except zmq.ZMQError as exc:
            self._send_failed(peer, exc)

    def _send_held(self, peer: bytes) -> bool | None:
        """Send the last words kept for ``peer`` while it has room: True when all went,
        False when some wait still, None when the client cannot be sent to (they go)."""
        held = self._held.get(peer, [])
        while held:
            try:
                self.router.send_multipart([peer, *held[0]], zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return False
            except zmq.ZMQError as exc:
                self._held.pop(peer, None)
                self._send_failed(peer, exc)
                return None
            held.pop(0)
        self._held.pop(peer, None)
        return True

    def _send_all_held(self) -> None:
        for peer in list(self._held):
            self._send_held(peer)

    def _hold_or_drop(self, peer: bytes, frames: list[Any]) -> None:
        first = frames[0]
        header = m.decode_header(first.bytes if isinstance(first, zmq.Frame) else first)
        waiting = len(self._held.get(peer, ()))
        last_word = header.get("op") in _LAST_WORDS and "job" in header
        if last_word and waiting < HELD_PER_CLIENT:
            self._held.setdefault(peer, []).append(frames)
            return
        if last_word:  # (never silently)
            log.warning("client %s has %d last words waiting; that of job %s is dropped",
                        _peer_name(peer), waiting, header["job"])
        if peer not in self._slow_peers:
            self._slow_peers.add(peer)
            log.warning("client %s is not reading its messages: those it has no room for "
                        "are dropped, but for its jobs' last words (said once per client)",
                        _peer_name(peer))

    def _send_failed(self, peer: bytes, exc: zmq.ZMQError) -> None:
        if exc.errno == zmq.EHOSTUNREACH:
            self._client_gone(peer)
        else:
            log.error("cannot send to client %s: %s", _peer_name(peer), exc)

    def _client_gone(self, peer: bytes) -> None:
        flagged, gone = self.queue.drop_peer(peer)
        self._slow_peers.discard(peer)
        self._held.pop(peer, None)
        if flagged or gone:  # (each message that cannot reach it comes here: said once)
            log.info("client %s disconnected; %d running job(s) cancelled, %d queued dropped",
                     _peer_name(peer), flagged, len(gone))

    def _reply(self, peer: bytes, request: dict[str, Any], op: str, *frames: Any,
               **fields: Any) -> None:
        """Answer ``request``, echoing its req and job ids so the client can pair them."""
        header = {"op": op, **fields}
        for key, kind in (("req", int), ("job", str)):
            if isinstance(request.get(key), kind) and not isinstance(request.get(key), bool):
                header[key] = request[key]
        self._send(peer, [m.encode_header(header), *frames])

    # -- incoming ----------------------------------------------------------------------------
    def _receive(self) -> None:
        for _ in range(100):  # bounded, so the outbox is not starved by a flood of requests
            if self._stop.is_set():
                return
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._handle(frames)

    def _handle(self, frames: list[zmq.Frame]) -> None:
        peer = frames[0].bytes
        if len(frames) < 2:
            log.warning("dropped an empty message from %s", _peer_name(peer))
            return
        header: dict[str, Any] = {}
        try:
            header = m.decode_header(frames[1].buffer)
            m.validate_request(header)
            handler = getattr(self, f"_op_{header['op']}")
            handler(peer, header, frames[2:])
        except m.ProtocolError as exc:
            message = _cut(str(exc))
            log.warning("bad request from %s: %s", _peer_name(peer), message)
            self._reply(peer, header, m.ERROR, code=exc.code, message=message)
        except Exception as exc:
            log.exception("request from %s failed", _peer_name(peer))
            self._reply(peer, header, m.ERROR, code=m.E_INTERNAL,
                        message=f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _no_data(header: dict[str, Any], data: list[Any]) -> None:
        if data:
            raise m.ProtocolError(m.E_BAD_FRAME,
                                  f"{header['op']} takes no data frames, got {len(data)}")

    def _op_hello(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> None:
        self._no_data(header, data)
        self._reply(peer, header, m.HELLO, version=m.PROTOCOL_VERSION,
                    server=f"deepdream {__version__}", pid=os.getpid(),
                    devices=[str(d) for d in self.devices],
                    max_pixels=self.opts.max_pixels, layouts=list(LAYOUTS),
                    dtypes=list(DTYPES), transfers=list(TRANSFERS))

    def _op_ping(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> None:
        self._no_data(header, data)
        job = header.get("job")
        if job is not None and not isinstance(job, str):
            raise m.ProtocolError(m.E_BAD_FIELD, "ping: field 'job' must be str, got "
                                  f"{type(job).__name__}")
        # A job marked done has its last word in the outbox (the two happen under this lock),
        # and that word goes out first: a pong saying "gone" never overtakes it.  (Not held
        # for ever: a worker blocked sending to a full outbox would hold it.)
        held = self.last_words.acquire(timeout=1.0)
        try:
            self._forward()
            running, queued = self.queue.status()
            # job_known: a client whose daemon was restarted learns its job is gone
            known = {} if job is None else {"job_known": self.queue.known((peer, job))}
        finally:
            if held:
                self.last_words.release()
        models = sorted({n for w in self.workers for n in w.cache.names()})
        self._reply(peer, header, m.PONG, state="busy" if running else "idle",
                    current=running[0] if running else None, running=running,
                    queued=queued, models=models, **known)

    def _op_catalog(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> None:
        from .models import ModelError, registry

        self._no_data(header, data)
        try:
            specs = registry.available(self.opts.models_file)
        except ModelError as exc:
            raise m.ProtocolError(m.E_MODEL, str(exc)) from None
        models = {name: {"layers": dict(s.layers), "default_layer": s.default_layer,
                         "description": s.description, "source": s.source}
                  for name, s in specs.items()}
        try:
            presets = _presets()
        except Exception as exc:  # presets are a nicety; the catalog must still answer
            log.warning("cannot list presets: %s", exc)
            presets = {}
        self._reply(peer, header, m.CATALOG, models=models, presets=presets)

    def _op_cancel(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> None:
        self._no_data(header, data)
        key = (peer, header["job"])
        if not self.queue.known(key):
            raise m.ProtocolError(m.E_UNKNOWN_JOB, f"no job {m.shown(header['job'])} to cancel "
                                  "(finished already?)")
        queued = self.queue.cancel(key)
        if queued is not None:  # a running job answers when the engine has stopped
            self._reply(peer, header, m.CANCELLED)
            log.info("job %s cancelled while queued", queued.id)

    def _op_submit(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> None:
        job = self._check_submit(peer, header, data)
        try:
            ahead = self.queue.put(job)
        except ValueError as exc:
            raise m.ProtocolError(m.E_BUSY, str(exc)) from None
        self._reply(peer, header, m.ACCEPTED, position=ahead)
        # (a quick job may already have finished and logged so; the order is cosmetic)
        log.info("job %s from %s: %dx%d %s, model %s, %d ahead", job.id, _peer_name(peer),
                 job.width, job.height, job.format, job.settings.model, ahead)

    def _check_submit(self, peer: bytes, header: dict[str, Any], data: list[Any]) -> Job:
        from .engine import DreamSettings
        from .models import ModelError, registry

        mask_dtype, guide_name = header.get("mask"), header.get("guide_file")
        wanted = ["pixels", *["mask"] * (mask_dtype is not None),
                  *["guide image"] * (guide_name is not None)]
        if len(data) != len(wanted):
            raise m.ProtocolError(m.E_BAD_FRAME, f"submit needs {len(wanted)} data frame(s) "
                                  f"({', '.join(wanted)}), got {len(data)}")
        try:
            fmt = PixelFormat.from_wire(header["format"])
        except ValueError as exc:
            raise m.ProtocolError(m.E_BAD_FIELD, f"submit: {exc}") from None
        width, height = header["width"], header["height"]
        if width <= 0 or height <= 0:
            raise m.ProtocolError(m.E_BAD_FIELD, f"image size {width}x{height} is not positive")
        if m.counted_pixels(width, height) > self.opts.max_pixels:
            raise m.ProtocolError(
                m.E_TOO_LARGE, m.too_large_message(width, height, self.opts.max_pixels))
        pixels = data[0].buffer
        if len(pixels) != fmt.frame_size(width, height):
            raise m.ProtocolError(m.E_BAD_FRAME, f"pixel frame is {len(pixels)} bytes; "
                                  f"{width}x{height} {fmt} needs {fmt.frame_size(width, height)}")
        mask = None
        if mask_dtype is not None:
            if mask_dtype not in MASK_DTYPES:
                raise m.ProtocolError(m.E_BAD_FIELD, f"mask sample type must be one of "
                                      f"{MASK_DTYPES}, not {mask_dtype!r}")
            mask = data[1].buffer
            size = width * height * DTYPES[mask_dtype]
            if len(mask) != size:
                raise m.ProtocolError(m.E_BAD_FRAME, f"mask frame is {len(mask)} bytes; "
                                      f"{width}x{height} {mask_dtype} needs {size}")
        guide = None
        if guide_name is not None:
            guide = data[-1].buffer
            if not guide_name:
                raise m.ProtocolError(m.E_BAD_FIELD, "submit: field 'guide_file' is empty")
            if len(guide) > m.MAX_GUIDE_BYTES:
                raise m.ProtocolError(m.E_TOO_LARGE, m.guide_too_large_message(
                    m.shown(guide_name), len(guide)))
        values = dict(header["settings"])
        values.pop("device", None)  # the daemon decides where jobs run
        if guide_name is not None:
            values["guide"] = guide_name  # (the file that came with it is what is read)
        try:
            settings = DreamSettings.from_dict(values)  # fills in a named preset
        except Exception as exc:  # any bad value is the client's mistake, told in one line
            raise m.ProtocolError(m.E_BAD_SETTINGS, str(exc)) from None
        if settings.guide and guide is None and self.opts.curve_dir is not None:
            # other computers' clients may not probe this one's files (nor would their
            # paths mean anything here)
            raise m.ProtocolError(m.E_BAD_SETTINGS, "this daemon serves other computers: a "
                                  "guide image must come with the job, not as a path on "
                                  "the daemon's disk (update the client)")
        try:
            registry.get_spec(settings.model, self.opts.models_file)
        except ModelError as exc:
            raise m.ProtocolError(m.E_MODEL, str(exc)) from None
        if self.queue.known((peer, header["job"])):
            raise m.ProtocolError(m.E_DUPLICATE_JOB, f"job id {m.shown(header['job'])} is in use")
        return Job(peer, header["job"], settings, fmt, width, height, pixels, mask,
                   mask_dtype or "u8", header.get("preview", 0), guide)


def max_frame_bytes(max_pixels: int) -> int:
    """The daemon's per-frame size limit (libzmq drops a client's connection, unanswered, for a
    bigger frame): twice the largest frame an image of ``max_pixels`` makes, and at least
    64 MiB, so that an image somewhat over the limit still arrives and is answered too_large."""
    largest = max_pixels * _MAX_PIXEL_BYTES
    return min(max(2 * largest, m.MIN_FRAME_LIMIT), 2**63 - 1)


def _check_models_files(models_file: str | None, preload: Sequence[str] = ()) -> None:
    """Raise ServeError unless every models file the daemon would read exists and parses
    (otherwise every request would fail with the same complaint), and declares each model
    to ``preload``."""
    from .models import ModelError, registry

    try:
        specs = registry.available(models_file)
    except ModelError as exc:
        raise ServeError(str(exc)) from None
    for name in preload:
        try:
            registry.get_spec(name, specs=specs)
        except ModelError as exc:
            raise ServeError(f"--preload: {exc}") from None


def _cut(message: str) -> str:
    """``message`` cut to _MAX_MESSAGE_CHARS (it may quote a client's text at length)."""
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return f"{message[:_MAX_MESSAGE_CHARS]}... ({len(message):,} characters)"


def _who_listens(opts: ServeOptions) -> str:
    """' by another deepdream daemon' when one answers there, else ''."""
    from deepdream_protocol.client import Client, DaemonError

    try:
        with Client(opts.endpoint.replace("0.0.0.0", "127.0.0.1"), timeout=1.0) as client:
            client.hello()
        return " by another deepdream daemon"
    except (DaemonError, ValueError):
        return ""
