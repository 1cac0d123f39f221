"""Model names → specs → loaded DreamModels: the built-in torchvision networks plus the
custom ones from TOML files (see custom.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from deepdream_protocol.settings import DEFAULTS

from .. import accel
from .archs import ARCHS
from .custom import models_files, read_models_file
from .network import DreamModel
from .weights import ModelError, build_random, load_file_weights, load_torchvision_weights

DEFAULT_MODEL = DEFAULTS["model"]  # (the shared settings table's: one place for it)

_DESCRIPTIONS = {
    "googlenet": "GoogLeNet (Inception v1), ImageNet: the classic DeepDream look",
    "vgg16": "VGG16, ImageNet: eyes, rings and fine textures",
    "vgg19": "VGG19, ImageNet: like VGG16, a little deeper",
    "resnet50": "ResNet-50, ImageNet: dense, painterly patterns",
    "inception_v3": "Inception v3, ImageNet: crisp, busy structures",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str
    weights: str  # "torchvision", "random" or a file path
    preprocess: str = "torchvision"  # or "caffe"
    seed: int = 0  # for random weights
    default_layer: str = ""
    description: str = ""
    source: str = "built-in"
    layers: dict[str, int] = field(default_factory=dict)  # dreamable name -> channels


def _spec(name: str, arch: str, **kw: object) -> ModelSpec:
    a = ARCHS[arch]
    kw.setdefault("default_layer", a.default_layer)
    return ModelSpec(name=name, arch=arch, layers=dict(a.layers), **kw)  # type: ignore[arg-type]


def builtin() -> dict[str, ModelSpec]:
    return {
        name: _spec(name, name, weights="torchvision", description=_DESCRIPTIONS[name])
        for name in ARCHS
        if ARCHS[name].weights_enum  # Caffe archs need a weights file: custom models only
    }


def available(models_file: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """Every model a user can name: built-in first, then custom ones (which may replace)."""
    specs = builtin()
    for path in models_files(models_file):
        for name, entry in read_models_file(path).items():
            specs[name] = _spec(name, **entry)
    return specs


def get_spec(name: str, models_file: str | os.PathLike[str] | None = None, *,
             specs: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """``specs``: what ``available`` answered, when the caller has it (not read again)."""
    specs = available(models_file) if specs is None else specs
    if name not in specs:
        raise ModelError(
            f"unknown model {name!r}; choose one of {', '.join(specs)} "
            "(run 'deepdream models' to see them, or declare it in a models file)"
        )
    return specs[name]


def version(name: str, models_file: str | os.PathLike[str] | None = None) -> Hashable:
    """What ``name`` stands for now: its declaration and its weights file's size and time,
    so that a models file or weights file changed meanwhile is noticed (ModelError when
    the name is unknown)."""
    spec = get_spec(name, models_file)
    stamp = None
    if spec.weights not in ("torchvision", "random"):
        with contextlib.suppress(OSError):  # (a missing file: load says so)
            st = Path(spec.weights).stat()
            stamp = (st.st_size, st.st_mtime_ns)
    return spec.arch, spec.weights, spec.preprocess, spec.seed, stamp


def load(
    name: str,
    device: torch.device | str = "cpu",
    models_file: str | os.PathLike[str] | None = None,
    accelerate: bool = True,
) -> DreamModel:
    """Build the named model's trunk with its weights on ``device``; raises ModelError.

    ``accelerate``: made fast for ``device`` by accel.prepare (BatchNorm folded into the
    convolutions, channels_last, compute dtype); False keeps the plain network."""
    spec = get_spec(name, models_file)
    arch = ARCHS[spec.arch]
    net = build_random(arch, spec.seed)
    has_head = spec.weights == "random"  # a random network's classifier is random too
    if spec.weights == "torchvision":
        has_head = load_torchvision_weights(arch, net)
    elif spec.weights != "random":
        has_head = load_file_weights(arch, net, Path(spec.weights))
    head = arch.head(net) if arch.head is not None and has_head else None
    model = DreamModel(spec, arch, net, head).to(device)
    if accelerate:
        accel.prepare(model)
    return model
