"""Fixtures shared across test folders: the source tree on sys.path, a user config that
cannot leak in, and tiny random-weight models (no download, the same every run)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _src in (ROOT / "shared", ROOT / "daemon"):  # run from a checkout without installing
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the user's config folder and TORCH_HOME at an empty temp folder."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("HOME", "XDG_CONFIG_HOME", "APPDATA"):
        monkeypatch.setenv(var, str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.delenv("DEEPDREAM_MODELS_FILE", raising=False)
    yield home


@pytest.fixture(scope="session")
def tiny_models_file() -> Path:
    from tests.support import TINY_MODELS

    return TINY_MODELS


@pytest.fixture(scope="session")
def tiny_model(tiny_models_file: Path):  # -> DreamModel (import deferred: torch is slow)
    from deepdream.models import registry

    return registry.load("tiny", "cpu", models_file=tiny_models_file)


@pytest.fixture(scope="session")
def make_image():  # -> (h, w, channels=3, seed=0) -> np.ndarray
    return smooth_image


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A deterministic photo-like float32 image: smooth colour fields, values in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, 4, channels))
    ys = np.linspace(0, 3, h)[:, None]
    xs = np.linspace(0, 3, w)[None, :]
    y0, x0 = np.floor(ys).astype(int).clip(0, 2), np.floor(xs).astype(int).clip(0, 2)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    img = (coarse[y0, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1, x0] * fy * (1 - fx)
           + coarse[y0, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1, x0 + 1] * fy * fx)
    return (0.1 + 0.8 * img).astype(np.float32)
