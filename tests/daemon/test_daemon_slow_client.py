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

from tests.support.daemon import daemon_process
from tests.support.jobs import H, W, host_pixels, wait_until

pytestmark = pytest.mark.daemon

#: catalog replies (~3.5 KB each) to fill the daemon's queue for the client (1000 messages)
#: and the loopback socket buffers (a few MB) behind it: ~10 MB, under a second of work.
FLOOD = 3000


def test_a_client_that_never_reads_stalls_no_one_and_sigterm_still_stops_the_daemon() -> None:
    with daemon_process() as daemon:
        flooder = zmq.Context.instance().socket(zmq.DEALER)
        flooder.linger = 0
        flooder.rcvhwm = 1
        flooder.setsockopt(zmq.RCVBUF, 4096)
        flooder.connect(daemon.endpoint)
        try:
            for i in range(FLOOD):
                flooder.send(msgpack.packb({"v": 1, "op": "catalog", "req": i}))
            wait_until(lambda: "is not reading" in daemon.log_text(), timeout=60,
                       what="the daemon to notice the client that does not read")
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
