"""The client the plug-ins, ``deepdream dream --daemon`` and the installer use to talk to the
daemon.

Two ways to drive it:

* blocking: ``Client().dream(settings, pixels, width, height, fmt)`` returns the result bytes;
* from a GUI event loop: ``job = client.submit(..., on_progress=..., on_result=...)``, watch
  ``client.fileno()`` for readability (Qt ``QSocketNotifier``, GLib ``io_add_watch``) and call
  ``client.process_events()`` when it fires.  With pyzmq the fd is edge-triggered: also call
  ``process_events()`` when ``client.pending()`` is true after sending, or from a short timer
  (e.g. 100 ms), so no message waits unseen.

Callbacks get the job first: ``on_progress(job, info)`` (info: fraction, octave, octaves,
step, steps), ``on_result(job, data)``, ``on_error(job, exc)``, ``on_cancelled(job)``,
``on_preview(job, info, data)`` (reserved: version 1 daemons send no previews, so it never
fires).  Pure Python: pyzmq optional, no numpy.

A daemon that ends under a job (killed, crashed, out of memory) closes its connection, and
the job fails at once with ``DaemonUnavailable`` (``stopped_message``) from ``dream``, or
through ``on_error`` from ``process_events``/``watch``: with pyzmq a socket monitor reports
the close, which ``process_events`` reads, so call it from a timer too.  A daemon that is
only silent is pinged after ``SILENCE_BEFORE_PING`` and judged by its answer.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import messages as m
from .launcher import resolve_endpoint
from .pixels import DTYPES, MASK_DTYPES, PixelFormat
from .settings import missing_guide
from .transport import (
    ConnectionDropped,
    CurveKeys,
    Transport,
    TransportClosed,
    choose,
    open_transport,
)
from .zmtp import HungUp, listening, on_this_computer, parse_tcp_endpoint

#: where a client's CurveZMQ keys go, and why a daemon may need them
KEYS_WHERE = "(DEEPDREAM_CURVE_DIR; see 'deepdream keygen --help')"
KEYS_HINT = f"a daemon started with --curve answers only clients with a key it knows {KEYS_WHERE}"

#: bytes a second that a daemon on another computer is reached at, at least (100 Mbit/s
#: Wi-Fi): a job is given this long to cross before its acceptance is waited for
SLOWEST_LINK = 10_000_000
#: the daemon is polled with a ping when a running job has been silent this long (a closed
#: connection needs no ping: it fails the job at once).
SILENCE_BEFORE_PING = 10.0


class DaemonError(RuntimeError):
    """The daemon answered with an error; ``code`` is one of the protocol's error codes."""

    def __init__(self, message: str, code: str = m.E_INTERNAL) -> None:
        super().__init__(message)
        self.code = code


class DaemonUnavailable(DaemonError):
    """No daemon answers at the endpoint, or the connection was lost."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


class BadEndpoint(DaemonError):
    """The endpoint or transport setting cannot be used (a setting to fix, not a daemon fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "bad_endpoint")


class DaemonIncompatible(DaemonError):
    """The daemon speaks another protocol version."""


class DaemonBusy(DaemonError):
    """The daemon's job queue is full."""


class JobCancelled(DaemonError):
    """The job was cancelled before it finished."""

    def __init__(self, message: str = "the dream was cancelled") -> None:
        super().__init__(message, "cancelled")


def error_from_reply(header: Mapping[str, Any]) -> DaemonError:
    code = str(header.get("code", m.E_INTERNAL))
    # one line whatever the daemon sent: the plug-ins show it in a status line or a message
    message = " ".join(str(header.get("message", "")).split()) or "the daemon reported an error"
    if code == m.E_VERSION:
        return DaemonIncompatible(message, code)
    if code == m.E_BUSY:
        return DaemonBusy(message, code)
    return DaemonError(message, code)


ConfigReader = Callable[[], Mapping[str, Any]]


def _read_config() -> Mapping[str, Any]:
    from .launcher import read_config

    return read_config()


