"""Gradients of an objective over an image of any size, one tile at a time.

Every step rolls the image by a random offset (the DeepDream jitter; with tiles, also a
random shift of the whole tile grid), so tile borders land somewhere else each step and
leave no seam. Each tile runs with a halo of context around it and keeps only its inner
part's gradient, so memory is bounded by the tile size and no full-resolution activation
ever exists. Tile and halo edges sit on multiples of ``ALIGN`` pixels, the networks' largest
stride, and halos stop at the rolled image's edges, so with a halo as wide as the layer's
receptive field the tiled gradient equals the untiled one.
"""

from __future__ import annotations

import math
import random
import weakref
from collections.abc import Callable, Collection
from contextvars import ContextVar

import torch

from ..accel import compute_dtype
from ..devices import free_memory
from ..models.network import DreamModel
from .objectives import Objective

#: how far the step's roll (the jitter) moved the picture, as fractions of its height and
#: width (``gradient`` sets it): a neuron (objectives_extra) stays on its part of the
#: picture, where it would otherwise see the opposite edge's pixels whenever the roll
#: carries them there
ROLL: ContextVar[tuple[float, float]] = ContextVar("deepdream_roll", default=(0.0, 0.0))

# Rough forward+backward bytes per input pixel, trunk up to a mid-depth layer, float32.
# GoogLeNet to inception4c measured about 620 B/px of peak RSS on the CPU (2x margin here,
# which lets a 1024x768 photo run as one tile: no halo work).
_BYTES_PER_PIXEL = {"googlenet": 1200, "vgg16": 6000, "vgg19": 7000, "resnet50": 4000,
                    "inception_v3": 3500}
_CPU_BUDGET = 1536 << 20  # keep CPU dreams within a few GB whatever the machine has
MIN_TILE, MAX_TILE = 128, 4096
ALIGN = 32  # the largest stride of the trunks we run


# the smallest input side each model runs on, per set of layers (min_input_side)
_MIN_SIDES: weakref.WeakKeyDictionary[DreamModel, dict[tuple[str, ...], int | None]] = (
    weakref.WeakKeyDictionary())


