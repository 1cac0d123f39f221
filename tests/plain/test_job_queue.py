"""The daemon's job queue as its workers use it: first in, first out, a bounded wait (an
idle worker hands memory back after one), and closing wakes every waiting worker."""

from __future__ import annotations

import threading

import pytest
from deepdream.jobs import Job, JobQueue
from deepdream_protocol.pixels import PixelFormat


def job(name: str) -> Job:
    return Job(peer=b"p", id=name, settings=None, format=PixelFormat("RGBA", "u8"), width=1,
               height=1, pixels=memoryview(b"\0\0\0\0"))


def test_jobs_come_out_in_order_and_are_running_until_done() -> None:
    queue = JobQueue(limit=4)
    assert queue.put(job("a")) == 0 and queue.put(job("b")) == 1
    first = queue.get(timeout=1)
    assert first is not None and first.id == "a"
    assert queue.status() == (["a"], 1)
    queue.done(first)
    second = queue.get(timeout=1)
    assert second is not None and second.id == "b"


def test_a_bounded_wait_ends_with_timeout_and_a_job_put_meanwhile_is_taken() -> None:
    queue = JobQueue(limit=4)
    with pytest.raises(TimeoutError):
        queue.get(timeout=0.05)
    threading.Timer(0.05, queue.put, [job("late")]).start()
    taken = queue.get(timeout=5)
    assert taken is not None and taken.id == "late"


def test_closing_wakes_a_waiting_worker_with_none() -> None:
    queue = JobQueue(limit=4)
    threading.Timer(0.05, queue.close).start()
    assert queue.get() is None
    assert queue.get(timeout=0.01) is None  # closed stays closed, no timeout


def test_a_job_done_late_leaves_a_new_job_of_its_id_running() -> None:
    """(With several workers: a job's end marked again after its id was taken anew.)"""
    queue = JobQueue(limit=4)
    queue.put(job("a"))
    old = queue.get(timeout=1)
    queue.done(old)
    queue.put(job("a"))
    new = queue.get(timeout=1)
    queue.done(old)  # late: the worker's own "done" after the last word's
    assert queue.known(new.key) and queue.status() == (["a"], 0)