def configured_curve(config: ConfigReader = _read_config) -> CurveKeys | None:
    """The CurveZMQ keys for a daemon on another computer: DEEPDREAM_CURVE_DIR, else the
    config's ``curve_dir``, a folder holding that daemon's ``server.key`` and one
    ``NAME.key_secret`` (what ``deepdream keygen --client NAME`` made); None when neither is
    set.  A folder that cannot serve is a one-line ValueError naming it."""
    folder = os.environ.get("DEEPDREAM_CURVE_DIR") or config().get("curve_dir")
    if not folder:
        return None
    where = Path(str(folder)).expanduser()
    secrets = sorted(where.glob("*.key_secret")) if where.is_dir() else []
    secrets = [p for p in secrets if p.name != "server.key_secret"]  # (the daemon's own)
    if not (where / "server.key").is_file() or len(secrets) != 1:
        raise ValueError(f"the CurveZMQ key folder {where} must hold the daemon's server.key "
                         "and one NAME.key_secret (made by 'deepdream keygen --client NAME')")
    try:
        return CurveKeys.from_files(str(where / "server.key"), str(secrets[0]))
    except ImportError:
        raise ValueError("CurveZMQ keys need pyzmq, which this Python lacks") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the CurveZMQ keys in {where}: {exc}") from None


Callback = Callable[..., Any] | None


@dataclass(eq=False)
class Job:
    """One submitted dream.  ``state``: sent, queued, running, done, error or cancelled."""

    id: str
    width: int
    height: int
    format: PixelFormat
    state: str = "sent"
    position: int | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: bytes | None = None
    error: DaemonError | None = None
    on_progress: Callback = None
    on_result: Callback = None
    on_error: Callback = None
    on_cancelled: Callback = None
    on_preview: Callback = None
    # Client.watch's liveness ping: its request number and when it went out
    ping_req: int = 0
    ping_sent: float | None = None
    cancel_asked: bool = False
    #: the bytes its frames carry: the daemon accepts it once they have all crossed
    sent_bytes: int = 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled")


def stopped_message(endpoint: str, with_job: bool = True) -> str:
    """The one line for a daemon whose connection closed under us (its process ended)."""
    lost = " and this dream with it" if with_job else ""
    return (f"lost the deepdream daemon at {endpoint}: it stopped answering (its connection "
            f"closed){lost}; try again once it runs ('deepdream serve')")


def pixel_limit(hello: Mapping[str, Any]) -> int | None:
    """The daemon's ``max_pixels`` from a ``hello`` reply; None when it gives no usable one."""
    limit = hello.get("max_pixels")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit
    return None


