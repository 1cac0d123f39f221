"""A stand-in daemon for the client's tests: a ROUTER on loopback in a thread, whose
subclass answers each request exactly as a case needs (an older daemon, a silent one, one
that ends right after a result), which a real daemon cannot be made to do on cue."""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import zmq


class StandIn(threading.Thread):
    """Runs ``answer`` for each request until stopped, or until ``answer`` returns True."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.router = zmq.Context.instance().socket(zmq.ROUTER)
        self.router.linger = 0
        self.endpoint = f"tcp://127.0.0.1:{self.router.bind_to_random_port('tcp://127.0.0.1')}"
        self.stop = threading.Event()

    def answer(self, peer: bytes, header: dict[str, Any], data: list[bytes]) -> bool | None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.router.poll(50):
                continue
            peer, head, *data = self.router.recv_multipart()
            if self.answer(peer, msgpack.unpackb(head), data):
                return

    def send(self, peer: bytes, header: dict[str, Any], *frames: bytes) -> None:
        self.router.send_multipart([peer, msgpack.packb(header), *frames])

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()
        self.router.close(linger=0)
