"""Shared by the GIMP and Krita real-host tests: the cached Debian trixie root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hosts import trixie_root


@pytest.fixture(scope="session")
def host_root() -> Path:
    """The ready root (built on first use); skips, saying why, where it cannot be built."""
    reason = trixie_root.missing_requirement()
    if reason:
        print(f"skipping host tests: {reason}")
        pytest.skip(reason)
    return trixie_root.ensure_root()
