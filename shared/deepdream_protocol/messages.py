"""The wire protocol: version, operations, header codec and the checks both ends apply.

Every message is a list of frames: frame 1 is a small msgpack map (the header); a message
that carries pixels adds frame 2 (raw pixel bytes) and optionally frame 3 (a raw mask).
Pixels are never packed inside msgpack, and nothing is ever unpickled.  See PROTOCOL.md.
Pure Python: msgpack only (its pure-Python mode is enough).
"""

from __future__ import annotations

from typing import Any

import msgpack

from .launcher import DEFAULT_ENDPOINT, DEFAULT_PORT  # noqa: F401  (part of the protocol's face)

#: one integer, bumped on any incompatible change; a peer with another version is refused.
PROTOCOL_VERSION = 1

#: a header is a handful of fields; anything bigger is an attack or a bug.
MAX_HEADER_BYTES = 64 * 1024
#: every daemon reads a data frame this big (its limit grows with --max-pixels); libzmq drops,
#: unanswered, the connection of a client that sends a frame over the limit, so a client
#: learns ``max_pixels`` from ``hello`` before sending a bigger one.
MIN_FRAME_LIMIT = 64 * 2**20
#: a guide image file crosses whole, as one frame; this bound keeps it under every daemon's
#: frame limit (it is downscaled for its features anyway).
MAX_GUIDE_BYTES = MIN_FRAME_LIMIT

# Operations a client sends.
HELLO, PING, CATALOG, SUBMIT, CANCEL = "hello", "ping", "catalog", "submit", "cancel"
# Operations the daemon sends (hello and catalog are answered with the same op name;
# PREVIEW is reserved and not sent in version 1).
PONG, ACCEPTED, PROGRESS, PREVIEW, RESULT, ERROR, CANCELLED = (
    "pong", "accepted", "progress", "preview", "result", "error", "cancelled")

# Error codes carried by an ``error`` reply.
E_BAD_HEADER = "bad_header"  # not msgpack, not a map, too big
E_VERSION = "incompatible_version"
E_UNKNOWN_OP = "unknown_op"
E_BAD_FIELD = "bad_field"  # missing field or wrong type
E_BAD_FRAME = "bad_frame"  # pixel/mask/guide frame missing or of the wrong length
E_TOO_LARGE = "too_large"  # over the daemon's pixel limit, or out of memory for it
E_BAD_SETTINGS = "bad_settings"
E_MODEL = "model_error"
E_BUSY = "busy"  # queue full
E_DUPLICATE_JOB = "duplicate_job"
E_UNKNOWN_JOB = "unknown_job"
E_SHUTDOWN = "shutdown"
E_INTERNAL = "internal"

# Required header fields per client op, beyond "op" and "v": name -> accepted types.
_INT = (int,)
_STR = (str,)
REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    HELLO: {},
    PING: {},
    CATALOG: {},
    SUBMIT: {"job": _STR, "settings": (dict,), "format": (dict,), "width": _INT,
             "height": _INT},
    CANCEL: {"job": _STR},
}
# Optional fields: "req" (any op; echoed in the reply so a client can pair them),
# "mask" (submit: the mask frame's sample type), "guide_file" (submit: the guide image file's
# name; its bytes are the last frame), "preview" (submit: reserved; the daemon checks its
# type and otherwise ignores it: version 1 sends no previews).
OPTIONAL: dict[str, tuple[type, ...]] = {
    "req": _INT, "mask": _STR, "guide_file": _STR, "preview": _INT, "client": _STR, "v": _INT}


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``code`` is one of the E_* error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def encode_header(header: dict[str, Any]) -> bytes:
    """Pack a header map; the protocol version is added when missing."""
    if "v" not in header:
        header = {"v": PROTOCOL_VERSION, **header}
    return msgpack.packb(header, use_bin_type=True)


def decode_header(data: bytes | memoryview, max_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """Unpack and sanity-check a header: a map with string keys and a string ``op``."""
    if len(data) > max_bytes:
        raise ProtocolError(E_BAD_HEADER, f"header of {len(data)} bytes exceeds {max_bytes}")
    try:
        # unpackb bounds container sizes by the data's length: a small header cannot
        # declare a huge array.
        header = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(E_BAD_HEADER, f"header is not valid msgpack: {_why(exc, data)}"
                            ) from None
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_HEADER, "header must be a msgpack map")
    op = header.get("op")
    if not isinstance(op, str):
        raise ProtocolError(E_BAD_HEADER, "header has no string 'op' field")
    return header


