"""A client that sends requests but never reads the replies must not slow anyone else down,
nor keep the daemon from stopping."""

from __future__ import annotations

import signal
import time

import msgpack
import pytest
import zmq
from deepdream_protocol.client import Client
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import Daemon, daemon_process
from tests.support.jobs import H, W, host_pixels, wait_until

pytestmark = pytest.mark.daemon

#: catalog replies (~3.5 KB each) to fill the daemon's queue for the client (1000 messages)
#: and the loopback socket buffers (a few MB) behind it: ~10 MB, under a second of work.
FLOOD = 3000


def flooded(daemon: Daemon) -> zmq.Socket:
    """A client with as little room as it can have, that has asked for far more than it
    reads: the daemon has no room left for it (and has said so in its log)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvhwm = 1
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.connect(daemon.endpoint)
    for i in range(FLOOD):
        sock.send(msgpack.packb({"v": 1, "op": "catalog", "req": i}))
    wait_until(lambda: "is not reading" in daemon.log_text(), timeout=60,
               what="the daemon to notice the client that does not read")
    return sock


def test_a_client_that_never_reads_stalls_no_one_and_sigterm_still_stops_the_daemon() -> None:
    with daemon_process() as daemon:
        flooder = flooded(daemon)
        try:
            fmt = PixelFormat("RGBA", "u8")
            pixels = host_pixels(fmt)
            # (the timeout guards against a hang: a daemon that waited on the flooder, as
            # it once did for 2 s a reply, would still be working through its 3000 replies)
            with Client(daemon.endpoint, timeout=30) as c:
                for _ in range(5):
                    assert c.ping()["op"] == "pong"
                assert c.dream({"model": "tiny", "iterations": 0}, pixels, W, H, fmt) == pixels
            for i in range(100):  # more for it, while it still reads nothing
                flooder.send(msgpack.packb({"v": 1, "op": "catalog", "req": FLOOD + i}))
            time.sleep(0.5)
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=15) == 0  # (once it took over two minutes)
        finally:
            flooder.close()
        text = daemon.log_text()
        assert text.count("is not reading") == 1  # once for that client, not per message
        assert "stopped" in text


def test_a_client_that_stops_reading_for_a_while_still_gets_its_result() -> None:
    """A host whose thread is busy elsewhere for a long dream leaves its messages unread;
    what finds no room is dropped (progress, replies), but a job's last word is kept and
    sent once the client reads again: its dream is not lost."""
    with daemon_process() as daemon:
        client = flooded(daemon)
        try:
            fmt = {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"}
            pixels = bytes(range(256)) * (W * H * 4 // 256)
            client.send_multipart([msgpack.packb(
                {"v": 1, "op": "submit", "req": FLOOD, "job": "late", "width": W, "height": H,
                 "settings": {"model": "tiny", "iterations": 0}, "format": fmt}), pixels])
            wait_until(lambda: "job late done" in daemon.log_text(), timeout=60,
                       what="the daemon to dream the job")
            time.sleep(1.0)  # its result found no room: the client still reads nothing
            client.rcvtimeo = 30_000
            while True:  # reading again: the catalog replies, then the result
                frames = client.recv_multipart()
                header = msgpack.unpackb(frames[0])
                if header.get("job") == "late" and header["op"] != "accepted":
                    break
            assert header["op"] == "result", header
            assert frames[1] == pixels
        finally:
            client.close()
