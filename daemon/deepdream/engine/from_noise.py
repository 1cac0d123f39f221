"""Dreaming from nothing (feature visualisation): the image is optimised through a
frequency-domain, colour-decorrelated parameterisation instead of pixel by pixel.

Pixel-space ascent from noise gives high-frequency mush; scaling the Fourier coefficients by
1/frequency and mixing colours through the square root of natural images' colour covariance
(Lucid's parameterisation) makes every step change coherent shapes and colours.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..models.network import DreamModel
from .objectives import Objective
from .priors_extra import random_affine
from .tiling import gradient, random_offsets

# Square root of ImageNet's RGB colour covariance (from its SVD), as published with Lucid.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_MIX = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()
LEARNING_RATE = 0.05  # Adam's rate for a ``step`` of 1.5 (the default), scaled with it


class FourierImage(nn.Module):
    """An (1, 3, H, W) image in [0, 1] drawn from a scaled spectrum in decorrelated colour."""

    def __init__(self, height: int, width: int, generator: torch.Generator,
                 sd: float = 0.01, decay: float = 1.0) -> None:
        super().__init__()
        self.size = (height, width)
        fy = torch.fft.fftfreq(height).view(-1, 1)
        fx = torch.fft.rfftfreq(width).view(1, -1)
        freqs = torch.sqrt(fx * fx + fy * fy)
        # 1/f: low frequencies carry the energy, as in photographs
        self.register_buffer("scale", 1.0 / freqs.clamp(min=1.0 / max(height, width)) ** decay)
        shape = (3, height, width // 2 + 1, 2)
        self.spectrum = nn.Parameter(torch.randn(shape, generator=generator) * sd)

    def forward(self) -> Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        img = torch.fft.irfft2(spec, s=self.size, norm="ortho") / 4.0
        mix = _COLOR_MIX.to(img.device, img.dtype)
        img = torch.einsum("chw,dc->dhw", img, mix)
        return torch.sigmoid(img)[None]


def visualize(
    model: DreamModel,
    objective: Objective,
    height: int,
    width: int,
    steps: int,
    step_size: float,
    seed: int,
    tile: int,
    jitter: int = 8,
    transform: bool = True,
    on_step: Callable[[int], None] | None = None,
    between_tiles: Callable[[], None] | None = None,
) -> np.ndarray:
    """Optimise a Fourier image of (height, width) for ``objective``; (H, W, 3) float32.

    Each step rolls the image by up to ``jitter`` pixels (and, with ``transform``, scales and
    turns it a little) so only patterns robust to small shifts survive.
    """
    device = model.device
    gen = torch.Generator().manual_seed(seed)
    param = FourierImage(height, width, gen).to(device)
    opt = torch.optim.Adam(param.parameters(), lr=LEARNING_RATE * step_size / 1.5)
    rng = random.Random(seed)
    for s in range(max(1, steps)):
        opt.zero_grad(set_to_none=True)
        img = param()
        view = random_affine(img, gen, wrap=True) if transform else img
        offset = random_offsets(rng, height, width, tile, jitter)
        g = gradient(view.detach(), model, objective, tile, offset,
                     between_tiles=between_tiles)
        # ascend: hand Adam the negative of the objective's gradient
        view.backward(-g / (g.abs().mean() + 1e-12))
        opt.step()
        if on_step is not None:
            on_step(s)
    with torch.no_grad():
        out = param()
    return out[0].permute(1, 2, 0).float().cpu().numpy()


def noise_steps(iterations: int, octaves: int) -> int:
    """Steps for a from-noise dream: the work the same settings spend on an image."""
    return max(1, iterations * octaves)
