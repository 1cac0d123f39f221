"""A real daemon (tiny random model, loopback) shared by the daemon tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.daemon import running_daemon
from tests.support.jobs import MAX_PIXELS, Daemon


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    log = tmp_path_factory.mktemp("daemon") / "daemon.log"
    with running_daemon(extra_args=("--max-pixels", str(MAX_PIXELS), "--log-file",
                                    str(log))) as endpoint:
        yield Daemon(endpoint, log)
