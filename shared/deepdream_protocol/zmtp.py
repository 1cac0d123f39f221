"""A standard-library ZeroMQ DEALER: ZMTP 3.1, NULL mechanism, TCP to loopback only.

GIMP 3 on Windows runs plug-ins in MSYS2's Python, which cannot load PyPI's pyzmq; this
speaks the wire protocol of ZeroMQ (rfc.zeromq.org/spec/23, "ZMTP 3.1") to the daemon's real
libzmq ROUTER socket.  It has the same interface as ``transport.ZmqTransport``.  Without
CurveZMQ it has no encryption, so it refuses any peer that is not on this computer.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Sequence

_SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
# Bodies larger than this are received straight into their own buffer (no re-copying).
_DIRECT = 256 * 1024
#: refuse a frame larger than this from the peer (a corrupt length would exhaust memory).
MAX_FRAME = 1 << 34
#: a handshake's READY command is a few properties; a longer one is no daemon's
MAX_READY = 64 * 1024
NOT_ZMTP = "the peer does not speak ZMTP 3 (is it a deepdream daemon?)"


class TransportClosed(ConnectionError):
    """The daemon closed the connection or spoke something that is not ZMTP 3."""


class HungUp(TransportClosed):
    """The daemon closed the connection in the handshake, before its greeting: what libzmq
    does to a client without keys when the daemon runs with CurveZMQ."""


class ConnectionDropped(TransportClosed):
    """The connection to the daemon was up and is gone (the daemon exited, crashed or was
    killed: on this computer its end closes at once).  Whatever it had of ours is lost."""


def parse_tcp_endpoint(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` -> (host, port); a ValueError (one line) for anything else."""
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    host = host.strip("[]")
    if not endpoint.startswith("tcp://") or not host or any(c.isspace() for c in host) \
            or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"the daemon endpoint {endpoint!r} is not of the form tcp://HOST:PORT "
                         "(e.g. tcp://127.0.0.1:5599)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def on_this_computer(endpoint: str) -> bool:
    """Whether a daemon at ``endpoint`` runs on this computer: ipc:// and inproc://, or tcp://
    to a loopback address (a malformed endpoint is not)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    try:
        return is_loopback(parse_tcp_endpoint(endpoint)[0])
    except ValueError:
        return False


def listening(endpoint: str, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at a tcp:// ``endpoint`` (a daemon that
    is there but does not answer us, e.g. one that wants CurveZMQ keys)."""
    try:
        host, port = parse_tcp_endpoint(endpoint)
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (ValueError, OSError):
        return False


def send_steadily(sock: socket.socket, data: bytes | bytearray | memoryview) -> None:
    """All of ``data``, the socket's timeout bounding each wait for the peer to take more
    rather than the whole send (``sendall``'s): a large frame may take longer in all, over
    a busy loopback, than a stalled daemon should be waited for."""
    view = memoryview(data).cast("B")
    while view:
        view = view[sock.send(view):]


def _frame_header(flags: int, size: int) -> bytes:
    if size > 255:
        return struct.pack(">BQ", flags | _LONG, size)
    return struct.pack(">BB", flags, size)


def _command(name: bytes, body: bytes = b"") -> bytes:
    payload = bytes([len(name)]) + name + body
    return _frame_header(_COMMAND, len(payload)) + payload


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


