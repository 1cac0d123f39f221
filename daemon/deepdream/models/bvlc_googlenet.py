"""Caffe's BVLC GoogLeNet and Places GoogLeNet, laid out like the shared PyTorch conversions.

The "classic" DeepDream look comes from these Caffe-trained networks, not torchvision's
re-trained GoogLeNet (which has batch-norm and no LRN).  Parameter names follow the widely
shared conversions (ProGamerGov/neural-dream's ``bvlc_googlenet.pth`` and
``googlenet_places{205,365}.pth``): one flat attribute per Caffe layer with ``/`` turned
into ``_`` (``conv1_7x7_s2``, ``inception_4c_3x3_reduce``, ``loss1_classifier_1``...), so
those files load without renaming.  Those files carry the two auxiliary heads but not the
final classifier; a file that has it (``loss3_classifier_1`` or ``loss3_classifier``) gets
class objectives, one without it is "trunk only".

Caffe specifics kept: local response normalisation after pool1 and conv2, and max-pools that
round their output size up (Caffe's ceil arithmetic), so feature maps have Caffe's sizes.
Inputs are Caffe-style: BGR, 0..255, mean subtracted (``archs.CAFFE_MEAN_BGR``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .stages import run_stages

# (input channels, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per inception block.
INCEPTION_BLOCKS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
# A Caffe max-pool (3x3, stride 2) sits before these blocks.
_POOL_BEFORE = {"4a": "pool3_3x3_s2", "5a": "pool4_3x3_s2"}

DEFAULT_LAYER = "inception_4c"


def layer_channels() -> dict[str, int]:
    """Dreamable layer names, in network order, and their channel counts."""
    out: dict[str, int] = {
        "conv1_7x7_s2": 64, "pool1_3x3_s2": 64, "conv2_3x3_reduce": 64, "conv2_3x3": 192,
        "pool2_3x3_s2": 192,
    }
    for block, (cin, c1, _, c3, _, c5, pp) in INCEPTION_BLOCKS.items():
        if block in _POOL_BEFORE:
            out[_POOL_BEFORE[block]] = cin
        out[f"inception_{block}"] = c1 + c3 + c5 + pp
    return out


def canonical_layer(name: str) -> str:
    """Accept Caffe's blob spelling too: ``inception_4c/output`` -> ``inception_4c``."""
    name = name.strip().replace("/", "_")
    return name[: -len("_output")] if name.endswith("_output") else name


class _LRN(nn.Module):
    """Caffe's across-channel LRN of GoogLeNet (alpha as Caffe stores it in float32)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.local_response_norm(x, size=5, alpha=9.999999747378752e-05, beta=0.75, k=1.0)


def _caffe_max_pool() -> nn.MaxPool2d:
    # Caffe rounds pooled sizes up; with no padding PyTorch's ceil_mode is the same rule.
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class _InceptionStage(nn.Module):
    """One inception block run from the parent network's flat convolutions."""

    def __init__(self, net: CaffeGoogLeNet, block: str) -> None:
        super().__init__()
        p = f"inception_{block}_"
        self.b1, self.r3, self.b3, self.r5, self.b5, self.pp = (
            getattr(net, p + n)
            for n in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")
        )

    def forward(self, x: Tensor) -> Tensor:
        b3 = F.relu(self.b3(F.relu(self.r3(x))))
        b5 = F.relu(self.b5(F.relu(self.r5(x))))
        # Caffe pools first, then projects (3x3, stride 1, pad 1 keeps the size).
        bp = F.relu(self.pp(F.max_pool2d(x, 3, 1, 1)))
        return torch.cat((F.relu(self.b1(x)), b3, b5, bp), 1)


