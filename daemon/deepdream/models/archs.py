"""The torchvision architectures we can dream with: how to build each one, how to walk its
trunk stage by stage under the layer names DeepDream users know, and what input it expects.

The convolutional trunk is kept, and the final classifier as a last "logits" stage where
it is small (the GoogLeNets, ResNet-50, Inception-v3: class objectives); VGG's 470 MB one and
the auxiliary heads are never built or run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torchvision
from torch import Tensor, nn

# ImageNet statistics torchvision's classifiers are trained with (RGB, 0..1).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# GoogLeNet and Inception-v3 ported from TensorFlow map ImageNet-normalised input back to
# [-1, 1] inside torchvision (``transform_input``); doing it in one step is equivalent.
TF_MEAN = (0.5, 0.5, 0.5)
TF_STD = (0.5, 0.5, 0.5)
# Caffe-trained networks: BGR order, 0..255, minus the BGR channel means, no std.
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)

Stages = list[tuple[str, nn.Module]]


@dataclass(frozen=True)
class Arch:
    name: str
    build: Callable[[], nn.Module]  # random-initialised full torchvision network
    stages: Callable[[nn.Module], Stages]  # trunk in forward order, (name, module)
    layers: dict[str, int]  # dreamable stage name -> output channels
    default_layer: str
    weights_enum: str  # torchvision.models attribute holding the pretrained weights
    head_prefixes: tuple[str, ...]  # state-dict keys outside the trunk
    trunk_prefix: str = ""  # a trunk-only weights file may omit this key prefix
    torchvision_mean: tuple[float, float, float] = IMAGENET_MEAN
    torchvision_std: tuple[float, float, float] = IMAGENET_STD
    # the classifier as one module (features of the last stage -> logits), for class
    # objectives; its state-dict keys start with ``logits_prefix``
    head: Callable[[nn.Module], nn.Module] | None = None
    logits_prefix: str = ""
    preprocess: str = "torchvision"  # what custom models of this arch default to
    # a weights file's other spellings of key names -> this network's (None: same names)
    rename_keys: Callable[[Mapping[str, Tensor]], dict[str, Tensor]] | None = None


# --- GoogLeNet ---------------------------------------------------------------------------

_GOOGLENET_STAGES = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
    "inception5a", "inception5b",
)
_GOOGLENET_LAYERS = {
    "conv1": 64, "conv2": 64, "conv3": 192, "inception3a": 256, "inception3b": 480,
    "inception4a": 512, "inception4b": 512, "inception4c": 512, "inception4d": 528,
    "inception4e": 832, "inception5a": 832, "inception5b": 1024,
}


def _build_googlenet() -> nn.Module:
    return torchvision.models.googlenet(
        weights=None, aux_logits=False, transform_input=False, init_weights=True
    )


def _pooled_fc(net: nn.Module) -> nn.Module:
    # eval-mode dropout is the identity, so average-pool + flatten + fc is the whole head
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), net.fc)


def _named_children(names: tuple[str, ...]) -> Callable[[nn.Module], Stages]:
    def stages(net: nn.Module) -> Stages:
        return [(n, getattr(net, n)) for n in names]

    return stages


# --- VGG ---------------------------------------------------------------------------------

_VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_WIDTHS = (64, 128, 256, 512, 512)


def _vgg_names(arch: str) -> list[tuple[str, int]]:
    """Names of ``features[i]`` in order: conv1_1, relu1_1, …, pool1, … with channels."""
    names: list[tuple[str, int]] = []
    blocks = zip(_VGG_BLOCKS[arch], _VGG_WIDTHS, strict=True)
    for block, (convs, width) in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            names += [(f"conv{block}_{i}", width), (f"relu{block}_{i}", width)]
        names.append((f"pool{block}", width))
    return names


def _vgg_stages(arch: str) -> Callable[[nn.Module], Stages]:
    def stages(net: nn.Module) -> Stages:
        out: Stages = []
        for (name, _), module in zip(_vgg_names(arch), net.features, strict=True):
            if isinstance(module, nn.ReLU):
                # torchvision's ReLUs work in place, which would overwrite the conv output
                # we read as "convN_M" and break its gradient.
                module.inplace = False
            out.append((name, module))
        return out

    return stages


def _vgg_arch(arch: str) -> Arch:
    return Arch(
        name=arch,
        build=lambda: getattr(torchvision.models, arch)(weights=None),
        stages=_vgg_stages(arch),
        layers=dict(_vgg_names(arch)),
        default_layer="relu4_3" if arch == "vgg16" else "relu4_4",
        weights_enum=f"VGG{arch[3:]}_Weights",
        head_prefixes=("classifier.",),
        trunk_prefix="features.",
        # no head: VGG's classifier holds 470 MB (ten times its trunk), which would sit in
        # memory for every dream for the sake of class objectives
    )


# --- ResNet-50 ---------------------------------------------------------------------------


def _resnet_stages(net: nn.Module) -> Stages:
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    return [("conv1", stem), ("maxpool", net.maxpool)] + [
        (f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)
    ]


# --- Inception-v3 ------------------------------------------------------------------------

_INCEPTION_STAGES = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
    "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)
_INCEPTION_LAYERS = {
    "Conv2d_1a_3x3": 32, "Conv2d_2a_3x3": 32, "Conv2d_2b_3x3": 64, "Conv2d_3b_1x1": 80,
    "Conv2d_4a_3x3": 192, "Mixed_5b": 256, "Mixed_5c": 288, "Mixed_5d": 288, "Mixed_6a": 768,
    "Mixed_6b": 768, "Mixed_6c": 768, "Mixed_6d": 768, "Mixed_6e": 768, "Mixed_7a": 1280,
    "Mixed_7b": 2048, "Mixed_7c": 2048,
}


def _build_inception_v3() -> nn.Module:
    return torchvision.models.inception_v3(
        weights=None, aux_logits=False, transform_input=False, init_weights=True
    )


# --- Caffe BVLC / Places GoogLeNet ------------------------------------------------------


def _caffe_googlenet_arch(name: str, classes: int) -> Arch:
    from . import bvlc_googlenet as caffe

    return Arch(
        name=name,
        build=lambda: caffe.CaffeGoogLeNet(classes, classifier=True, aux_heads=False),
        stages=lambda net: net.stages(),
        layers=caffe.layer_channels(),
        default_layer=caffe.DEFAULT_LAYER,
        weights_enum="",  # no torchvision download: a converted Caffe file
        head_prefixes=("loss1_", "loss2_", "loss3_"),
        head=lambda net: net.stages(logits=True)[-1][1],
        logits_prefix="loss3_classifier_1.",
        preprocess="caffe",
        rename_keys=caffe.remap_state_dict,
    )


ARCHS: dict[str, Arch] = {
    "googlenet": Arch(
        name="googlenet",
        build=_build_googlenet,
        stages=_named_children(_GOOGLENET_STAGES),
        layers=_GOOGLENET_LAYERS,
        default_layer="inception4c",
        weights_enum="GoogLeNet_Weights",
        head_prefixes=("fc.", "aux1.", "aux2."),
        torchvision_mean=TF_MEAN,
        torchvision_std=TF_STD,
        head=_pooled_fc,
        logits_prefix="fc.",
    ),
    "vgg16": _vgg_arch("vgg16"),
    "vgg19": _vgg_arch("vgg19"),
    "resnet50": Arch(
        name="resnet50",
        build=lambda: torchvision.models.resnet50(weights=None),
        stages=_resnet_stages,
        layers={"conv1": 64, "maxpool": 64, "layer1": 256, "layer2": 512, "layer3": 1024,
                "layer4": 2048},
        default_layer="layer3",
        weights_enum="ResNet50_Weights",
        head_prefixes=("fc.",),
        head=_pooled_fc,
        logits_prefix="fc.",
    ),
    "inception_v3": Arch(
        name="inception_v3",
        build=_build_inception_v3,
        stages=_named_children(_INCEPTION_STAGES),
        layers=_INCEPTION_LAYERS,
        default_layer="Mixed_5d",
        weights_enum="Inception_V3_Weights",
        head_prefixes=("fc.", "AuxLogits."),
        torchvision_mean=TF_MEAN,
        torchvision_std=TF_STD,
        head=_pooled_fc,
        logits_prefix="fc.",
    ),
    # Caffe-trained GoogLeNets (bvlc_googlenet.py): weights only from a file (models TOML)
    **{name: _caffe_googlenet_arch(name, classes) for name, classes in
       (("bvlc_googlenet", 1000), ("places_googlenet", 365), ("places205_googlenet", 205))},
}
