"""A stand-in for fastpath's captured CUDA graph, for tests on machines without a GPU."""

from __future__ import annotations

import torch
from deepdream.engine import fastpath


class EagerGraph:
    """Takes ``fastpath.OctaveGraph``'s arguments and runs the octave's steps eagerly, so
    only what surrounds a graph (chunks, offsets, callbacks, caching) is under test.
    ``runs``: how many steps each replay ran; ``compiled``: whether the compiled step was
    asked for."""

    def __init__(self, model: torch.nn.Module, objective, shape, steps: int,  # noqa: ANN001
                 step_size: float, dtype: torch.dtype | None, compiled: bool = False,
                 tile: int | None = None) -> None:
        self.args = (model, objective, step_size)
        self.compiled, self.tile, self.runs = compiled, tile, []
        self.x = torch.empty(shape)  # (the graph cache weighs its buffers)

    def run(self, x: torch.Tensor, offsets) -> torch.Tensor:  # noqa: ANN001
        self.runs.append(len(offsets))
        model, objective, step_size = self.args
        return fastpath.run_octave_eager(x, model, objective, offsets, step_size,
                                         tile=self.tile)
