"""Rewrites of a prepared model that compute the same layers with fewer, busier GPU kernels.

On an H100 (bench/RESULTS.md) a GoogLeNet step at the small octaves was bound by its ~330
kernels, and VGG16 spent 0.6 of its 3.9 ms a step on separate bias-add kernels.  Three
rewrites, each measured there before it came here (together: GoogLeNet's 1024x768 dream
84 -> 65 ms, VGG16's 87 -> 74 ms):

- ``FusedConvReLU``: a convolution, its bias and the ReLU after it as one cuDNN call, with a
  backward that computes the input's gradient only (the weights are frozen).  VGG16 step
  4.00 -> 3.26 ms at 1024x768; GoogLeNet 4-9 % per octave.
- ``ConcurrentInception``: torchvision's inception branches on side streams, so a captured
  step holds them as parallel graph branches.  GoogLeNet's smallest octave 1.44 -> 1.09 ms.
- ``SpaceToDepthConv``: a stride-2 stem conv on an RGB image as pixel_unshuffle + a stride-1
  conv, whose input gradient is a plain one instead of cuDNN's slow strided kernel.  The
  image gets a zero fourth channel first, so the stride-1 conv reads 16 channels, not 12:
  cuDNN's tensor-core kernels want channels in multiples of 8 (with 12 it ran a generic
  kernel, 13 % of a GoogLeNet step on an H100).  It is the one fast form ``torch.compile``
  traces too (plain torch ops; the plain stem's strided input gradient was 0.6 ms of a
  2.9 ms step there).

The fast forms run only inside ``fast_forms()``, which the fast path holds while it warms
up and captures a CUDA graph: launched one by one, their extra host work made eager steps
slower (H100: GoogLeNet's eager dream 0.25 -> 0.39 s), while in a graph it costs nothing.
Everywhere else (eager steps, the CPU, MPS, ``torch.compile``, which fuses by itself and
traces neither the cuDNN call nor the streams) the modules compute their plain form, but for
the space-to-depth stem under ``torch.compile``.
``accel.prepare`` applies the rewrites on CUDA and keeps them only where the model's outputs
and input gradient stay within float32 re-ordering of the plain model's.
DEEPDREAM_REWRITES=0 turns them off (benchmarks, debugging).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

ENABLED = os.environ.get("DEEPDREAM_REWRITES", "1") != "0"
_state = threading.local()  # per thread: the daemon has a worker thread per device


@contextlib.contextmanager
def fast_forms() -> Iterator[None]:
    """Run the rewritten modules' fast forms (on CUDA) in this thread meanwhile."""
    before = getattr(_state, "fast", False)
    _state.fast = True
    try:
        yield
    finally:
        _state.fast = before


def _fast_here(x: torch.Tensor) -> bool:
    """Whether a rewritten module runs its fast form on ``x``.  is_compiling() comes first:
    dynamo would otherwise guard on the thread-local flag and recompile when it changes."""
    return (not torch.compiler.is_compiling() and getattr(_state, "fast", False)
            and x.is_cuda)


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation,  # noqa: ANN001
                groups) -> torch.Tensor:  # noqa: ANN001
        if x.is_cuda:
            y = torch.cudnn_convolution_relu(x, weight, bias, stride, padding, dilation, groups)
        else:  # (the fast path runs this on CUDA only; tests check the backward here)
            y = F.relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))
        ctx.save_for_backward(x, weight, y)
        ctx.conv = (stride, padding, dilation, groups)
        return y

    @staticmethod
    def backward(ctx, grad) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        x, weight, y = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        grad = torch.ops.aten.threshold_backward(grad.to(y.dtype), y, 0)
        gx = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
            [True, False, False])[0]
        return gx, None, None, None, None, None, None


