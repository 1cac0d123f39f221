"""An experiment for the GPU probe, not the engine: each convolution + bias + ReLU as one cuDNN
call (``torch.cudnn_convolution_relu``), with a backward that computes the input's gradient
only (the weights are frozen).

Why: PyTorch runs a conv's bias add and the ReLU as two more kernels.  On the H100 (session
4) GoogLeNet's small octaves were bound by kernel count (~330 a step, ~4 us each) and VGG16
lost 0.6 of 3.9 ms a step to unvectorised bias adds; fused, each conv is one forward kernel.
``bench/probe_gpu_step.py`` measures the fused step against the engine's; only if it wins
there does it belong in ``accel.prepare``.  On the CPU the forward is oneDNN's convolution
with a ReLU post-op (the unfused pair where oneDNN is missing), so the backward's arithmetic
is tested there too (tests/plain/test_bench_smoke.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):  # noqa: ANN001
        if x.is_cuda:
            y = torch.cudnn_convolution_relu(x, weight, bias, stride, padding, dilation,
                                             groups)
        elif x.device.type == "cpu" and torch.backends.mkldnn.is_available():
            # oneDNN's convolution with the ReLU as a post-op (what inductor uses on CPUs)
            y = torch.ops.mkldnn._convolution_pointwise(
                x, weight, bias, padding, stride, dilation, groups, "relu", [], "")
        else:
            y = F.relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))
        ctx.save_for_backward(x, weight, y)
        ctx.conv = (stride, padding, dilation, groups)
        return y

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        x, weight, y = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        grad = torch.ops.aten.threshold_backward(grad.to(y.dtype), y, 0)
        gx = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
            [True, False, False])[0]
        return gx, None, None, None, None, None, None


class FusedConvReLU(nn.Module):
    """relu(conv(x)) in one call; under autocast, in autocast's dtype (cuDNN's fused call is
    not on autocast's lists, so the casts are made here)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("only zero-padded convolutions with numeric padding")
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        kind = x.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
        bias = c.bias if c.bias is not None else torch.zeros(
            c.out_channels, device=x.device, dtype=dtype)
        with torch.autocast(kind, enabled=False):
            return _ConvReLU.apply(x.to(dtype), c.weight.to(dtype), bias.to(dtype),
                                   list(c.stride), list(c.padding), list(c.dilation),
                                   c.groups)


def fuse(model: nn.Module) -> int:
    """Fuse in place, after accel.prepare (whose BatchNorm fold leaves torchvision's
    BasicConv2d a conv, an Identity and a ReLU): BasicConv2d modules, and a DreamModel's
    stage pairs conv -> ReLU (VGG16; the ReLU stage becomes an Identity, so a dream of the
    ReLU layer reads the fused output; one of the conv layer itself is then wrong, which the
    probe never asks for).  Returns how many convs were fused."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (type(child).__name__ == "BasicConv2d"
                    and isinstance(getattr(child, "bn", None), nn.Identity)):
                setattr(parent, name, FusedConvReLU(child.conv))
                count += 1
    stages = getattr(model, "stages", None)
    if isinstance(stages, nn.ModuleList):
        for i in range(len(stages) - 1):
            if isinstance(stages[i], nn.Conv2d) and isinstance(stages[i + 1], nn.ReLU):
                stages[i] = FusedConvReLU(stages[i])
                stages[i + 1] = nn.Identity()
                count += 1
    return count
