"""The plain fp32 eager DeepDream loop every benchmark figure is a ratio against.

Deliberately naive and independent of the engine: per step a random roll, forward to the
layer, L2 objective, backward to the input, ``x += step / mean|g| * g``, roll back, clip;
octaves from small to full carrying only the dreamed detail (Google's schedule).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn


def octave_sizes(h: int, w: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    sizes = [(round(h * scale ** -i), round(w * scale ** -i)) for i in range(octaves - 1, 0, -1)]
    return [s for s in sizes if min(s) >= 32] + [(h, w)]


def reference_dream(image: torch.Tensor, model: nn.Module, layer: str, octaves: int = 4,
                    scale: float = 1.4, steps: int = 10, step: float = 1.5,
                    jitter: int = 32, seed: int = 0) -> torch.Tensor:
    """image (1, 3, H, W) float32 in [0, 1] on the model's device -> dreamed, same shape."""
    rng = random.Random(seed)
    h, w = image.shape[2:]
    detail = None
    x = image
    for size in octave_sizes(h, w, octaves, scale):
        base = F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                             antialias=True) if size != (h, w) else image
        x = base.clone() if detail is None else base + F.interpolate(
            detail, size=size, mode="bilinear", align_corners=False)
        for _ in range(steps):
            oy, ox = rng.randint(-jitter, jitter), rng.randint(-jitter, jitter)
            xr = torch.roll(x, (oy, ox), (2, 3)).detach().requires_grad_(True)
            loss = model(xr, [layer])[layer].square().mean()
            (g,) = torch.autograd.grad(loss, xr)
            g = torch.roll(g, (-oy, -ox), (2, 3))
            x = (x + g * (step / 255 / (g.abs().mean() + 1e-8))).clamp(0, 1)
        detail = x - base
    return x.detach()
