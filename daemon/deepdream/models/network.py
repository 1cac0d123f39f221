"""DreamModel: a network trunk that takes sRGB images in [0, 1] and returns named layers."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import torch
from torch import nn

from .archs import CAFFE_MEAN_BGR, Arch
from .stages import run_stages

if TYPE_CHECKING:
    from .registry import ModelSpec


class DreamModel(nn.Module):
    """The trunk of one network with its input preprocessing folded in.

    ``forward(x, layers)`` runs the stages in order and stops after the deepest layer asked
    for, so dreaming a shallow layer never pays for the rest of the network.
    """

    def __init__(self, spec: ModelSpec, arch: Arch, net: nn.Module,
                 head: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.arch_has_head = arch.head is not None  # (class objectives: see has_logits)
        stages = arch.stages(net)
        # the classifier as a last stage named "logits" (class objectives), when loaded
        self.num_classes = 0
        if head is not None:
            stages = [*stages, ("logits", head)]
            self.num_classes = [m for m in head.modules() if isinstance(m, nn.Linear)][-1] \
                .out_features
        self.stage_names = [name for name, _ in stages]
        self.stages = nn.ModuleList(module for _, module in stages)
        if spec.preprocess == "caffe":
            self.bgr, scale = True, 255.0
            mean, std = CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)
        else:
            self.bgr, scale = False, 1.0
            mean, std = arch.torchvision_mean, arch.torchvision_std
        # (x * scale - mean) / std folded into one multiply-add
        mul = [scale / s for s in std]
        add = [-m / s for m, s in zip(mean, std, strict=True)]
        self.register_buffer("_mul", torch.tensor(mul).view(1, 3, 1, 1))
        self.register_buffer("_add", torch.tensor(add).view(1, 3, 1, 1))
        self.eval()
        self.requires_grad_(False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        return self._mul.device

    @property
    def has_logits(self) -> bool:
        return self.num_classes > 0

    def forward(self, x: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        """x: (N, 3, H, W) RGB in [0, 1]. Returns {layer: activation} for ``layers``."""
        unknown = [n for n in layers if n not in self.spec.layers
                   and not (n == "logits" and self.has_logits)]
        if unknown:
            raise KeyError(f"unknown layer {unknown[0]!r} for model {self.name!r}")
        wanted = set(layers)
        if self.bgr:
            x = x.flip(1)
        x = x * self._mul + self._add
        return run_stages(x, zip(self.stage_names, self.stages, strict=True), wanted)
