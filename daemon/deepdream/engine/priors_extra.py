"""Step options beyond mean-|g| normalisation: other gradient normalisations, smoothing,
penalties, transformation robustness, keep-colours and seamless wrapping.

Images and gradients are (N, 3, H, W) tensors, sRGB-encoded in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .priors import normalize_gradient as normalize_mean

NORMS = ("mean", "std", "laplacian")


# --- gradient normalisation --------------------------------------------------------------


def normalize_std(g: Tensor, eps: float = 1e-8) -> Tensor:
    """The TensorFlow tutorial's rule: divide by the gradient's standard deviation."""
    return g / (g.std() + eps)


def _gaussian_kernel(sigma: float, channels: int, device: torch.device) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    return k.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)


def blur(x: Tensor, sigma: float, wrap: bool = False) -> Tensor:
    """Separable Gaussian blur; edges reflected, or wrapped around for seamless images."""
    if sigma <= 0:
        return x
    c = x.shape[1]
    k = _gaussian_kernel(sigma, c, x.device).to(x.dtype)
    r = k.shape[-1] // 2
    if wrap:  # (by index: F.pad's circular mode refuses a pad beyond the side, a small image)
        x = F.conv2d(_wrapped(x, r, 3), k, groups=c)
        return F.conv2d(_wrapped(x, r, 2), k.transpose(2, 3), groups=c)
    # reflect padding needs the pad to be smaller than the side
    mode = "replicate" if r >= x.shape[2] or r >= x.shape[3] else "reflect"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k, groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.transpose(2, 3), groups=c)


def _wrapped(x: Tensor, r: int, dim: int, more: int = 0) -> Tensor:
    """``x`` padded by ``r`` on both sides of ``dim`` (``r + more`` after it) with its own
    pixels from the other side, around as many times as that takes."""
    n = x.shape[dim]
    return x.index_select(dim, torch.arange(-r, n + r + more, device=x.device).remainder(n))


def _down(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 2, ceil_mode=True)


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_split(x: Tensor, levels: int) -> list[Tensor]:
    """Band-pass pyramid: fine bands first, the low-pass residual last; sums back to ``x``."""
    bands = []
    for _ in range(levels - 1):
        if min(x.shape[2:]) < 2:
            break
        low = _down(x)
        bands.append(x - _up(low, x.shape[2:]))
        x = low
    bands.append(x)
    return bands


def laplacian_merge(bands: list[Tensor]) -> Tensor:
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = _up(x, band.shape[2:]) + band
    return x


def normalize_laplacian(g: Tensor, levels: int = 4, eps: float = 1e-8,
                        wrap: bool = False) -> Tensor:
    """Laplacian-pyramid normalisation (the older TensorFlow DeepDream notebook): each
    frequency band is scaled to unit standard deviation before the bands are summed, so the
    coarse bands are not drowned out by pixel noise: smoother, more colourful dreams.

    ``wrap`` (seamless images): the pyramid's pooling and upsampling clamp at the edges, so
    the gradient is first padded with its own other side, far enough that no clamped edge
    reaches the image, and cut back after; else the seam shows in the step.  The padded
    sides are whole numbers of the coarsest band's pixels, so every band halves exactly."""
    h, w = g.shape[2:]
    pad = 2 ** (levels + 1) if wrap else 0
    if wrap:
        cell = 2 ** (levels - 1)
        g = _wrapped(_wrapped(g, pad, 2, -h % cell), pad, 3, -w % cell)

    def spread(band: Tensor, k: int) -> Tensor:
        """The band's std over the image itself (band ``k`` has 1/2**k of its pixels), not
        the padding: those pixels would count twice, more or less by where the seam is."""
        p = pad >> k
        return band[..., p:p - (-h >> k), p:p - (-w >> k)].std() if wrap else band.std()

    bands = [b / (spread(b, k) + eps) for k, b in enumerate(laplacian_split(g, levels))]
    out = laplacian_merge(bands)
    if wrap:
        out = out[..., pad:pad + h, pad:pad + w]
    return out / (out.abs().mean() + eps)  # same step scale as mean-|g| normalisation


def normalize(g: Tensor, method: str, wrap: bool = False) -> Tensor:
    """Normalise a gradient by ``method`` in ``NORMS``; ``wrap`` for a seamless image."""
    if method == "mean":
        return normalize_mean(g)
    if method == "std":
        return normalize_std(g)
    if method == "laplacian":
        return normalize_laplacian(g, wrap=wrap)
    raise ValueError(f"unknown gradient normalisation {method!r}; use one of {', '.join(NORMS)}")


# --- smoothing and penalties -------------------------------------------------------------


