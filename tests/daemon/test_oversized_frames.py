"""Frames near and over the daemon's frame-size limit: an image whose frame libzmq would drop
unanswered is refused by the client in one line, on both transports, without the client
having said hello first; a frame at the limit is answered however big its header is."""

from __future__ import annotations

import uuid

import msgpack
import pytest
import zmq
from deepdream_protocol import messages as m
from deepdream_protocol.client import Client, DaemonError
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import Daemon
from tests.support.jobs import MAX_PIXELS, H, W, host_pixels

pytestmark = pytest.mark.daemon

SMALL_DREAM = {"model": "tiny", "layer": "inception3b", "iterations": 2, "octaves": 1}
FMT = PixelFormat("RGBA", "f32")
#: 2048 x 2049 RGBA f32 is one row (32 KiB) over the 64 MiB every daemon reads: libzmq drops
#: the connection of a client sending it to the shared test daemon (--max-pixels 50,000)
BIG_W, BIG_H = 2048, 2049


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_frame_over_the_limit_is_refused_in_one_line_and_normal_images_still_dream(
        daemon: Daemon, transport: str) -> None:
    big = bytes(FMT.frame_size(BIG_W, BIG_H))
    assert len(big) > m.MIN_FRAME_LIMIT
    with Client(daemon.endpoint, transport=transport, timeout=30) as c:
        # no hello: the client asks for the limit itself before a frame this big
        with pytest.raises(DaemonError) as caught:
            c.dream(SMALL_DREAM, big, BIG_W, BIG_H, FMT)
        assert caught.value.code == m.E_TOO_LARGE
        assert str(caught.value) == m.too_large_message(BIG_W, BIG_H, MAX_PIXELS)
        assert "\n" not in str(caught.value)
        # nothing was lost: the same client dreams a normal image
        pixels = host_pixels(FMT, W, H)
        dreamed = c.dream(SMALL_DREAM, pixels, W, H, FMT)
        assert len(dreamed) == len(pixels) and dreamed != pixels
    assert daemon.proc.poll() is None


def test_frame_at_the_limit_with_a_large_header_is_still_answered(daemon: Daemon) -> None:
    """libzmq's limit is per frame: the header (up to 64 KiB) takes nothing from the pixel
    frame's allowance, so the largest frame the daemon reads still gets an answer."""
    from deepdream.server import max_frame_bytes

    limit = max_frame_bytes(MAX_PIXELS)
    width = 2048
    height = limit // (16 * width)
    assert width * height * 16 == limit  # RGBA f32 that fills the limit exactly
    header = {"v": m.PROTOCOL_VERSION, "op": m.SUBMIT, "job": uuid.uuid4().hex,
              "settings": {"model": "tiny", "iterations": 0, "note": "x" * 60_000},
              "format": FMT.to_wire(), "width": width, "height": height}
    packed = msgpack.packb(header)
    assert 60_000 < len(packed) <= m.MAX_HEADER_BYTES
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(daemon.endpoint)
        sock.send_multipart([packed, bytes(limit)])
        assert sock.poll(60_000), "no answer: the frame at the limit was dropped"
        reply = msgpack.unpackb(sock.recv_multipart()[0])
    finally:
        sock.close()
    assert (reply["op"], reply["code"]) == (m.ERROR, m.E_TOO_LARGE)