def input_too_small(exc: BaseException) -> bool:
    """Whether torch refused an input as smaller than a layer's window (a pooling's output
    size 0, or a convolution's kernel larger than its padded input)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "too small" in text or "Kernel size can't be greater" in text)


def min_input_side(model: DreamModel, layers: Collection[str],
                   limit: int = 1024) -> int | None:
    """The smallest side n such that an n x n image runs through ``model`` up to ``layers``
    (each side needs it: the networks' windows work along the axes independently); None when
    not even ``limit`` does.  Found by running zeros, without gradients, once per model and
    set of layers (through ``forward``: a probe of sizes, not a dream, so the model's hooks
    do not see it)."""
    key = tuple(sorted(layers))
    found = _MIN_SIDES.setdefault(model, {})
    if key in found:
        return found[key]

    def runs(n: int) -> bool:
        x = torch.zeros(1, 3, n, n, device=model.device)
        try:
            with torch.no_grad():
                model.forward(x, key)
        except RuntimeError as exc:
            if not input_too_small(exc):
                raise
            return False
        return True

    fails, side = 0, 1  # widths that fail and that may run: double, then bisect between
    while not runs(side):
        fails, side = side, side * 2
        if side > limit:
            found[key] = None
            return None
    while side - fails > 1:
        mid = (fails + side) // 2
        fails, side = (fails, mid) if runs(mid) else (mid, side)
    found[key] = side
    return side


def mirror_pad(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(H, W, C) ``x`` grown to (height, width) around its centre with mirrored copies of
    itself (repeating as often as it takes, so even a one-pixel side works: it repeats)."""
    h, w = x.shape[:2]
    rows = _mirrored(h, height, x.device)
    cols = _mirrored(w, width, x.device)
    return x.index_select(0, rows).index_select(1, cols)


def pad_offset(n: int, size: int) -> int:
    """Where the original ``n`` starts in ``size`` grown by mirror_pad."""
    return (size - n) // 2


def _mirrored(n: int, size: int, device: torch.device) -> torch.Tensor:
    i = (torch.arange(size, device=device) - pad_offset(n, size)).remainder_(2 * n)
    return torch.where(i < n, i, 2 * n - 1 - i)


def auto_tile(model: DreamModel) -> int:
    """Largest tile edge (multiple of 64) whose activations fit the device's free memory."""
    device = model.device
    budget = free_memory(device) * (0.6 if device.type != "cpu" else 0.25)
    if device.type == "cpu":
        budget = min(budget, _CPU_BUDGET)
    if device.type != "cpu" and compute_dtype(model, device) is not None:
        # half-size activations on a GPU; on the CPU a bf16 tile measured no smaller (8192^2
        # at a doubled budget peaked at 5.2 GiB against float32's 4.3), so no doubling there
        budget *= 2
    per_px = _BYTES_PER_PIXEL.get(model.spec.arch, 6000)
    edge = int(math.sqrt(max(budget, 0) / per_px)) // 64 * 64
    return max(MIN_TILE, min(MAX_TILE, edge))


def spans(n: int, tile: int) -> list[tuple[int, int]]:
    """Split 0..n into near-equal spans of about ``tile``, cut at multiples of ALIGN."""
    tile = max(tile, ALIGN)
    k = max(1, math.ceil(n / tile))
    bounds = sorted({min(n, round(i * n / k / ALIGN) * ALIGN) for i in range(k)} | {n})
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def default_halo(tile: int) -> int:
    return max(ALIGN, tile // 8 // ALIGN * ALIGN)


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
    offset: tuple[int, int] | torch.Tensor = (0, 0),
    halo: int | None = None,
    cache_enabled: bool = True,
    between_tiles: Callable[[], None] | None = None,
) -> torch.Tensor:
    """d objective / d x for x (1, 3, H, W), computed on the torus rolled by ``offset``.

    ``offset`` may be a (2,) integer tensor on x's device: then nothing reads it on the host
    and the whole gradient can be captured in a CUDA graph (fastpath.py; ``cache_enabled``
    False there, as ``objective_gradient`` says).  ``between_tiles`` runs before each tile
    but the first: a cancel raised there ends a step of a large image on the CPU (minutes)
    at once, rather than after it."""
    _, _, h, w = x.shape
    halo = default_halo(tile) if halo is None else halo
    dtype = compute_dtype(model, x.device)  # accel.prepare's choice, else the device's
    if h <= tile and w <= tile and not isinstance(offset, torch.Tensor):
        # one tile: a roll each way beats a gather and a scatter
        rolled = torch.roll(x, (-offset[0], -offset[1]), (2, 3)) if any(offset) else x
        roll = ROLL.set((offset[0] / h, offset[1] / w))  # (a neuron follows its pixels)
        try:
            g = objective_gradient(rolled.detach(), model, objective, dtype, 1.0)
        finally:
            ROLL.reset(roll)
        return torch.roll(g, offset, (2, 3)) if any(offset) else g
    # Tiles are gathered one at a time (memory: one tile's copy, not the whole image's).
    g = torch.empty_like(x)
    first = True
    for r0, r1 in spans(h, tile):
        p0, p1 = max(r0 - halo, 0), min(r1 + halo, h)  # coordinates in the rolled image
        rows = _wrapped(p0, p1, offset[0], h, x.device)
        for c0, c1 in spans(w, tile):
            q0, q1 = max(c0 - halo, 0), min(c1 + halo, w)
            cols = _wrapped(q0, q1, offset[1], w, x.device)
            if between_tiles is not None and not first:
                between_tiles()
            first = False
            xt = x.index_select(2, rows).index_select(3, cols)
            # a tile's mean weighted by its share of the image ~ the whole image's mean
            share = xt.shape[2] * xt.shape[3] / (h * w)
            gt = objective_gradient(xt, model, objective, dtype, share, cache_enabled)
            inner = gt[:, :, r0 - p0:r1 - p0, c0 - q0:c1 - q0]
            g[:, :, rows[r0 - p0:r1 - p0, None], cols[None, c0 - q0:c1 - q0]] = inner
    return g


def objective_gradient(xt: torch.Tensor, model: torch.nn.Module, objective: Objective,
                       dtype: torch.dtype | None, share: float = 1.0,
                       cache_enabled: bool = True) -> torch.Tensor:
    """d (share x objective) / d xt, the forward under ``dtype`` autocast (``cache_enabled``
    False for a CUDA graph, which must not capture a weight cast made outside it)."""
    xt = xt.requires_grad_(True)
    with torch.autocast(xt.device.type, dtype=dtype or torch.float32,
                        enabled=dtype is not None, cache_enabled=cache_enabled):
        loss = objective(model(xt, objective.layers))
    (g,) = torch.autograd.grad(loss * share if share != 1.0 else loss, xt)
    return g


def _wrapped(start: int, stop: int, offset: int | torch.Tensor, n: int,
             device: torch.device) -> torch.Tensor:
    return (torch.arange(start, stop, device=device) + offset).remainder_(n)
