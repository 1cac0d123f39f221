"""Per-step conditioning of the gradient and the image (what keeps a dream well-behaved)."""

from __future__ import annotations

import torch


def normalize_gradient(g: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``g`` in place to mean |g| = 1, so ``step`` means pixels per step whatever the
    layer's scale. Stays on the device (no host sync)."""
    mean_abs = torch.linalg.vector_norm(g, ord=1) / g.numel()  # no |g|-sized temporary
    return g.div_(mean_abs + eps)


def keep_in_range(x: torch.Tensor) -> torch.Tensor:
    """Clip to the displayable range [0, 1], in place."""
    return x.clamp_(0.0, 1.0)
