"""Pick and open the client's transport: pyzmq when it imports, else the stdlib ZMTP fallback.

Both transports have the same small interface: ``send(frames, timeout)``,
``recv(timeout) -> frames | None``, ``pending()``, ``dropped()``, ``fileno()``, ``close()``.

A connection that was up and closes (the daemon's process ended: killed, crashed, out of
memory; on this computer its end of the TCP connection closes at once) makes ``recv`` raise
``ConnectionDropped`` once every message that arrived before the close has been returned.
The stdlib transport sees the socket's EOF or reset; the pyzmq one a socket monitor's
``EVENT_DISCONNECTED`` after a completed handshake (libzmq itself would reconnect quietly).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from .zmtp import ConnectionDropped, TransportClosed, ZmtpTransport

__all__ = ["ConnectionDropped", "CurveKeys", "Transport", "TransportClosed", "ZmqTransport",
           "ZmtpTransport", "choose", "have_pyzmq", "open_transport"]

_monitors = itertools.count(1)

TRANSPORTS = ("auto", "zmq", "stdlib")


class Transport(Protocol):
    def send(self, frames: Sequence[Any], timeout: float | None = None) -> None: ...
    def recv(self, timeout: float | None = 0.0) -> list[Any] | None: ...
    def pending(self) -> bool: ...
    def dropped(self) -> bool: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class CurveKeys:
    """CurveZMQ keys (Z85 text) for talking to a daemon on another computer (pyzmq only)."""

    def __init__(self, server_public: bytes, public: bytes, secret: bytes) -> None:
        self.server_public, self.public, self.secret = server_public, public, secret

    @classmethod
    def from_files(cls, server_public_file: str, client_secret_file: str) -> CurveKeys:
        """Load from zmq.auth certificate files (as ``deepdream keygen`` writes them)."""
        import zmq.auth

        server_public, _ = zmq.auth.load_certificate(server_public_file)
        public, secret = zmq.auth.load_certificate(client_secret_file)
        if secret is None:
            raise ValueError(f"{client_secret_file} holds no secret key")
        return cls(server_public, public, secret)


class ZmqTransport:
    """A pyzmq DEALER socket with linger 0, so closing never hangs the host program.

    A monitor socket reports the connection's handshake and disconnection: libzmq reconnects
    by itself, so without it a daemon that died would only be noticed by its silence.
    """

    def __init__(self, endpoint: str, curve: CurveKeys | None = None) -> None:
        import zmq

        self._zmq = zmq
        self._sock = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.ipv6 = "[" in endpoint  # tcp://[::1]:5599
        self._up = False  # a handshake with the daemon completed and it has not closed since
        self._drops = 0  # connections that were up and closed, not yet reported by recv
        self._monitor: Any = None
        try:
            if curve is not None:
                self._sock.curve_serverkey = curve.server_public
                self._sock.curve_publickey = curve.public
                self._sock.curve_secretkey = curve.secret
            # before connecting, so that no event of this connection is missed; a handshake
            # that fails (wrong Curve keys) is no connection that was up
            self._monitor = self._sock.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED,
                f"inproc://deepdream-client-monitor-{os.getpid()}-{next(_monitors)}")
            self._sock.connect(endpoint)
        except zmq.ZMQError as exc:  # libzmq refused the address or the keys
            self.close()
            raise ValueError(f"cannot connect to the daemon endpoint {endpoint!r} ({exc}); "
                             "expected tcp://HOST:PORT") from None

    def _read_events(self) -> None:
        """Take in the monitor's events so far; never blocks."""
        from zmq.utils.monitor import parse_monitor_message

        zmq = self._zmq
        while True:
            try:
                event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up = True
            elif event["event"] == zmq.EVENT_DISCONNECTED and self._up:
                self._up = False
                self._drops += 1

    def send(self, frames: Sequence[Any], timeout: float | None = None) -> None:
        zmq = self._zmq
        self._sock.sndtimeo = -1 if timeout is None else max(1, int(timeout * 1000))
        try:
            self._sock.send_multipart(list(frames), copy=False)
        except zmq.Again:
            raise TransportClosed("the daemon did not take the message in time") from None

    def recv(self, timeout: float | None = 0.0) -> list[Any] | None:
        """Next message, or None within ``timeout``; raises ConnectionDropped once the
        messages that came before a lost connection have all been returned."""
        zmq = self._zmq
        poller = None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._read_events()
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                pass
            else:
                return [f.buffer for f in frames]
            if self._drops:
                self._drops = 0
                raise ConnectionDropped("the daemon closed the connection")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            if poller is None:
                poller = zmq.Poller()
                poller.register(self._sock, zmq.POLLIN)
                poller.register(self._monitor, zmq.POLLIN)
            poller.poll(None if left is None else max(1, int(left * 1000)))

    def pending(self) -> bool:
        # The ZMQ fd is edge-triggered: a message can wait here with the fd quiet.  A lost
        # connection counts too: ``recv`` reports it.
        self._read_events()
        return bool(self._drops or self._sock.getsockopt(self._zmq.EVENTS) & self._zmq.POLLIN)

    def dropped(self) -> bool:
        self._read_events()
        return self._drops > 0

    def fileno(self) -> int:
        return self._sock.getsockopt(self._zmq.FD)

    def close(self) -> None:
        if self._monitor is not None:
            try:
                self._sock.disable_monitor()
            except self._zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        self._sock.close(linger=0)


def have_pyzmq() -> bool:
    try:
        import zmq  # noqa: F401
    except ImportError:
        return False
    return True


def choose(transport: str = "auto") -> str:
    """"zmq" or "stdlib": the argument, else DEEPDREAM_TRANSPORT, else pyzmq if it imports."""
    source = ""
    if transport == "auto":
        transport = os.environ.get("DEEPDREAM_TRANSPORT", "auto") or "auto"
        source = " (DEEPDREAM_TRANSPORT)"
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}{source}; expected one of "
                         f"{', '.join(TRANSPORTS)}")
    if transport == "auto":
        return "zmq" if have_pyzmq() else "stdlib"
    if transport == "zmq" and not have_pyzmq():
        raise ValueError("transport 'zmq' asked for, but pyzmq is not installed")
    return transport


def open_transport(endpoint: str, transport: str = "auto", timeout: float = 5.0,
                   curve: CurveKeys | None = None) -> Transport:
    """Connect to ``endpoint``; the stdlib transport fails at once if nothing listens."""
    kind = choose(transport)
    if kind == "zmq":
        return ZmqTransport(endpoint, curve)
    if curve is not None:
        raise ValueError("CurveZMQ needs pyzmq; the standard-library transport cannot encrypt")
    return ZmtpTransport(endpoint, timeout)