class CaffeGoogLeNet(nn.Module):
    """Inception v1 as trained in Caffe (BVLC ImageNet: 1000 classes; Places: 205 or 365).

    ``classifier`` adds the final fully connected layer (``loss3_classifier_1``);
    ``aux_heads`` adds the two auxiliary heads the shared conversions carry so that their
    files load strictly.  The heads are never run while dreaming.
    """

    def __init__(self, num_classes: int = 1000, classifier: bool = True,
                 aux_heads: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1_7x7_s2 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.conv2_3x3_reduce = nn.Conv2d(64, 64, 1)
        self.conv2_3x3 = nn.Conv2d(64, 192, 3, padding=1)
        for block, (cin, c1, c3r, c3, c5r, c5, pp) in INCEPTION_BLOCKS.items():
            p = f"inception_{block}_"
            setattr(self, p + "1x1", nn.Conv2d(cin, c1, 1))
            setattr(self, p + "3x3_reduce", nn.Conv2d(cin, c3r, 1))
            setattr(self, p + "3x3", nn.Conv2d(c3r, c3, 3, padding=1))
            setattr(self, p + "5x5_reduce", nn.Conv2d(cin, c5r, 1))
            setattr(self, p + "5x5", nn.Conv2d(c5r, c5, 5, padding=2))
            setattr(self, p + "pool_proj", nn.Conv2d(cin, pp, 1))
        if aux_heads:
            for head, cin in (("loss1", 512), ("loss2", 528)):
                setattr(self, f"{head}_conv", nn.Conv2d(cin, 128, 1))
                setattr(self, f"{head}_fc_1", nn.Linear(2048, 1024))
                setattr(self, f"{head}_classifier_1", nn.Linear(1024, num_classes))
        self.loss3_classifier_1 = nn.Linear(1024, num_classes) if classifier else None
        self.layers = layer_channels()

    def stages(self, logits: bool = False) -> list[tuple[str, nn.Module]]:
        """The trunk in forward order as (layer name, module); each module's input is the
        previous one's output.  ``logits`` appends the classifier as stage ``logits``."""
        relu = nn.ReLU()
        out: list[tuple[str, nn.Module]] = [
            ("conv1_7x7_s2", nn.Sequential(self.conv1_7x7_s2, relu)),
            ("pool1_3x3_s2", _caffe_max_pool()),
            ("conv2_3x3_reduce", nn.Sequential(_LRN(), self.conv2_3x3_reduce, relu)),
            ("conv2_3x3", nn.Sequential(self.conv2_3x3, relu)),
            ("pool2_3x3_s2", nn.Sequential(_LRN(), _caffe_max_pool())),
        ]
        for block in INCEPTION_BLOCKS:
            if block in _POOL_BEFORE:
                out.append((_POOL_BEFORE[block], _caffe_max_pool()))
            out.append((f"inception_{block}", _InceptionStage(self, block)))
        if logits:
            if self.loss3_classifier_1 is None:
                raise ValueError("these weights have no final classifier (trunk only)")
            # Caffe averages a 7x7 map at 224 px; adaptive pooling is the same there and
            # still gives logits at other sizes.
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), self.loss3_classifier_1)
            out.append(("logits", head))
        return out

    def forward_features(self, x: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
        """Activations of the named layers (``layer_channels()`` names, or ``logits``) for a
        Caffe-preprocessed batch (N, 3, H, W); stops after the deepest one asked for."""
        want = {canonical_layer(n) for n in names}
        unknown = want - set(self.layers) - {"logits"}
        if unknown:
            raise KeyError(f"unknown layer {sorted(unknown)[0]!r} for Caffe GoogLeNet")
        return run_stages(x, self.stages(logits="logits" in want), want)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, num_classes)."""
        return self.forward_features(x, ["logits"])["logits"]


def remap_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Key names as this module spells them (``loss3_classifier.*`` -> ``loss3_classifier_1.*``)."""
    out = {}
    for key, value in state.items():
        if key.startswith("loss3_classifier."):
            key = "loss3_classifier_1." + key.split(".", 1)[1]
        out[key] = value
    return out


def bvlc_googlenet(classifier: bool = True) -> CaffeGoogLeNet:
    """BVLC GoogLeNet (ImageNet, 1000 classes), randomly initialised."""
    return CaffeGoogLeNet(1000, classifier=classifier)


def places_googlenet(num_classes: int = 365, classifier: bool = True) -> CaffeGoogLeNet:
    """GoogLeNet trained on Places (205 or 365 scene classes), randomly initialised."""
    if num_classes not in (205, 365):
        raise ValueError(f"Places GoogLeNet has 205 or 365 classes, not {num_classes}")
    return CaffeGoogLeNet(num_classes, classifier=classifier)
