"""The order of what the daemon says about one job: a ping answered just after a worker sent
the job's last word must not get there first and say the job is gone (the client would give
the dream up as lost while its result was on the way).  A real Server in this process, on
loopback; the worker's side is played by hand, at the moment that matters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import msgpack
import pytest
import zmq
from deepdream import server
from deepdream.jobs import Job
from deepdream.worker import OUTBOX
from deepdream_protocol import messages as m
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import free_port

PEER = b"artist"


@pytest.fixture
def served() -> Iterator[tuple[server.Server, zmq.Socket]]:
    srv = server.Server(server.ServeOptions(port=free_port(), devices=("cpu",)))
    client = srv.ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.ROUTING_ID, PEER)
    client.rcvtimeo = 10_000
    client.connect(srv.opts.endpoint)
    try:
        yield srv, client
    finally:
        client.close(linger=0)
        srv.queue.close()
        srv._close()


def _ask(srv: server.Server, client: zmq.Socket, header: dict) -> None:
    client.send(m.encode_header(header))
    assert srv.router.poll(10_000)
    srv._receive()


def test_a_ping_does_not_overtake_the_last_word_of_the_job_it_asks_about(served) -> None:
    srv, client = served
    _ask(srv, client, {"op": "hello"})
    assert msgpack.unpackb(client.recv())["op"] == "hello"
    srv.queue.put(Job(PEER, "j1", None, PixelFormat("G", "u8"), 1, 1, memoryview(b"\0")))
    job = srv.queue.get(timeout=1)
    out = srv.ctx.socket(zmq.PUSH)
    out.connect(OUTBOX)
    marked = threading.Event()

    def worker() -> None:  # as Worker._run's send: the job marked done, then its last word
        with srv.last_words:
            srv.queue.done(job)
            marked.set()
            time.sleep(0.3)  # (a thread switch, widened)
            out.send_multipart([PEER, m.encode_header({"op": m.RESULT, "job": "j1"}), b"\0"])

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert marked.wait(10)
        # the client's ping about the job, handled while its last word is not out yet
        _ask(srv, client, {"op": "ping", "job": "j1", "req": 7})
        srv._forward()
        said = [msgpack.unpackb(client.recv_multipart()[0]) for _ in range(2)]
    finally:
        thread.join()
        out.close(linger=0)
    assert [h["op"] for h in said] == [m.RESULT, m.PONG]  # (the pong came first)
    assert said[1]["job_known"] is False