def smoothing_sigma(start: float, step: int, steps: int) -> float:
    """Gradient blur that relaxes over an octave's steps: ``start`` pixels at the first step
    down to a fifth of it at the last (strong blur early sets large shapes, a light one
    late lets detail through)."""
    if start <= 0 or steps <= 1:
        return max(start, 0.0)
    t = step / (steps - 1)
    return start * (1.0 - 0.8 * t)


def tv_step(x: Tensor, amount: float, wrap: bool = False) -> Tensor:
    """One gradient-descent step on the squared total variation, in place: a small heat
    diffusion ``x += amount * laplacian(x)`` that flattens pixel noise (stable up to 0.25)."""
    if amount <= 0:
        return x
    mode = "circular" if wrap else "replicate"
    p = F.pad(x, (1, 1, 1, 1), mode=mode)
    lap = (p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:]
           - 4 * x)
    return x.add_(lap, alpha=min(amount, 0.25))


def l2_step(x: Tensor, amount: float, centre: float = 0.5) -> Tensor:
    """One gradient-descent step on the squared distance from mid-grey, in place: values
    shrink towards ``centre`` by the fraction ``amount``."""
    if amount <= 0:
        return x
    return x.sub_(x - centre, alpha=min(amount, 1.0))


# --- transformation robustness -----------------------------------------------------------


def random_affine(
    x: Tensor, generator: torch.Generator, max_scale: float = 0.05, max_degrees: float = 5.0,
    wrap: bool = False,
) -> Tensor:
    """Differentiably scale by up to ±``max_scale`` and rotate by up to ±``max_degrees``
    (Lucid's transformation robustness), so patterns must survive small changes of view.
    Edges are reflected, or wrapped for seamless images."""
    s = 1.0 + (torch.rand((), generator=generator).item() * 2 - 1) * max_scale
    a = math.radians((torch.rand((), generator=generator).item() * 2 - 1) * max_degrees)
    return affine(x, scale=s, radians=a, wrap=wrap)


def affine(x: Tensor, scale: float, radians: float, wrap: bool = False) -> Tensor:
    """Zoom by ``scale`` (> 1 enlarges) and rotate by ``radians`` about the centre."""
    n, _, h, w = x.shape
    cos, sin = math.cos(radians) / scale, math.sin(radians) / scale
    # affine_grid works in [-1, 1] coordinates; correct the aspect ratio for rotation
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]],
                         dtype=x.dtype, device=x.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if wrap:
        grid = torch.remainder(grid + 1.0, 2.0) - 1.0
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


# --- keep colours ------------------------------------------------------------------------

# BT.601 luma weights on sRGB-encoded values (YCbCr as in JPEG)
_LUMA = (0.299, 0.587, 0.114)


def to_ycbcr(rgb: Tensor) -> Tensor:
    """(..., 3, H, W) R'G'B' -> Y'CbCr, chroma centred on 0."""
    r, g, b = rgb.unbind(-3)
    y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    cb = (b - y) / 1.772
    cr = (r - y) / 1.402
    return torch.stack((y, cb, cr), -3)


def from_ycbcr(ycc: Tensor) -> Tensor:
    y, cb, cr = ycc.unbind(-3)
    r = y + 1.402 * cr
    b = y + 1.772 * cb
    g = (y - _LUMA[0] * r - _LUMA[2] * b) / _LUMA[1]
    return torch.stack((r, g, b), -3)


def keep_colors(dreamed: Tensor, original: Tensor) -> Tensor:
    """The dream's luma with the original's chroma (Cb, Cr), clipped to [0, 1]."""
    y = to_ycbcr(dreamed)[..., :1, :, :]
    chroma = to_ycbcr(original)[..., 1:, :, :]
    return from_ycbcr(torch.cat((y, chroma), -3)).clamp(0.0, 1.0)


def luma_only(g: Tensor) -> Tensor:
    """Project an RGB gradient onto the grey axis, so a step changes luma, not chroma."""
    y = (g * torch.tensor(_LUMA, dtype=g.dtype, device=g.device).view(1, 3, 1, 1)).sum(
        1, keepdim=True)
    return y.expand_as(g).contiguous()


# --- seamless ----------------------------------------------------------------------------


def resize_wrapped(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize that treats the image as periodic (no seam from edge clamping)."""
    h, w = x.shape[2:]
    if (h, w) == tuple(size):
        return x
    padded = F.pad(x, (1, 1, 1, 1), mode="circular")
    # output pixel centres in source pixel units, shifted by the 1-pixel pad, normalised
    ys = (torch.arange(size[0], device=x.device, dtype=x.dtype) + 0.5) * h / size[0] + 1.0
    xs = (torch.arange(size[1], device=x.device, dtype=x.dtype) + 0.5) * w / size[1] + 1.0
    gy = ys / (h + 2) * 2 - 1
    gx = xs / (w + 2) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)
    grid = grid.unsqueeze(0).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)