def _why(exc: Exception, data: bytes | memoryview) -> str:
    """Why ``data`` did not unpack, in words a person sending it can act on."""
    if not len(data):
        return "the header frame is empty"
    text = str(exc)
    if isinstance(exc, msgpack.ExtraData):
        reason = "more bytes follow the first value (one msgpack map was expected)"
    elif isinstance(exc, msgpack.FormatError):
        reason = "it holds a byte that starts no msgpack value"
    elif isinstance(exc, msgpack.StackError):
        reason = "it nests too deeply"
    elif isinstance(exc, msgpack.OutOfData) or "incomplete" in text or "exceeds max_" in text:
        reason = "it ends in the middle of a value"  # (a declared length past the end, too)
    elif "map key" in text:
        reason = "map keys must be strings"
    else:
        reason = text or type(exc).__name__
    return f"{reason}; it starts {bytes(data[:12])!r}"


def check_version(header: dict[str, Any]) -> None:
    """Refuse a peer speaking another protocol version, saying which side to update."""
    version = header.get("v", PROTOCOL_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProtocolError(E_BAD_FIELD, "field 'v' must be an integer protocol version")
    if version != PROTOCOL_VERSION:
        older = "the plug-in" if version < PROTOCOL_VERSION else "the daemon"
        raise ProtocolError(
            E_VERSION,
            f"protocol version mismatch: daemon speaks {PROTOCOL_VERSION}, peer speaks "
            f"{version}; update {older}")


def validate_request(header: dict[str, Any]) -> None:
    """Check a client header's op and field types (the daemon calls this on every message)."""
    check_version(header)
    op = header["op"]
    if op not in REQUIRED:
        raise ProtocolError(E_UNKNOWN_OP, f"unknown operation {shown(op)}")
    for name, types in REQUIRED[op].items():
        if name not in header:
            raise ProtocolError(E_BAD_FIELD, f"{op}: missing field {name!r}")
        _check_type(op, name, header[name], types)
    for name, types in OPTIONAL.items():
        if name in header:
            _check_type(op, name, header[name], types)


def _check_type(op: str, name: str, value: object, types: tuple[type, ...]) -> None:
    # bool is an int subclass; a width of True is a bug, not a width.
    if isinstance(value, bool) or not isinstance(value, types):
        wanted = " or ".join(t.__name__ for t in types)
        raise ProtocolError(E_BAD_FIELD,
                            f"{op}: field {name!r} must be {wanted}, got {type(value).__name__}")


#: a side shorter than this counts as this long against --max-pixels: the dream grows a
#: thin image with mirrored copies of itself to the size its layers run on, so a
#: 100,000,000x1 strip (within 100 M pixels) would be hours of work and tens of GB
MIN_COUNTED_SIDE = 32


def counted_pixels(width: int, height: int) -> int:
    """The pixels an image counts as against the daemon's ``max_pixels``."""
    return max(width, MIN_COUNTED_SIDE) * max(height, MIN_COUNTED_SIDE)


def too_large_message(width: int, height: int, max_pixels: int) -> str:
    """The one-line ``too_large`` refusal, the same whether the daemon or a client that knows
    the limit from ``hello`` makes it (whole pixels: rounded figures could look equal)."""
    counted = counted_pixels(width, height)
    if counted > width * height:
        size = (f"{width}x{height} counts as {counted:,} pixels (a side under "
                f"{MIN_COUNTED_SIDE} pixels counts as {MIN_COUNTED_SIDE}: a dream grows it)")
    else:
        size = f"{width}x{height} is {counted:,} pixels"
    return f"{size}; this daemon takes at most {max_pixels:,} (--max-pixels)"


def guide_too_large_message(name: str, size: int) -> str:
    """The one-line refusal of a guide image file over ``MAX_GUIDE_BYTES``, the same whether
    the client (before sending) or the daemon makes it."""
    return (f"guide image {name} is {size / 2**20:.0f} MiB; a guide image may be at most "
            f"{MAX_GUIDE_BYTES // 2**20} MiB")


def first_line(exc: BaseException) -> str:
    """An exception in one line for an error reply or a log: its message's first line, or
    its type's name when it says nothing (torch's and PIL's messages run to pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def number(x: float) -> str:
    """A number for a message: 2147483647 as such (not 2.14748e+09), 0.5 as 0.5, 1e+20 (not
    21 digits)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def shown(text: str, limit: int = 40) -> str:
    """A peer's ``text`` quoted for an error or a log line, cut to ``limit`` characters (a
    64 KB op name would otherwise be echoed and logged in full)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"