class ZmtpTransport:
    """One DEALER connection; frames in, lists of frames out."""

    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        host, port = parse_tcp_endpoint(endpoint)
        if not is_loopback(host):
            raise ValueError(f"the standard-library transport talks only to a daemon on this "
                             f"computer, not {host}; install pyzmq for a remote daemon")
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._body: bytearray | None = None  # a large frame being received in place
        self._body_flags = 0
        self._filled = 0
        self._parts: list[bytes | bytearray] = []
        self._messages: deque[list[bytes | bytearray]] = deque()
        try:
            self._handshake(timeout)
        except BaseException:
            self._sock.close()
            raise
        self._sock.setblocking(False)

    # -- handshake ---------------------------------------------------------------------------
    def _read_exact(self, n: int, deadline: float) -> bytes:
        out = bytearray()
        while len(out) < n:
            self._sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise HungUp("it closed the connection during the handshake")
            out += chunk
        return bytes(out)

    def _handshake(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        greeting = _SIGNATURE + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
        self._sock.sendall(greeting)
        peer = self._read_exact(64, deadline)
        if peer[0] != 0xFF or peer[9] != 0x7F or peer[10] < 3:
            raise TransportClosed(NOT_ZMTP)
        mechanism = peer[12:32].rstrip(b"\x00")
        if mechanism != b"NULL":
            raise TransportClosed(f"the daemon requires the {mechanism.decode(errors='replace')}"
                                  " security mechanism; use pyzmq with Curve keys")
        self._sock.sendall(_command(b"READY", _property(b"Socket-Type", b"DEALER")
                                    + _property(b"Identity", b"")))
        flags, size = self._read_frame_header(deadline)
        if not 0 < size <= MAX_READY:
            raise TransportClosed(NOT_ZMTP)
        body = self._read_exact(size, deadline)
        name = body[1:1 + body[0]]
        if not flags & _COMMAND or name != b"READY":
            reason = body[1 + body[0] + 1:].decode(errors="replace") if name == b"ERROR" else ""
            raise TransportClosed(f"the daemon refused the connection {reason}".strip())
        if b"\x0bSocket-Type\x00\x00\x00\x06ROUTER" not in body:
            raise TransportClosed("the peer is not a ZeroMQ ROUTER socket")

    def _read_frame_header(self, deadline: float) -> tuple[int, int]:
        flags = self._read_exact(1, deadline)[0]
        if flags & _LONG:
            return flags, struct.unpack(">Q", self._read_exact(8, deadline))[0]
        return flags, self._read_exact(1, deadline)[0]

    # -- sending -----------------------------------------------------------------------------
    def send(self, frames: Sequence[bytes | bytearray | memoryview],
             timeout: float | None = None) -> None:
        """Send one multi-frame message; fails when the daemon takes nothing more for
        ``timeout`` seconds (None: waits for ever)."""
        self._sock.settimeout(timeout)
        try:
            pending = bytearray()
            for i, frame in enumerate(frames):
                size = memoryview(frame).nbytes
                pending += _frame_header(_MORE if i < len(frames) - 1 else 0, size)
                if size <= _DIRECT:
                    pending += frame
                else:  # large pixel frames go out without being copied
                    send_steadily(self._sock, pending)
                    pending = bytearray()
                    send_steadily(self._sock, frame)
            if pending:
                send_steadily(self._sock, pending)
        except TimeoutError:  # alive, perhaps, but not reading: not a dropped connection
            raise TransportClosed("the daemon did not take the message in time") from None
        except OSError as exc:  # EPIPE, ECONNRESET: the daemon's end is closed
            raise ConnectionDropped(f"lost the connection to the daemon ({exc})") from None
        finally:
            self._sock.setblocking(False)

    # -- receiving ---------------------------------------------------------------------------
    def recv(self, timeout: float | None = 0.0) -> list[bytes | bytearray] | None:
        """Next whole message, or None if none arrives within ``timeout`` (0: don't wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._messages:
            if not self._read_available():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                select.select([self._sock], [], [], left)
        return self._messages.popleft()

    def _read_available(self) -> bool:
        """Read what the socket holds right now; False if it held nothing."""
        got = False
        while True:
            try:
                if self._body is not None:
                    view = memoryview(self._body)[self._filled:]
                    n = self._sock.recv_into(view)
                else:
                    chunk = self._sock.recv(_DIRECT)
                    n = len(chunk)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError as exc:  # ECONNRESET: the daemon died with our bytes unread
                raise ConnectionDropped(f"lost the connection to the daemon ({exc})") from None
            if n == 0:  # EOF: the daemon's process ended (killed, crashed, stopped)
                raise ConnectionDropped("the daemon closed the connection")
            got = True
            if self._body is not None:
                self._filled += n
                if self._filled == len(self._body):
                    body, self._body = self._body, None
                    self._frame(self._body_flags, body)
                    self._parse()
            else:
                self._buf += chunk
                self._parse()
            if self._messages:
                return True

    def _parse(self) -> None:
        buf = self._buf
        while len(buf) >= 2:
            flags = buf[0]
            if flags & _LONG:
                if len(buf) < 9:
                    return
                size, start = struct.unpack_from(">Q", buf, 1)[0], 9
            else:
                size, start = buf[1], 2
            if size > MAX_FRAME:
                raise TransportClosed(f"the daemon sent a frame of {size} bytes")
            if len(buf) - start >= size:
                body = bytes(buf[start:start + size])
                del buf[:start + size]
                self._frame(flags, body)
                continue
            if size > _DIRECT:
                try:
                    self._body = bytearray(size)
                except MemoryError:
                    raise TransportClosed(f"the daemon sent a frame of {size} bytes, more "
                                          "than this computer has room for") from None
                self._filled = len(buf) - start
                self._body[:self._filled] = buf[start:]
                self._body_flags = flags
                del buf[:]
            return

    def _frame(self, flags: int, body: bytes | bytearray) -> None:
        if flags & _COMMAND:
            if not body:
                raise TransportClosed("the daemon sent a command with no name")
            name = bytes(body[1:1 + body[0]])
            if name == b"PING":  # heartbeat: answer with the context the peer sent
                self._sock.sendall(_command(b"PONG", bytes(body[1 + body[0] + 2:])))
            elif name == b"ERROR":
                raise TransportClosed("the daemon reported a ZMTP error")
            return
        self._parts.append(body)
        if not flags & _MORE:
            self._messages.append(self._parts)
            self._parts = []

    def dropped(self) -> bool:
        """True when the connection has closed; never blocks.  What arrived before the close
        stays buffered for ``recv``.  (A client checks this before reusing an idle
        connection: the daemon may have restarted since.)"""
        try:
            while self._read_available():
                pass
        except TransportClosed:
            return True
        return False

    def pending(self) -> bool:
        """True when a whole message is already buffered (select() will not say so)."""
        return bool(self._messages)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()
