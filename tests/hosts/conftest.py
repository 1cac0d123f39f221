"""Shared by the GIMP and Krita real-host tests: the cached Debian trixie root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts import trixie_root
from tests.support.daemon import running_daemon


@pytest.fixture(scope="session")
def host_root() -> Path:
    """The ready root (built on first use); skips, saying why, where it cannot be built."""
    reason = trixie_root.missing_requirement()
    if reason:
        print(f"skipping host tests: {reason}")
        pytest.skip(reason)
    return trixie_root.ensure_root()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A real daemon on the host's loopback (the root shares its network) with the tiny model."""
    with running_daemon() as ep:
        yield ep
