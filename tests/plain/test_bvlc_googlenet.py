"""Caffe BVLC / Places GoogLeNet: the shared conversions' key names, shapes and Caffe sizes."""

from __future__ import annotations

import pytest
import torch
from deepdream.models.bvlc_googlenet import (
    CaffeGoogLeNet,
    bvlc_googlenet,
    caffe_preprocess,
    from_state_dict,
    places_googlenet,
)

# Names and shapes as in ProGamerGov/neural-dream's bvlc_googlenet.pth (its model definition
# declares exactly these layers), spot-checked across the network.
CONVERSION_SHAPES = {
    "conv1_7x7_s2.weight": (64, 3, 7, 7),
    "conv2_3x3_reduce.weight": (64, 64, 1, 1),
    "conv2_3x3.weight": (192, 64, 3, 3),
    "inception_3a_1x1.weight": (64, 192, 1, 1),
    "inception_3a_3x3_reduce.weight": (96, 192, 1, 1),
    "inception_3a_5x5.weight": (32, 16, 5, 5),
    "inception_3b_pool_proj.weight": (64, 256, 1, 1),
    "inception_4a_3x3.weight": (208, 96, 3, 3),
    "inception_4c_3x3.weight": (256, 128, 3, 3),
    "inception_4e_pool_proj.weight": (128, 528, 1, 1),
    "inception_5b_1x1.weight": (384, 832, 1, 1),
    "inception_5b_5x5.weight": (128, 48, 5, 5),
    "loss1_conv.weight": (128, 512, 1, 1),
    "loss1_fc_1.weight": (1024, 2048),
    "loss1_classifier_1.weight": (1000, 1024),
    "loss2_conv.weight": (128, 528, 1, 1),
    "loss2_classifier_1.bias": (1000,),
}


def _random_input(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return caffe_preprocess(torch.rand(1, 3, size, size, generator=g), (104.0, 117.0, 123.0))


def test_state_dict_keys_and_shapes_match_the_shared_conversion() -> None:
    state = bvlc_googlenet().state_dict()
    for key, shape in CONVERSION_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert tuple(state["loss3_classifier_1.weight"].shape) == (1000, 1024)
    # 57 convolutions + 2 aux heads (conv, fc, classifier) + final classifier, weight and bias.
    assert len(state) == 2 * (3 + 9 * 6 + 6 + 1)


def test_caffe_pooling_rounds_up_and_layers_have_caffe_sizes() -> None:
    net = bvlc_googlenet().eval()
    names = ["conv1_7x7_s2", "pool1_3x3_s2", "pool2_3x3_s2", "inception_3b",
             "inception_4c/output", "pool4_3x3_s2", "inception_5b"]
    with torch.no_grad():
        feats = net.forward_features(_random_input(224), names)
    sizes = {k: tuple(v.shape[1:]) for k, v in feats.items()}
    assert sizes == {
        "conv1_7x7_s2": (64, 112, 112),
        "pool1_3x3_s2": (64, 56, 56),  # floor arithmetic would give 55
        "pool2_3x3_s2": (192, 28, 28),
        "inception_3b": (480, 28, 28),
        "inception_4c": (512, 14, 14),
        "pool4_3x3_s2": (832, 7, 7),
        "inception_5b": (1024, 7, 7),
    }
    for name, (channels, _, _) in sizes.items():
        assert net.layers[name] == channels


def test_trunk_only_conversion_loads_strictly_and_refuses_logits() -> None:
    # neural-dream's files carry the aux heads but no loss3 classifier.
    state = bvlc_googlenet(classifier=False).state_dict()
    net = from_state_dict(state)
    assert not net.has_classifier and net.num_classes == 1000
    with pytest.raises(ValueError, match="no final classifier"):
        net.forward_features(_random_input(32), ["logits"])
    assert net.forward_features(_random_input(32), ["inception_3a"])["inception_3a"].shape[1] == 256


def test_caffe_named_final_classifier_is_accepted_and_gives_logits() -> None:
    state = places_googlenet(205).state_dict()
    state["loss3_classifier.weight"] = state.pop("loss3_classifier_1.weight")
    state["loss3_classifier.bias"] = state.pop("loss3_classifier_1.bias")
    net = from_state_dict(state).eval()
    assert net.has_classifier and net.num_classes == 205
    with torch.no_grad():
        assert net(_random_input(64)).shape == (1, 205)


def test_places365_loads_into_a_365_class_network() -> None:
    net = from_state_dict(places_googlenet(365).state_dict())
    assert isinstance(net, CaffeGoogLeNet) and net.num_classes == 365


def test_bad_inputs_get_one_line_errors() -> None:
    with pytest.raises(ValueError, match="205 or 365"):
        places_googlenet(100)
    with pytest.raises(ValueError, match="not a Caffe GoogLeNet"):
        from_state_dict({"features.0.weight": torch.zeros(1)})
    state = bvlc_googlenet().state_dict()
    state["inception_4c_3x3.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(ValueError, match="do not fit") as info:
        from_state_dict(state)
    assert "\n" not in str(info.value)
    with pytest.raises(KeyError, match="inception_9z"):
        bvlc_googlenet().forward_features(_random_input(32), ["inception_9z"])


def test_caffe_preprocess_is_bgr_0_255_minus_mean() -> None:
    rgb = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    out = caffe_preprocess(rgb, (104.0, 117.0, 123.0)).flatten().tolist()
    assert out == pytest.approx([0.0 - 104.0, 127.5 - 117.0, 255.0 - 123.0])
