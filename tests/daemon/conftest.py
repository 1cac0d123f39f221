"""A real daemon (tiny random model, loopback) shared by the daemon tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.daemon import Daemon, daemon_process
from tests.support.jobs import MAX_PIXELS


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    with daemon_process(extra_args=("--max-pixels", str(MAX_PIXELS))) as served:
        yield served
