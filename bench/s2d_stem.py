"""An experiment for the GPU probe, not the engine: a strided few-channel stem convolution
(GoogLeNet's 7x7 stride-2 conv on RGB) rewritten as space-to-depth + a stride-1 conv.

Why: on the H100 (session 4) the input gradient of that stem was 13 % of a full-size step,
cuDNN's strided data-gradient on 3 channels.  pixel_unshuffle by 2 turns it into a 4x4
stride-1 conv on 12 channels, the same arithmetic (the 7x7 kernel zero-padded to 8x8 and
split by pixel parity), whose gradient is a plain stride-1 one.  On this 2-core CPU, bf16
channels-last, forward + input gradient at 1024x768: 28.4 -> 24.7 ms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpaceToDepthConv(nn.Module):
    """``conv`` (stride 2, zero padding) as pixel_unshuffle(2) and a stride-1 conv."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if (conv.stride != (2, 2) or conv.dilation != (1, 1) or conv.groups != 1
                or conv.padding_mode != "zeros" or isinstance(conv.padding, str)):
            raise ValueError("only plain zero-padded stride-2 convolutions")
        out_c, in_c, kh, kw = conv.weight.shape
        eh, ew = kh + kh % 2, kw + kw % 2  # even kernel, zeros in the new row / column
        w = F.pad(conv.weight.detach(), (0, ew - kw, 0, eh - kh))
        # w2[o, c*4 + r*2 + s, a, b] = w[o, c, 2a + r, 2b + s]: pixel_unshuffle's channel order
        w2 = w.view(out_c, in_c, eh // 2, 2, ew // 2, 2).permute(0, 1, 3, 5, 2, 4)
        self.weight = nn.Parameter(w2.reshape(out_c, in_c * 4, eh // 2, ew // 2).contiguous(),
                                   requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(),
                                                                requires_grad=False)
        self.kernel, self.padding = (kh, kw), conv.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (ph, pw) = self.kernel, self.padding
        h, w = x.shape[-2:]
        oh, ow = (h + 2 * ph - kh) // 2 + 1, (w + 2 * pw - kw) // 2 + 1
        kh2, kw2 = self.weight.shape[-2:]
        # padded so that the unshuffled image holds exactly the rows / columns the conv reads
        x = F.pad(x, (pw, 2 * (ow + kw2 - 1) - w - pw, ph, 2 * (oh + kh2 - 1) - h - ph))
        return F.conv2d(F.pixel_unshuffle(x, 2), self.weight, self.bias)


def space_to_depth_stems(model: nn.Module, max_channels: int = 4) -> int:
    """Replace in place every stride-2 conv with at most ``max_channels`` inputs; returns how
    many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (isinstance(child, nn.Conv2d) and child.stride == (2, 2)
                    and child.in_channels <= max_channels):
                setattr(parent, name, SpaceToDepthConv(child))
                count += 1
    return count
