"""A models file edited while the daemon runs: the daemon dreams with what it says now."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from deepdream_protocol.client import Client
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import daemon_process
from tests.support.jobs import H, W, host_pixels

pytestmark = pytest.mark.daemon

FMT = PixelFormat("RGBA", "u8")


def _declare(path: Path, arch: str) -> None:
    path.write_text(f'[models.mine]\narch = "{arch}"\nweights = "random"\n')


def test_a_model_redefined_in_the_models_file_is_loaded_anew(tmp_path: Path) -> None:
    """The catalog read the edited file, but the warm model was kept by its name: a
    GoogLeNet declared a VGG16 was still dreamed, and the VGG's layers were refused."""
    models = tmp_path / "models.toml"
    _declare(models, "googlenet")
    pixels = host_pixels(FMT)
    dream = {"model": "mine", "iterations": 1, "octaves": 1}
    with daemon_process(models) as daemon, Client(daemon.endpoint, timeout=60) as c:
        assert len(c.dream({**dream, "layer": "inception3a"}, pixels, W, H, FMT)) == len(pixels)
        _declare(models, "vgg16")
        time.sleep(0.01)  # (a new modification time, where it is coarse)
        assert c.catalog()["models"]["mine"]["default_layer"] == "relu4_3"
        out = c.dream({**dream, "layer": "relu4_3"}, pixels, W, H, FMT)
        assert len(out) == len(pixels) and out != pixels
        assert "model mine was redefined; loading it anew" in daemon.log_text()
