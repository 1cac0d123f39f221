"""An experiment for the GPU probe, not the engine: GoogLeNet's four inception branches on four
CUDA streams, so a captured step holds them as parallel graph branches.

Why: at the small octaves of Google's schedule (373x280 on the H100, session 4) a step's
~330 kernels each leave most of the GPU idle and the step is bound by their count; branches
that run side by side would overlap them.  Autograd runs each op's backward on the stream of
its forward, so the backward overlaps too.  ``bench/probe_gpu_step.py`` measures it; off CUDA
the branches run one after another (what the CPU test checks).
"""

from __future__ import annotations

import torch
from torch import nn


class ConcurrentInception(nn.Module):
    """An inception module whose branches 2-4 run on side streams (branch 1 on the caller's)."""

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [inception.branch1, inception.branch2, inception.branch3, inception.branch4])
        self._streams: dict[torch.device, list[torch.cuda.Stream]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cuda:
            return torch.cat([branch(x) for branch in self.branches], 1)
        streams = self._streams.get(x.device)
        if streams is None:
            streams = self._streams[x.device] = [torch.cuda.Stream(x.device) for _ in range(3)]
        here = torch.cuda.current_stream(x.device)
        for stream in streams:  # all fork before branch 1 is queued, or they would wait for it
            stream.wait_stream(here)
        outs = [self.branches[0](x)]
        for branch, stream in zip(self.branches[1:], streams, strict=True):
            with torch.cuda.stream(stream):
                x.record_stream(stream)  # x is freed on ``here``: not before this reads it
                outs.append(branch(x))
        for stream, out in zip(streams, outs[1:], strict=True):
            here.wait_stream(stream)
            out.record_stream(here)
        return torch.cat(outs, 1)


def concurrent(model: nn.Module) -> int:
    """Replace torchvision's Inception modules in place; returns how many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "Inception":
                setattr(parent, name, ConcurrentInception(child))
                count += 1
    return count
