"""Pick and open the client's transport: pyzmq when it imports, else the stdlib ZMTP fallback.

Both transports have the same small interface: ``send(frames, timeout)``,
``recv(timeout) -> frames | None``, ``pending()``, ``fileno()``, ``close()``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

from .zmtp import TransportClosed, ZmtpTransport

TRANSPORTS = ("auto", "zmq", "stdlib")


class Transport(Protocol):
    def send(self, frames: Sequence[Any], timeout: float | None = None) -> None: ...
    def recv(self, timeout: float | None = 0.0) -> list[Any] | None: ...
    def pending(self) -> bool: ...
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
    """A pyzmq DEALER socket with linger 0, so closing never hangs the host program."""

    def __init__(self, endpoint: str, curve: CurveKeys | None = None) -> None:
        import zmq

        self._zmq = zmq
        self._sock = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.ipv6 = "[" in endpoint  # tcp://[::1]:5599
        try:
            if curve is not None:
                self._sock.curve_serverkey = curve.server_public
                self._sock.curve_publickey = curve.public
                self._sock.curve_secretkey = curve.secret
            self._sock.connect(endpoint)
        except zmq.ZMQError as exc:  # libzmq refused the address or the keys
            self._sock.close(linger=0)
            raise ValueError(f"cannot connect to the daemon endpoint {endpoint!r} ({exc}); "
                             "expected tcp://HOST:PORT") from None

    def send(self, frames: Sequence[Any], timeout: float | None = None) -> None:
        zmq = self._zmq
        self._sock.sndtimeo = -1 if timeout is None else max(1, int(timeout * 1000))
        try:
            self._sock.send_multipart(list(frames), copy=False)
        except zmq.Again:
            raise TransportClosed("the daemon did not take the message in time") from None

    def recv(self, timeout: float | None = 0.0) -> list[Any] | None:
        zmq = self._zmq
        if timeout != 0.0 and not self._sock.poll(None if timeout is None
                                                  else max(1, int(timeout * 1000))):
            return None
        try:
            frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        return [f.buffer for f in frames]

    def pending(self) -> bool:
        # The ZMQ fd is edge-triggered: a message can wait here with the fd quiet.
        return bool(self._sock.getsockopt(self._zmq.EVENTS) & self._zmq.POLLIN)

    def fileno(self) -> int:
        return self._sock.getsockopt(self._zmq.FD)

    def close(self) -> None:
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
