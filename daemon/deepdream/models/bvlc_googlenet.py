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
Inputs are Caffe-style: BGR, 0..255, mean subtracted (see ``CAFFE_MEANS_BGR``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
_BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")

# Caffe mean pixels (B, G, R) on the 0..255 scale, as published with each model.
CAFFE_MEANS_BGR: dict[str, tuple[float, float, float]] = {
    "bvlc_googlenet": (104.0, 117.0, 123.0),
    "places365": (104.051, 112.514, 116.676),
    "places205": (105.487823486, 113.741088867, 116.060394287),
}

_LRN = dict(size=5, alpha=9.999999747378752e-05, beta=0.75, k=1.0)  # Caffe's float32 alpha


def _block_channels(block: str) -> int:
    _, c1, _, c3, _, c5, pp = INCEPTION_BLOCKS[block]
    return c1 + c3 + c5 + pp


def layer_channels() -> dict[str, int]:
    """Dreamable layer names (in network order) and their channel counts."""
    out: dict[str, int] = {
        "conv1_7x7_s2": 64, "pool1_3x3_s2": 64, "conv2_3x3_reduce": 64, "conv2_3x3": 192,
        "pool2_3x3_s2": 192,
    }
    for block, (_, c1, c3r, c3, c5r, c5, pp) in INCEPTION_BLOCKS.items():
        if block in _POOL_BEFORE:
            out[_POOL_BEFORE[block]] = INCEPTION_BLOCKS[block][0]
        for branch, ch in zip(_BRANCHES, (c1, c3r, c3, c5r, c5, pp), strict=True):
            out[f"inception_{block}_{branch}"] = ch
        out[f"inception_{block}"] = _block_channels(block)
    return out


def _canonical(name: str) -> str:
    """Accept Caffe's spelling too: ``inception_4c/output`` -> ``inception_4c``."""
    name = name.strip().replace("/", "_")
    return name[: -len("_output")] if name.endswith("_output") else name


class CaffeGoogLeNet(nn.Module):
    """Inception v1 as trained in Caffe (BVLC ImageNet: 1000 classes; Places: 205 or 365).

    ``classifier`` adds the final fully connected layer (``loss3_classifier_1``);
    ``aux_heads`` adds the two auxiliary heads the shared conversions carry so that their
    files load strictly.
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

    @property
    def has_classifier(self) -> bool:
        return self.loss3_classifier_1 is not None

    def _inception(self, block: str, x: Tensor, want: set[str], out: dict[str, Tensor]) -> Tensor:
        p = f"inception_{block}_"
        b1 = F.relu(getattr(self, p + "1x1")(x))
        r3 = F.relu(getattr(self, p + "3x3_reduce")(x))
        b3 = F.relu(getattr(self, p + "3x3")(r3))
        r5 = F.relu(getattr(self, p + "5x5_reduce")(x))
        b5 = F.relu(getattr(self, p + "5x5")(r5))
        # Caffe pools first, then projects (3x3, stride 1, pad 1: same size).
        bp = F.relu(getattr(self, p + "pool_proj")(F.max_pool2d(x, 3, 1, 1)))
        for branch, t in zip(_BRANCHES, (b1, r3, b3, r5, b5, bp), strict=True):
            if p + branch in want:
                out[p + branch] = t
        return torch.cat((b1, b3, b5, bp), 1)

    def forward_features(self, x: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
        """Activations of the named layers (``layer_channels()`` names, or ``logits``).

        ``x`` is a Caffe-preprocessed batch (N, 3, H, W).  Stops after the last layer asked
        for, so shallow layers are cheap.
        """
        want = {_canonical(n) for n in names}
        unknown = want - set(self.layers) - {"logits"}
        if unknown:
            raise KeyError(f"unknown layer {sorted(unknown)[0]!r} for Caffe GoogLeNet")
        if "logits" in want and not self.has_classifier:
            raise ValueError("these weights have no final classifier (trunk only)")
        out: dict[str, Tensor] = {}

        def keep(name: str, t: Tensor) -> bool:
            if name in want:
                out[name] = t
            return want.issubset(out)

        x = F.relu(self.conv1_7x7_s2(x))
        if keep("conv1_7x7_s2", x):
            return out
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        if keep("pool1_3x3_s2", x):
            return out
        x = F.local_response_norm(x, **_LRN)
        x = F.relu(self.conv2_3x3_reduce(x))
        if keep("conv2_3x3_reduce", x):
            return out
        x = F.relu(self.conv2_3x3(x))
        if keep("conv2_3x3", x):
            return out
        x = F.max_pool2d(F.local_response_norm(x, **_LRN), 3, 2, ceil_mode=True)
        if keep("pool2_3x3_s2", x):
            return out
        for block in INCEPTION_BLOCKS:
            if block in _POOL_BEFORE:
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
                if keep(_POOL_BEFORE[block], x):
                    return out
            x = self._inception(block, x, want, out)
            if keep(f"inception_{block}", x):
                return out
        # Caffe averages a 7x7 map at 224 px; adaptive pooling gives the same there and
        # still yields logits at other sizes.
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        keep("logits", self.loss3_classifier_1(pooled))
        return out

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


def from_state_dict(state: Mapping[str, Tensor], num_classes: int | None = None) -> CaffeGoogLeNet:
    """Build the network that fits a converted state dict, and load it strictly.

    The class count comes from whichever classifier the file has; a file without
    ``loss3_classifier_1`` gives a trunk-only network (no logits).  Raises ValueError with
    one line when the file is not a Caffe GoogLeNet conversion.
    """
    state = remap_state_dict(state)
    if "inception_4c_3x3.weight" not in state:
        raise ValueError("not a Caffe GoogLeNet state dict (no inception_4c_3x3.weight)")
    for key in ("loss3_classifier_1.weight", "loss2_classifier_1.weight",
                "loss1_classifier_1.weight"):
        if key in state:
            num_classes = num_classes or int(state[key].shape[0])
            break
    has_aux = "loss1_conv.weight" in state
    net = CaffeGoogLeNet(num_classes or 1000, classifier="loss3_classifier_1.weight" in state,
                         aux_heads=has_aux)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
        raise ValueError(f"weights do not fit Caffe GoogLeNet: {detail[:300]}") from None
    return net


def bvlc_googlenet(classifier: bool = True) -> CaffeGoogLeNet:
    """BVLC GoogLeNet (ImageNet, 1000 classes), randomly initialised."""
    return CaffeGoogLeNet(1000, classifier=classifier)


def places_googlenet(num_classes: int = 365, classifier: bool = True) -> CaffeGoogLeNet:
    """GoogLeNet trained on Places (205 or 365 scene classes), randomly initialised."""
    if num_classes not in (205, 365):
        raise ValueError(f"Places GoogLeNet has 205 or 365 classes, not {num_classes}")
    return CaffeGoogLeNet(num_classes, classifier=classifier)


def caffe_preprocess(rgb: Tensor, mean_bgr: tuple[float, float, float]) -> Tensor:
    """sRGB in [0, 1], (N, 3, H, W) -> Caffe input: BGR, 0..255, mean subtracted."""
    mean = torch.tensor(mean_bgr, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return rgb.flip(1) * 255.0 - mean