class FusedConvReLU(nn.Module):
    """relu(conv(x)), on CUDA as one cuDNN call (in autocast's dtype under autocast: the
    fused call is not on autocast's lists).  ``hold(dtype)`` keeps the weights in the
    compute dtype too, so a step does not cast them again (67 small kernels in each
    GoogLeNet step on an H100, 8 % of a small octave's)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not _fusable(conv):
            raise ValueError("only plain zero-padded convolutions with numeric padding")
        self.conv = conv
        self.register_buffer("held_weight", None, persistent=False)
        self.register_buffer("held_bias", None, persistent=False)

    def hold(self, dtype: torch.dtype | None) -> None:
        """Keep copies of the weights in ``dtype`` for the fast form (None: none)."""
        c = self.conv
        self.held_weight = None if dtype is None else c.weight.detach().to(dtype)
        self.held_bias = None if dtype is None or c.bias is None else c.bias.detach().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if not _fast_here(x) or c.weight.requires_grad:
            return F.relu(c(x))
        kind = x.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
        if self.held_weight is not None and self.held_weight.dtype == dtype:
            weight, bias = self.held_weight, self.held_bias
        else:
            weight, bias = c.weight.to(dtype), None if c.bias is None else c.bias.to(dtype)
        with torch.autocast(kind, enabled=False):
            return _ConvReLU.apply(x.to(dtype), weight, bias, list(c.stride),
                                   list(c.padding), list(c.dilation), c.groups)


class FusedConvStage(FusedConvReLU):
    """A DreamModel's conv stage fused with the ReLU stage after it (now an Identity):
    ``split`` gives the conv's own layer too, for a dream of it (VGG's ``conv4_3``)."""

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv(x), relu(conv(x))), unfused."""
        pre = self.conv(x)
        return pre, F.relu(pre)


class ConcurrentInception(nn.Module):
    """A torchvision inception module whose branches 2-4 run on side streams (branch 1 on
    the caller's).  Autograd runs each backward op on its forward's stream, so the backward
    overlaps too; a captured graph holds the streams as parallel branches."""

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [inception.branch1, inception.branch2, inception.branch3, inception.branch4])
        self._streams: dict[torch.device, list[torch.cuda.Stream]] = {}

    def __getstate__(self) -> dict:
        # streams are per process and device: copies make theirs (a new dict: some Pythons'
        # object.__getstate__ hands back the live __dict__)
        state = dict(super().__getstate__())
        state["_streams"] = {}
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (_fast_here(x) and x.is_cuda):  # (streams: CUDA's own)
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


