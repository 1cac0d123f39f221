"""Dream jobs and the first-in, first-out queue the engine workers take them from."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from deepdream_protocol.pixels import PixelFormat


@dataclass(eq=False)
class Job:
    """One client's submitted dream; ``peer`` is the client's ROUTER identity."""

    peer: bytes
    id: str
    settings: Any  # engine DreamSettings
    format: PixelFormat
    width: int
    height: int
    pixels: memoryview
    mask: memoryview | None = None
    mask_dtype: str = "u8"
    preview: int = 0
    guide: memoryview | None = None  # the guide image file the client sent, as stored
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.peer, self.id)

    @contextlib.contextmanager
    def guide_on_disk(self) -> Iterator[str | None]:
        """The guide image the client sent, as a private temporary file (the image readers
        read files), removed afterwards; None when none came with the job."""
        if self.guide is None:
            yield None
            return
        fd, path = tempfile.mkstemp(prefix="deepdream-guide-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self.guide)
            yield path
        finally:
            os.unlink(path)


class JobQueue:
    """Jobs in order of arrival, shared by the workers; knows which one each is running."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queued: deque[Job] = deque()
        self._running: dict[tuple[bytes, str], Job] = {}
        self._closed = False
        self._cond = threading.Condition()

    def put(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it.  ValueError when full."""
        with self._cond:
            if len(self._queued) >= self.limit:
                raise ValueError(f"the daemon's queue is full ({self.limit} jobs); try later")
            ahead = len(self._queued) + len(self._running)
            self._queued.append(job)
            self._cond.notify()
            return ahead

    def get(self, timeout: float | None = None) -> Job | None:
        """The next job (now marked running), or None once the queue is closed; raises
        TimeoutError when ``timeout`` seconds pass with nothing to run."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queued or self._closed, timeout):
                raise TimeoutError
            if self._closed:
                return None
            job = self._queued.popleft()
            self._running[job.key] = job
            return job

    def done(self, job: Job) -> None:
        with self._cond:
            if self._running.get(job.key) is job:  # (not a new job that took its id since)
                del self._running[job.key]

    def known(self, key: tuple[bytes, str]) -> bool:
        with self._cond:
            return key in self._running or any(j.key == key for j in self._queued)

    def cancel(self, key: tuple[bytes, str]) -> Job | None:
        """Remove a queued job and return it; a running one is only flagged (returns None)."""
        with self._cond:
            running = self._running.get(key)
            if running is not None:
                running.cancel.set()
                return None
            for job in self._queued:
                if job.key == key:
                    self._queued.remove(job)
                    return job
            return None

    def drop_peer(self, peer: bytes) -> tuple[int, list[Job]]:
        """A client vanished: flag its running jobs, remove its queued ones; returns how
        many running ones were flagged now (not before) and the queued ones."""
        with self._cond:
            flagged = 0
            for job in self._running.values():
                if job.peer == peer and not job.cancel.is_set():
                    job.cancel.set()
                    flagged += 1
            gone = [j for j in self._queued if j.peer == peer]
            for job in gone:
                self._queued.remove(job)
            return flagged, gone

    def close(self) -> list[Job]:
        """Stop handing out jobs: running ones are flagged, queued ones returned."""
        with self._cond:
            self._closed = True
            for job in self._running.values():
                job.cancel.set()
            left = list(self._queued)
            self._queued.clear()
            self._cond.notify_all()
            return left

    @property
    def closed(self) -> bool:
        return self._closed

    def waiting(self) -> list[tuple[Job, int]]:
        """The queued jobs, each with how many jobs are ahead of it (running ones included)."""
        with self._cond:
            ahead = len(self._running)
            return [(job, ahead + i) for i, job in enumerate(self._queued)]

    def running(self) -> list[Job]:
        with self._cond:
            return list(self._running.values())

    def status(self) -> tuple[list[str], int]:
        """(ids of the running jobs, number queued)."""
        with self._cond:
            return [j.id for j in self._running.values()], len(self._queued)
