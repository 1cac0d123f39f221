"""Gradients of an objective over an image of any size, one tile at a time.

The image is treated as a torus: every step shifts the tile grid by a random offset (the
DeepDream "roll"), so tile borders land somewhere else each step and leave no seam. Each
tile is run with a halo of context around it and only its inner part's gradient is kept,
so memory is bounded by the tile size and no full-resolution activation ever exists.
"""

from __future__ import annotations

import math
import random

import torch

from ..devices import autocast_dtype, free_memory
from ..models.network import DreamModel
from .objectives import Objective

# Rough forward+backward bytes per input pixel, trunk up to a mid-depth layer, float32.
_BYTES_PER_PIXEL = {"googlenet": 2500, "vgg16": 6000, "vgg19": 7000, "resnet50": 4000,
                    "inception_v3": 3500}
_CPU_BUDGET = 1536 << 20  # keep CPU dreams within a few GB whatever the machine has
MIN_TILE, MAX_TILE = 128, 4096


def auto_tile(model: DreamModel) -> int:
    """Largest tile edge (multiple of 64) whose activations fit the device's free memory."""
    device = model.device
    budget = free_memory(device) * (0.6 if device.type != "cpu" else 0.25)
    if device.type == "cpu":
        budget = min(budget, _CPU_BUDGET)
    if autocast_dtype(device) is not None:
        budget *= 2  # half-size activations
    per_px = _BYTES_PER_PIXEL.get(model.spec.arch, 6000)
    edge = int(math.sqrt(max(budget, 0) / per_px)) // 64 * 64
    return max(MIN_TILE, min(MAX_TILE, edge))


def spans(n: int, tile: int) -> list[tuple[int, int]]:
    """Split 0..n into near-equal spans no longer than ``tile``."""
    k = max(1, math.ceil(n / tile))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def random_offsets(rng: random.Random, h: int, w: int, tile: int, jitter: int) -> tuple[int, int]:
    """Jitter roll, plus a random grid shift along each axis that is split into tiles."""
    oy = rng.randint(-jitter, jitter) if jitter else 0
    ox = rng.randint(-jitter, jitter) if jitter else 0
    if h > tile:
        oy += rng.randrange(h)
    if w > tile:
        ox += rng.randrange(w)
    return oy, ox


def gradient(
    x: torch.Tensor,
    model: DreamModel,
    objective: Objective,
    tile: int,
    offset: tuple[int, int] = (0, 0),
    halo: int | None = None,
) -> torch.Tensor:
    """d objective / d x for x (1, 3, H, W), computed on the torus rolled by ``offset``."""
    _, _, h, w = x.shape
    halo = max(16, tile // 8) if halo is None else halo
    row_spans, col_spans = spans(h, tile), spans(w, tile)
    # no halo along an axis that is one tile; never let a halo wrap onto its own tile
    hy = 0 if len(row_spans) == 1 else min(halo, (h - max(b - a for a, b in row_spans)) // 2)
    hx = 0 if len(col_spans) == 1 else min(halo, (w - max(b - a for a, b in col_spans)) // 2)
    dtype = autocast_dtype(x.device)
    g = torch.empty_like(x)
    for r0, r1 in row_spans:
        rows = _wrapped(r0 - hy, r1 + hy, offset[0], h, x.device)
        for c0, c1 in col_spans:
            cols = _wrapped(c0 - hx, c1 + hx, offset[1], w, x.device)
            xt = x.index_select(2, rows).index_select(3, cols).requires_grad_(True)
            with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
                loss = objective(model(xt, objective.layers))
            # a tile's mean weighted by its share of the image ~ the whole image's mean
            share = xt.shape[2] * xt.shape[3] / (h * w)
            (gt,) = torch.autograd.grad(loss * share, xt)
            inner = gt[:, :, hy:hy + (r1 - r0), hx:hx + (c1 - c0)]
            g[:, :, rows[hy:hy + (r1 - r0), None], cols[None, hx:hx + (c1 - c0)]] = inner
    return g


def _wrapped(start: int, stop: int, offset: int, n: int, device: torch.device) -> torch.Tensor:
    return torch.arange(start + offset, stop + offset, device=device).remainder_(n)