class SpaceToDepthConv(nn.Module):
    """A zero-padded stride-2 ``conv`` as pixel_unshuffle(2) and a stride-1 conv: the same
    sums (the kernel zero-padded to even size and split by pixel parity, and to an even
    number of input channels, so that the unshuffled image has a multiple of 8)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not _stem(conv):
            raise ValueError("only plain zero-padded stride-2 convolutions on few channels")
        out_c, in_c, kh, kw = conv.weight.shape
        self.extra_channels = in_c % 2  # zero channels the image gets: RGB -> RGB0
        in_c += self.extra_channels
        eh, ew = kh + kh % 2, kw + kw % 2  # even kernel, zeros in the new row / column
        w = F.pad(conv.weight.detach(), (0, ew - kw, 0, eh - kh, 0, self.extra_channels))
        # w2[o, c*4 + r*2 + s, a, b] = w[o, c, 2a + r, 2b + s]: pixel_unshuffle's channel order
        w2 = w.view(out_c, in_c, eh // 2, 2, ew // 2, 2).permute(0, 1, 3, 5, 2, 4)
        self.weight = nn.Parameter(w2.reshape(out_c, in_c * 4, eh // 2, ew // 2).contiguous(),
                                   requires_grad=False)
        self.conv = conv  # the plain form; its size, padding and bias serve the fast one too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = _fast_here(x) or torch.compiler.is_compiling()
        return self.unshuffled(x) if fast else self.conv(x)

    def unshuffled(self, x: torch.Tensor) -> torch.Tensor:
        """The fast form (any device)."""
        (kh, kw), (ph, pw) = self.conv.kernel_size, self.conv.padding
        h, w = x.shape[-2:]
        oh, ow = (h + 2 * ph - kh) // 2 + 1, (w + 2 * pw - kw) // 2 + 1
        kh2, kw2 = self.weight.shape[-2:]
        # padded so that the unshuffled image holds exactly the rows / columns the conv
        # reads, and its zero channels (one op for both)
        x = F.pad(x, (pw, 2 * (ow + kw2 - 1) - w - pw, ph, 2 * (oh + kh2 - 1) - h - ph,
                      0, self.extra_channels))
        return F.conv2d(F.pixel_unshuffle(x, 2), self.weight, self.conv.bias)


def _replace(model: nn.Module, match, make) -> int:  # noqa: ANN001
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                setattr(parent, name, make(child))
                count += 1
    return count


def _fusable(m: nn.Module) -> bool:
    """A plain Conv2d (not a subclass with its own forward), zero-padded with numbers."""
    return (type(m) is nn.Conv2d and m.padding_mode == "zeros"
            and not isinstance(m.padding, str))


def _stem(m: nn.Module, max_channels: int = 4) -> bool:
    """A plain stride-2 conv on at most ``max_channels`` inputs (an RGB stem)."""
    return (_fusable(m) and m.stride == (2, 2) and m.dilation == (1, 1) and m.groups == 1
            and m.in_channels <= max_channels)


def space_to_depth_stems(model: nn.Module) -> int:
    """Every RGB stem conv (``_stem``) as a SpaceToDepthConv; returns how many."""
    return _replace(model, _stem, SpaceToDepthConv)


def fuse_conv_relu(model: nn.Module) -> int:
    """Fuse in place, after the BatchNorm fold: torchvision's BasicConv2d (conv, folded BN,
    ReLU), ``Sequential(conv, ReLU)`` pairs, and a DreamModel's stage pairs conv -> ReLU, whose
    ReLU stage becomes an Identity (run_stages asks ``split`` when the conv's own layer is
    dreamt).  Returns how many convs were fused."""
    def conv_of(m: nn.Module) -> nn.Module | None:
        if (type(m).__name__ == "BasicConv2d"
                and isinstance(getattr(m, "bn", None), nn.Identity)):
            return getattr(m, "conv", None)
        if isinstance(m, nn.Sequential) and len(m) == 2 and type(m[1]) is nn.ReLU:
            return m[0]
        return None

    count = _replace(model, lambda m: _fusable(conv_of(m)),
                     lambda m: FusedConvReLU(conv_of(m)))
    stages = getattr(model, "stages", None)
    if isinstance(stages, nn.ModuleList):
        for i in range(len(stages) - 1):
            if _fusable(stages[i]) and type(stages[i + 1]) is nn.ReLU:
                stages[i] = FusedConvStage(stages[i])
                stages[i + 1] = nn.Identity()
                count += 1
    return count


def concurrent_inceptions(model: nn.Module) -> int:
    """torchvision's Inception modules with their branches on side streams; how many."""
    return _replace(model, lambda m: type(m).__name__ == "Inception"
                    and all(hasattr(m, f"branch{i}") for i in range(1, 5)), ConcurrentInception)


def hold_weights(model: nn.Module, dtype: torch.dtype | None) -> int:
    """Every fused conv keeps its weights in ``dtype`` too (``FusedConvReLU.hold``; None
    drops the copies); how many."""
    fused = [m for m in model.modules() if isinstance(m, FusedConvReLU)]
    for m in fused:
        m.hold(dtype)
    return len(fused)


def rewrite(model: nn.Module) -> list[str]:
    """All three rewrites in place (the stem first: a fused stem would hide its conv);
    returns what was done, for the report."""
    done = []
    for name, fn in (("space-to-depth stem", space_to_depth_stems),
                     ("conv+ReLU fused", fuse_conv_relu),
                     ("inception branches on streams", concurrent_inceptions)):
        count = fn(model)
        if count:
            done.append(f"{count} {name}")
    return done