class Client:
    """A DEALER connection to the daemon; connects on first use."""

    def __init__(self, endpoint: str | None = None, transport: str = "auto",
                 timeout: float = 5.0, curve: CurveKeys | None = None) -> None:
        config = functools.cache(_read_config)  # the config file is read once at most
        try:
            self.endpoint = resolve_endpoint(endpoint, config)
            parse_tcp_endpoint(self.endpoint)
            self.transport = choose(transport)
            self._curve = curve if curve is not None else configured_curve(config)
        except ValueError as exc:  # an address, a config file or keys that cannot serve
            raise BadEndpoint(str(exc)) from None
        self.timeout = timeout
        self._sock: Transport | None = None
        self._jobs: dict[str, Job] = {}
        self._replies: dict[int, dict[str, Any]] = {}
        self._req = itertools.count(1)
        self._heard = time.monotonic()
        #: the daemon's pixel limit once ``hello`` has told it; larger jobs are refused here.
        self.max_pixels: int | None = None

    # -- connection --------------------------------------------------------------------------
    def _transport(self) -> Transport:
        if self._sock is None:
            try:
                self._sock = open_transport(self.endpoint, self.transport, self.timeout,
                                            self._curve)
            except TransportClosed as exc:  # it listens, but the handshake failed
                why = f"; {KEYS_HINT}" if isinstance(exc, HungUp) else ""
                raise DaemonUnavailable(
                    f"cannot talk to the deepdream daemon at {self.endpoint}: {exc}{why}"
                ) from None
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise DaemonUnavailable(f"no deepdream daemon at {self.endpoint} ({exc}); "
                                        "start it with 'deepdream serve'") from None
            except ValueError as exc:  # an address or keys this transport cannot use
                raise BadEndpoint(str(exc)) from None
        return self._sock

    def _forget_a_gone_daemon(self) -> None:
        """Idle, and the daemon it knew has gone (perhaps restarted since, with another
        limit): nothing of ours was lost, so start afresh rather than blame the next request
        on it."""
        if self._sock is not None and not self._jobs and self._sock.dropped():
            self._disconnect()

    def _send(self, header: dict[str, Any], *frames: Any) -> None:
        self._forget_a_gone_daemon()
        try:
            self._transport().send([m.encode_header(header), *frames], self.timeout)
        except TransportClosed as exc:
            raise self._lost(exc) from None

    def fileno(self) -> int:
        """A socket fd to watch for readability; then call ``process_events()``."""
        return self._transport().fileno()

    def pending(self) -> bool:
        """True when messages wait for ``process_events()`` even though the fd is quiet.

        pyzmq's fd is edge-triggered: after sending, a reply may already sit in the queue
        with no new readability event.  Check this after ``submit``/``cancel`` (or poll it
        from a timer) and call ``process_events()`` when it is true.
        """
        return self._sock is not None and self._sock.pending()

    def _silence_hint(self) -> str:
        """What to look at when the daemon does not answer.  A daemon on another computer
        takes CurveZMQ keys (serve refuses other addresses without), and it cannot tell a
        client without them: it stays silent."""
        if self._curve is None and not on_this_computer(self.endpoint):
            return f"is it running, and does this computer have its keys? {KEYS_WHERE}"
        if self._curve is None and listening(self.endpoint):  # (a --curve daemon is silent)
            return f"something listens there but does not answer (stuck, or: {KEYS_HINT})"
        return "is it running? (start it with 'deepdream serve')"

    def close(self) -> None:
        """Drop the connection at once (linger 0); unfinished jobs get no more callbacks."""
        self._disconnect()
        self._jobs.clear()

    def _disconnect(self) -> None:
        """Close the socket; the next request connects afresh, perhaps to a daemon started
        since with another limit, so the limit is asked again before a large frame."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.max_pixels = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------
    def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        req = next(self._req)
        self._send({"op": op, "req": req, **fields})
        deadline = time.monotonic() + self.timeout
        while req not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DaemonUnavailable(
                    f"no answer from the deepdream daemon at {self.endpoint} within "
                    f"{self.timeout:g} s; {self._silence_hint()}")
            self._wait(left)
        reply = self._replies.pop(req)
        if reply["op"] == m.ERROR:
            raise error_from_reply(reply)
        return reply

    def hello(self) -> dict[str, Any]:
        """Check the daemon is there and speaks our protocol version; returns its details.

        Its ``max_pixels`` is kept while connected: a later ``submit`` of a larger image is
        refused at once (``submit`` asks itself before sending a frame over
        ``MIN_FRAME_LIMIT``, which libzmq would otherwise drop with the connection).
        """
        reply = self._request(m.HELLO, client="deepdream_protocol")
        if reply.get("version") != m.PROTOCOL_VERSION:
            raise DaemonIncompatible(
                f"the daemon speaks protocol {reply.get('version')}, this plug-in "
                f"{m.PROTOCOL_VERSION}; update the older one", m.E_VERSION)
        limit = pixel_limit(reply)
        if limit is not None:
            self.max_pixels = limit
        return reply

    def ping(self) -> dict[str, Any]:
        """The daemon's state: ``state`` (idle/busy), ``current`` (a running job id or None),
        ``running`` (running job ids), ``queued`` (how many wait), ``models`` (loaded).

        (``job_known`` comes back only for a ping that names a job; ``watch`` sends those.)
        """
        return self._request(m.PING)

    def catalog(self) -> dict[str, Any]:
        """``models`` (name -> {layers: {name: channels}, ...}) and ``presets``."""
        return self._request(m.CATALOG)

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, settings: Mapping[str, Any], pixels: bytes | bytearray | memoryview,
               width: int, height: int, fmt: PixelFormat | Mapping[str, str],
               mask: bytes | bytearray | memoryview | None = None, mask_dtype: str = "u8",
               on_progress: Callback = None, on_result: Callback = None,
               on_error: Callback = None, on_cancelled: Callback = None,
               on_preview: Callback = None, preview: int = 0) -> Job:
        """Send a dream job; returns at once.

        ``preview`` and ``on_preview`` are reserved: the field is sent when non-zero, but a
        version 1 daemon ignores it and sends no previews.
        """
        fmt = fmt if isinstance(fmt, PixelFormat) else PixelFormat.from_wire(dict(fmt))
        size = _checked_size("pixel", pixels, fmt.frame_size(width, height),
                             f"{width}x{height} {fmt}")
        if mask is not None:
            if mask_dtype not in MASK_DTYPES:
                raise ValueError(f"mask sample type must be one of {MASK_DTYPES}")
            size = max(size, _checked_size("mask", mask, width * height * DTYPES[mask_dtype],
                                           f"{width}x{height} {mask_dtype}"))
        self._forget_a_gone_daemon()  # (and its limit)
        if self.max_pixels is None and size > m.MIN_FRAME_LIMIT:
            # a frame over the daemon's limit would cost the connection, unanswered (libzmq
            # drops it): learn the limit first; no frame of an image within it exceeds it
            self.hello()
        if self.max_pixels is not None and m.counted_pixels(width, height) > self.max_pixels:
            # the daemon would refuse it after the whole frame had crossed the wire
            raise DaemonError(m.too_large_message(width, height, self.max_pixels),
                              m.E_TOO_LARGE)
        settings = dict(settings)
        guide = read_guide(settings.get("guide"))
        header: dict[str, Any] = {"op": m.SUBMIT, "job": uuid.uuid4().hex,
                                  "settings": settings, "format": fmt.to_wire(),
                                  "width": width, "height": height}
        frames: list[Any] = [pixels]
        if mask is not None:
            header["mask"] = mask_dtype
            frames.append(mask)
        if guide is not None:  # the daemon's disk may not have it: the file goes along
            settings["guide"] = header["guide_file"] = guide[0]
            frames.append(guide[1])
        if preview:
            header["preview"] = int(preview)
        job = Job(header["job"], width, height, fmt, on_progress=on_progress,
                  on_result=on_result, on_error=on_error, on_cancelled=on_cancelled,
                  on_preview=on_preview,
                  sent_bytes=sum(memoryview(f).nbytes for f in frames))
        self._send(header, *frames)
        # on the books once sent: a send that failed told its caller by raising, and a job
        # the daemon never had must not fail later with the connection (nor keep an idle
        # client from reconnecting).  Nothing is read before this, so no reply is missed.
        self._jobs[job.id] = job
        self._heard = time.monotonic()
        return job

    def cancel(self, job: Job | str) -> None:
        """Ask the daemon to stop a job; ``on_cancelled`` fires when it has."""
        job_id = job if isinstance(job, str) else job.id
        if job_id in self._jobs:
            self._jobs[job_id].cancel_asked = True
            self._send({"op": m.CANCEL, "job": job_id})

    def process_events(self) -> int:
        """Handle every message already received, firing callbacks; never blocks.  After a
        lost connection (its jobs already failed) there is nothing to handle until the next
        request connects again."""
        handled = 0
        if self._sock is None:
            return handled
        sock = self._sock
        while True:
            try:
                frames = sock.recv(0.0)
            except TransportClosed as exc:
                self._lost(exc)
                return handled
            if frames is None:
                return handled
            self._dispatch(frames)
            handled += 1
            if self._sock is not sock:
                # a callback closed the client (a host's progress slot that ran its event
                # loop, where the result was handled and the client closed): the rest of
                # this connection is no one's
                return handled

    def _wait(self, timeout: float) -> None:
        """Block up to ``timeout`` for one message, then handle all that are there."""
        if self._sock is None:  # a callback closed the client: a new connection would
            raise DaemonUnavailable("the connection to the daemon was closed")  # hear nothing
        try:
            frames = self._sock.recv(timeout)
        except TransportClosed as exc:
            raise self._lost(exc) from None
        if frames is not None:
            self._dispatch(frames)
            self.process_events()

    def _lost(self, exc: Exception) -> DaemonUnavailable:
        """The connection is gone: every unfinished job fails with the returned error.

        A connection that closed (``ConnectionDropped``) means the daemon's process ended:
        what it had of ours is gone even if a new daemon answers on the same port by now
        (pyzmq would reconnect to it), so the jobs fail at once rather than after the
        liveness pings."""
        self._disconnect()
        if isinstance(exc, ConnectionDropped):
            error = DaemonUnavailable(stopped_message(self.endpoint, bool(self._jobs)))
        else:
            error = DaemonUnavailable(f"lost the deepdream daemon at {self.endpoint} ({exc})")
        for job in list(self._jobs.values()):
            if job.id in self._jobs:  # (an on_error before may have closed the client)
                self._finish(job, "error", error=error)
        return error

    def _dispatch(self, frames: list[Any]) -> None:
        self._heard = time.monotonic()
        try:
            header = m.decode_header(frames[0])
        except m.ProtocolError:
            return  # not from a daemon of ours; nothing sensible to do with it
        op = header["op"]
        req = header.get("req")
        # a pong is always a reply (a ping about a job gets the job id echoed back)
        if isinstance(req, int) and (op == m.PONG or op in (m.HELLO, m.CATALOG, m.ERROR)
                                     and "job" not in header):
            self._replies[req] = header
            return
        job = self._jobs.get(str(header.get("job")))
        if job is None:
            return  # a late message for a job we no longer track
        if op == m.ACCEPTED:
            job.state, job.position = "queued", header.get("position")
        elif op == m.PROGRESS:
            job.state, job.progress = "running", header
            _call(job.on_progress, job, header)
        elif op == m.PREVIEW and len(frames) > 1:
            _call(job.on_preview, job, header, bytes(frames[1]))
        elif op == m.RESULT:
            self._result(job, header, frames)
        elif op == m.ERROR:
            if job.cancel_asked and header.get("code") == m.E_UNKNOWN_JOB:
                # the cancel crossed the job's end: the daemon forgets a job as its last
                # word (result, error) goes out, and that word is still on its way
                return
            self._finish(job, "error", error=error_from_reply(header))
        elif op == m.CANCELLED:
            self._finish(job, "cancelled")

    def _result(self, job: Job, header: dict[str, Any], frames: list[Any]) -> None:
        expected = job.format.frame_size(job.width, job.height)
        if len(frames) < 2 or memoryview(frames[1]).nbytes != expected:
            error = DaemonError("the daemon's result has the wrong size", m.E_BAD_FRAME)
            self._finish(job, "error", error=error)
        else:
            self._finish(job, "done", result=bytes(frames[1]))

    def _finish(self, job: Job, state: str, result: bytes | None = None,
                error: DaemonError | None = None) -> None:
        self._forget(job)
        job.state, job.result, job.error = state, result, error
        if state == "done":
            _call(job.on_result, job, result)
        elif state == "error":
            _call(job.on_error, job, error)
        else:
            _call(job.on_cancelled, job)

    def watch(self, job: Job) -> None:
        """Check, without blocking, that the daemon still has ``job``; raises
        DaemonUnavailable (and forgets the job) when it never accepted it, stopped answering
        or restarted and lost it.  ``dream`` calls it while it waits; a caller driving
        ``process_events`` from its own loop calls it from there.

        It first handles what has arrived, as ``process_events`` does (callbacks may fire),
        so a closed connection (the daemon's process ended) is noticed here at once: the job
        then fails through ``on_error`` and this returns without raising."""
        if job.finished:
            return
        # what arrived first (a result just before the daemon exited) is handled first; a
        # connection that closed fails the job now, before any ping could go out to a daemon
        # restarted on the same port
        self.process_events()
        if job.finished or job.id not in self._jobs:  # (or a callback closed the client)
            return
        now = time.monotonic()
        pong = self._replies.pop(job.ping_req, {})  # req numbers start at 1: 0 finds none
        if pong.get("job_known") is False:  # absent from an older daemon: taken as alive
            self._give_up(job, f"the deepdream daemon at {self.endpoint} restarted and lost "
                               "this dream; try again")
        quiet = now - self._heard
        # (pyzmq's send only queues: a large layer to a daemon on another computer is still
        # crossing the network when the client's timeout has passed, and a ping waits
        # behind it)
        crossing = job.sent_bytes / SLOWEST_LINK if job.state == "sent" else 0.0
        if job.state == "sent" and quiet > self.timeout + crossing:
            self._give_up(job, f"the deepdream daemon at {self.endpoint} did not accept the "
                               f"job within {round(self.timeout + crossing, 1):g} s; "
                               f"{self._silence_hint()}")
        if quiet > max(SILENCE_BEFORE_PING, self.timeout) + crossing:
            if job.ping_sent is None or job.ping_sent < self._heard:
                job.ping_req = next(self._req)  # with the job: the pong says if it knows it
                self._send({"op": m.PING, "req": job.ping_req, "job": job.id})
                job.ping_sent = now
            elif now - job.ping_sent > self.timeout:
                self._give_up(job, f"the deepdream daemon at {self.endpoint} stopped answering")

    def _give_up(self, job: Job, message: str) -> None:
        self._forget(job)
        if not self._jobs:  # (nothing else rides on it) the connection goes, and what may
            self._disconnect()  # still wait in it: a daemon started later must not dream
        raise DaemonUnavailable(message)  # a job reported as failed

    def _forget(self, job: Job) -> None:
        """Drop ``job`` and any pong to its liveness ping still waiting to be read."""
        self._jobs.pop(job.id, None)
        self._replies.pop(job.ping_req, None)

    def dream(self, settings: Mapping[str, Any], pixels: bytes | bytearray | memoryview,
              width: int, height: int, fmt: PixelFormat | Mapping[str, str],
              mask: bytes | bytearray | memoryview | None = None, mask_dtype: str = "u8",
              on_progress: Callback = None, should_cancel: Callable[[], bool] | None = None,
              timeout: float | None = None) -> bytes:
        """Submit and wait for the result (``timeout``: overall limit in seconds, None: none).

        Raises DaemonUnavailable if the daemon does not accept the job or stops answering,
        JobCancelled after ``should_cancel()`` returned true, DaemonError for its errors.
        """
        job = self.submit(settings, pixels, width, height, fmt, mask, mask_dtype,
                          on_progress=on_progress)
        started = time.monotonic()
        cancel_sent = None
        while not job.finished:
            now = time.monotonic()
            if timeout is not None and now - started > timeout and cancel_sent is None:
                self.cancel(job)
                cancel_sent = now
            if should_cancel is not None and cancel_sent is None and should_cancel():
                self.cancel(job)
                cancel_sent = now
            self.watch(job)  # (handles what arrived: the result may be in by now)
            if job.finished or job.id not in self._jobs:
                break  # a daemon that exits after sending it must not fail it by closing
                # (and a callback that closed the client ends the wait: nothing comes)
            if cancel_sent is not None and now - cancel_sent > self.timeout:
                self._forget(job)
                break
            self._wait(0.1)
        if job.state == "done" and job.result is not None:
            return job.result
        if job.state == "error" and job.error is not None:
            raise job.error
        if timeout is not None and cancel_sent is not None and (
                should_cancel is None or not should_cancel()):
            raise DaemonError(f"the dream did not finish within {timeout:g} s", "timeout")
        raise JobCancelled()


def read_guide(path: object) -> tuple[str, bytes] | None:
    """The guide image file a job's settings name, as (its name, its bytes) to send along;
    None when none is named.  DaemonError (``bad_settings``, one line) when it cannot be
    read.  (Not a str: the daemon's settings check answers that.)"""
    if not path or not isinstance(path, str):
        return None
    file = Path(path).expanduser()
    try:
        if not file.is_file():
            raise DaemonError(missing_guide(path), m.E_BAD_SETTINGS)
        size = file.stat().st_size
        if size > m.MAX_GUIDE_BYTES:
            raise DaemonError(m.guide_too_large_message(path, size), m.E_BAD_SETTINGS)
        return file.name, file.read_bytes()
    except OSError as exc:
        raise DaemonError(f"cannot read guide image {path}: {exc.strerror or exc}",
                          m.E_BAD_SETTINGS) from None


def _checked_size(what: str, data: bytes | bytearray | memoryview, needed: int,
                  image: str) -> int:
    """The byte length of ``data``; ValueError unless it is the ``needed`` of ``image``."""
    size = memoryview(data).nbytes
    if size != needed:
        raise ValueError(f"{what} data is {size} bytes; {image} needs {needed}")
    return size


def _call(callback: Callback, *args: Any) -> None:
    if callback is not None:
        callback(*args)
