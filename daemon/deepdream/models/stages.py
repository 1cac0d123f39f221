"""Running a trunk cut into named stages, stopping as soon as every wanted layer is out."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


def run_stages(
    x: Tensor, stages: Iterable[tuple[str, nn.Module]], wanted: set[str]
) -> dict[str, Tensor]:
    """Feed ``x`` through the stages in order and return the outputs of those named in
    ``wanted``; stages past the deepest wanted one are not run.  A stage with ``split``
    (rewrites.FusedConvStage: a conv stage fused with the ReLU stage after it) gives its
    conv's own output when that layer is wanted."""
    out: dict[str, Tensor] = {}
    for name, stage in stages:
        if name not in wanted:
            x = stage(x)
            continue
        if hasattr(stage, "split"):
            out[name], x = stage.split(x)
        else:
            x = out[name] = stage(x)
        if len(out) == len(wanted):
            break
    return out
