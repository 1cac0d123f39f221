"""With real trained weights (the VGG16 trunk of HED in ../shared/models, Caffe
preprocessing) a dream does what DeepDream promises: the dreamed layer fires several
times harder and the picture gains fine structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, dream
from deepdream.models import registry
from PIL import Image

from tests.support import MATERIAL

WEIGHTS = MATERIAL / "models" / "vgg16-hed-features.pth"
PHOTO = MATERIAL / "images" / "chelsea.png"

pytestmark = [
    pytest.mark.weights,
    pytest.mark.skipif(not WEIGHTS.is_file(),
                       reason=f"trained weights not found at {WEIGHTS} (see its README)"),
]


def mean_square(model, image: np.ndarray, layer: str) -> float:
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        return model(x, [layer])[layer].square().mean().item()


def high_frequency(image: np.ndarray) -> float:
    luma = image.mean(axis=2)
    return float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())


def test_trained_vgg16_dream_amplifies_its_layer_and_adds_detail(
    tmp_path: Path, make_image,
) -> None:
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.hed]\narch = "vgg16"\nweights = "{WEIGHTS.as_posix()}"\n'
                    'preprocess = "caffe"\n')
    model = registry.load("hed", "cpu", models_file=toml)
    if PHOTO.is_file():
        photo = Image.open(PHOTO).convert("RGB").resize((144, 96), Image.Resampling.LANCZOS)
        image = np.asarray(photo, dtype=np.float32) / 255
    else:
        image = make_image(96, 144)
    settings = DreamSettings.from_dict({"model": "hed", "layer": "relu4_3", "octaves": 2,
                                        "iterations": 6, "seed": 0})
    out = dream(image, model, settings)
    before, after = mean_square(model, image, "relu4_3"), mean_square(model, out, "relu4_3")
    assert after > 4 * before, (before, after)
    assert high_frequency(out) > 1.15 * high_frequency(image)
