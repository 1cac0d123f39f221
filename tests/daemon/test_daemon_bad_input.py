"""Every class of malformed message gets a clear error reply (or is dropped and logged), and
the daemon keeps serving everyone else."""

from __future__ import annotations

import socket
import struct

import msgpack
import pytest
import zmq
from deepdream_protocol import messages as m
from deepdream_protocol.client import Client
from deepdream_protocol.pixels import PixelFormat
from deepdream_protocol.zmtp import ZmtpTransport
from zmq.utils.monitor import recv_monitor_message

from tests.support.daemon import Daemon
from tests.support.jobs import MAX_PIXELS, H, W, host_pixels

pytestmark = pytest.mark.daemon

FMT = {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"}


def submit_header(**changes: object) -> dict:
    header = {"v": 1, "op": "submit", "req": 1, "job": "j1", "width": 4, "height": 2,
              "settings": {"model": "tiny", "iterations": 0}, "format": FMT}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


@pytest.fixture
def raw(daemon: Daemon) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvtimeo = 30_000
    sock.connect(daemon.endpoint)
    yield sock
    sock.close()


def ask(sock: zmq.Socket, *frames: bytes) -> dict:
    sock.send_multipart(list(frames))
    return msgpack.unpackb(sock.recv_multipart()[0])


GOOD = bytes(32)  # 4 x 2 RGBA u8


@pytest.mark.parametrize("frames, code, text", [
    ([b"\xc1\x00"], m.E_BAD_HEADER, "not valid msgpack"),
    ([b""], m.E_BAD_HEADER, "not valid msgpack"),
    ([b"GET / HTTP/1.0\r\n\r\n"], m.E_BAD_HEADER,
     "not valid msgpack: more bytes follow the first value"),
    ([msgpack.packb(["op", "hello"])], m.E_BAD_HEADER, "must be a msgpack map"),
    ([msgpack.packb({"op": "x" * 70_000})], m.E_BAD_HEADER, "exceeds"),
    ([msgpack.packb({"v": 1, "op": "launch", "req": 4})], m.E_UNKNOWN_OP, "unknown operation"),
    ([msgpack.packb({"v": 9, "op": "hello", "req": 4})], m.E_VERSION, "update the daemon"),
    ([msgpack.packb({"v": 1, "op": "ping", "req": 4}), b"extra"], m.E_BAD_FRAME,
     "takes no data frames"),
    ([msgpack.packb(submit_header(width="4")), GOOD], m.E_BAD_FIELD, "'width' must be int"),
    ([msgpack.packb(submit_header(settings=[1])), GOOD], m.E_BAD_FIELD, "'settings' must be"),
    ([msgpack.packb(submit_header(job=None)), GOOD], m.E_BAD_FIELD, "missing field 'job'"),
    ([msgpack.packb(submit_header(format={**FMT, "layout": "CMYK"})), GOOD], m.E_BAD_FIELD,
     "unknown pixel layout"),
    # no default stands in for a field left out: G f32 has RGBA u8's size and was dreamed so
    ([msgpack.packb(submit_header(format={"layout": "G"})), GOOD], m.E_BAD_FIELD,
     "pixel format lacks dtype, transfer; it names layout, dtype and transfer"),
    ([msgpack.packb(submit_header(format={})), GOOD], m.E_BAD_FIELD,
     "pixel format lacks layout, dtype, transfer"),
    # keys of text and bytes together could not be sorted for the message: "internal"
    ([msgpack.packb(submit_header(format={**FMT, b"x": "1", "y" * 99: "2"})), GOOD],
     m.E_BAD_FIELD, f"unknown pixel format keys: '{'y' * 39}..., b'x'"),
    ([msgpack.packb(submit_header(width=0)), b""], m.E_BAD_FIELD, "not positive"),
    ([msgpack.packb(submit_header())], m.E_BAD_FRAME, "needs 1 data frame"),
    ([msgpack.packb(submit_header()), GOOD[:-1]], m.E_BAD_FRAME, "pixel frame is 31 bytes"),
    ([msgpack.packb(submit_header()), GOOD + b"x"], m.E_BAD_FRAME, "needs 32"),
    ([msgpack.packb(submit_header(mask="u8")), GOOD, bytes(7)], m.E_BAD_FRAME,
     "mask frame is 7 bytes"),
    ([msgpack.packb(submit_header(mask="u4")), GOOD, bytes(8)], m.E_BAD_FIELD,
     "mask sample type"),
    ([msgpack.packb(submit_header(width=MAX_PIXELS, height=40)), b""], m.E_TOO_LARGE,
     f"{MAX_PIXELS}x40 is {40 * MAX_PIXELS:,} pixels; this daemon takes at most "
     f"{MAX_PIXELS:,}"),
    ([msgpack.packb(submit_header(width=MAX_PIXELS + 1, height=32)), b""], m.E_TOO_LARGE,
     f"is {32 * MAX_PIXELS + 32:,} pixels; this daemon takes at most {MAX_PIXELS:,} "
     "(--max-pixels)"),
    # a strip of few pixels is grown to run, to hours of CPU work (100,000x1 took 27 s,
    # against 7 s for 1225x1225): its sides count as 32 at least
    ([msgpack.packb(submit_header(width=MAX_PIXELS // 32 + 1, height=1)), b""], m.E_TOO_LARGE,
     f"{MAX_PIXELS // 32 + 1}x1 counts as {32 * (MAX_PIXELS // 32 + 1):,} pixels (a side "
     f"under 32 pixels counts as 32: a dream grows it); this daemon takes at most "
     f"{MAX_PIXELS:,} (--max-pixels)"),
    ([msgpack.packb(submit_header(settings={"iterations": -3})), GOOD], m.E_BAD_SETTINGS,
     "iterations"),
    ([msgpack.packb(submit_header(settings={"fancy": 1})), GOOD], m.E_BAD_SETTINGS, "fancy"),
    ([msgpack.packb(submit_header(settings={"model": "nosuchnet"})), GOOD], m.E_MODEL,
     "nosuchnet"),
    ([msgpack.packb({"v": 1, "op": "cancel", "req": 2, "job": "never-sent"})],
     m.E_UNKNOWN_JOB, "no job"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_malformed_message_gets_an_error_reply(raw: zmq.Socket, frames: list, code: str,
                                               text: str) -> None:
    reply = ask(raw, *frames)
    assert reply["op"] == "error" and reply["code"] == code
    assert text in reply["message"] and "\n" not in reply["message"]
    header = _try_unpack(frames[0])
    if isinstance(header, dict) and isinstance(header.get("req"), int):
        assert reply["req"] == header["req"]  # paired with the request
    assert ask(raw, msgpack.packb({"v": 1, "op": "ping", "req": 99}))["op"] == "pong"


def _try_unpack(data: bytes) -> object:
    try:
        return msgpack.unpackb(data)
    except Exception:
        return None


def test_a_huge_op_name_or_job_id_is_quoted_cut_short(daemon: Daemon, raw: zmq.Socket) -> None:
    reply = ask(raw, msgpack.packb({"v": 1, "op": "q" * 20_000, "req": 5}))
    assert reply["code"] == m.E_UNKNOWN_OP and reply["req"] == 5
    assert reply["message"] == f"unknown operation '{'q' * 40}'... (20,000 characters)"
    reply = ask(raw, msgpack.packb({"v": 1, "op": "cancel", "job": "j" * 30_000}))
    assert reply["code"] == m.E_UNKNOWN_JOB
    assert reply["message"].startswith(f"no job '{'j' * 40}'... (30,000 characters) to cancel")
    # what was echoed is paired as ever; what is logged is as short
    assert reply["job"] == "j" * 30_000
    assert "q" * 41 not in daemon.log_text() and "j" * 41 not in daemon.log_text()


def test_duplicate_job_id_is_refused(raw: zmq.Socket) -> None:
    long = submit_header(settings={"model": "tiny", "iterations": 300, "octaves": 1},
                         width=64, height=64)
    pixels = bytes(64 * 64 * 4)
    assert ask(raw, msgpack.packb(long), pixels)["op"] == "accepted"
    reply = ask(raw, msgpack.packb(long), pixels)
    while reply["op"] == "progress":
        reply = msgpack.unpackb(raw.recv_multipart()[0])
    assert reply["code"] == m.E_DUPLICATE_JOB
    raw.send(msgpack.packb({"v": 1, "op": "cancel", "job": "j1"}))
    while msgpack.unpackb(raw.recv_multipart()[0])["op"] != "cancelled":
        pass


def test_image_over_the_pixel_limit_is_answered_too_large_however_it_is_stored(
        raw: zmq.Socket) -> None:
    # 256 x 256 RGBA f32 is 1 MiB (a f32 mask adds 256 KiB): over what 50,000 pixels can take,
    # and it used to be dropped by libzmq, unanswered, before the daemon could say why.
    header = submit_header(width=256, height=256, mask="f32",
                           format={**FMT, "dtype": "f32"})
    raw.send_multipart([msgpack.packb(header), bytes(256 * 256 * 16), bytes(256 * 256 * 4)])
    assert raw.poll(20_000), "no answer: the frame was dropped"
    reply = msgpack.unpackb(raw.recv_multipart()[0])
    assert reply["op"] == "error" and reply["code"] == m.E_TOO_LARGE


def test_frame_over_the_size_limit_drops_only_that_client(daemon: Daemon) -> None:
    from deepdream.server import max_frame_bytes

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    events = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        sock.connect(daemon.endpoint)
        sock.send_multipart([msgpack.packb(submit_header()),
                             bytes(max_frame_bytes(MAX_PIXELS) + 1)])
        # the daemon's libzmq hangs up on this client once the frame's size is read
        assert events.poll(60_000), "the oversized frame did not cost its sender the connection"
        assert recv_monitor_message(events)["event"] == zmq.EVENT_DISCONNECTED
    finally:
        sock.disable_monitor()
        events.close(linger=0)
        sock.close()
    assert daemon.proc.poll() is None
    fmt = PixelFormat("RGBA", "u8")
    pixels = host_pixels(fmt)
    with Client(daemon.endpoint, timeout=30) as c:
        assert c.dream({"model": "tiny", "iterations": 0}, pixels, W, H, fmt) == pixels


def test_truncated_zmtp_frame_and_garbage_bytes_do_not_hurt_the_daemon(daemon: Daemon) -> None:
    t = ZmtpTransport(daemon.endpoint)
    # a frame that promises a megabyte and delivers ten bytes, then the peer vanishes
    t._sock.setblocking(True)
    t._sock.sendall(struct.pack(">BQ", 0x02, 1 << 20) + b"0123456789")
    t.close()
    host, port = daemon.endpoint[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:  # not ZMTP at all
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with Client(daemon.endpoint, transport="stdlib", timeout=30) as c:
        assert c.ping()["op"] == "pong"


def test_the_log_never_shows_a_clients_routing_id(daemon: Daemon) -> None:
    """libzmq hands out routing ids from a counter; a peer that learns the next one can take
    it and abort the daemon when libzmq gives it out again.  The log is where it could be
    learnt, so clients are named there by a keyed hash, the same for each of their lines."""
    chosen = b"\x01routing-id-to-hide"
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger, sock.rcvtimeo, sock.routing_id = 0, 30_000, chosen
    sock.connect(daemon.endpoint)
    try:
        for _ in range(2):
            assert ask(sock, msgpack.packb({"v": 1, "op": "hidden-id", "req": 4}))["code"] == \
                m.E_UNKNOWN_OP
    finally:
        sock.close()
    lines = [line for line in daemon.log_text().splitlines() if "'hidden-id'" in line]
    names = {line.split("bad request from ", 1)[1].split(":")[0] for line in lines}
    assert len(lines) >= 2 and len(names) == 1, lines
    log = daemon.log_text()
    assert chosen.hex() not in log and chosen[1:].hex() not in log
