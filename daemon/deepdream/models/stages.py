"""Running a trunk cut into named stages, stopping as soon as every wanted layer is out."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


def run_stages(
    x: Tensor, stages: Iterable[tuple[str, nn.Module]], wanted: set[str]
) -> dict[str, Tensor]:
    """Feed ``x`` through the stages in order and return the outputs of those named in
    ``wanted``; stages past the deepest wanted one are not run."""
    out: dict[str, Tensor] = {}
    for name, stage in stages:
        x = stage(x)
        if name in wanted:
            out[name] = x
            if len(out) == len(wanted):
                break
    return out
