"""Caffe BVLC / Places GoogLeNet: the shared conversions' key names, shapes and Caffe sizes,
and such files loaded the way users load them (a models file naming the arch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from deepdream.models import ModelError, registry
from deepdream.models.archs import CAFFE_MEAN_BGR
from deepdream.models.bvlc_googlenet import bvlc_googlenet, places_googlenet
from deepdream.models.network import DreamModel

pytestmark = pytest.mark.usefixtures("isolated_config")

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


def _caffe_input(rgb: torch.Tensor) -> torch.Tensor:
    """What Caffe fed these networks: BGR, 0..255, the ImageNet mean taken off."""
    return rgb.flip(1) * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


def _random_input(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, size, size, generator=g)


def _load(tmp_path: Path, arch: str, state: dict[str, torch.Tensor]) -> DreamModel:
    torch.save(state, tmp_path / "caffe.pth")
    toml = tmp_path / "m.toml"
    toml.write_text(f'[models.c]\narch = "{arch}"\nweights = "caffe.pth"\n')
    return registry.load("c", "cpu", models_file=toml, accelerate=False)


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
        feats = net.forward_features(_caffe_input(_random_input(224)), names)
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


def test_a_trunk_only_conversion_dreams_but_has_no_classes(tmp_path: Path) -> None:
    # neural-dream's files carry the aux heads but no loss3 classifier.
    torch.manual_seed(1)
    net = bvlc_googlenet(classifier=False).eval()
    model = _load(tmp_path, "bvlc_googlenet", net.state_dict())
    assert not model.has_logits
    x = _random_input(32)
    with torch.no_grad():
        got = model(x, ["inception_3a"])["inception_3a"]
        want = net.forward_features(_caffe_input(x), ["inception_3a"])["inception_3a"]
    assert torch.allclose(got, want, atol=1e-4)  # the file's weights, Caffe's preprocessing


@pytest.mark.parametrize(("arch", "classes"), [("places_googlenet", 365),
                                               ("places205_googlenet", 205)])
def test_places_conversions_keep_their_classifier(tmp_path: Path, arch: str,
                                                  classes: int) -> None:
    torch.manual_seed(2)
    net = places_googlenet(classes).eval()
    model = _load(tmp_path, arch, net.state_dict())
    assert model.num_classes == classes
    x = _random_input(64)
    with torch.no_grad():
        assert torch.allclose(model(x, ["logits"])["logits"].flatten(),
                              net(_caffe_input(x)).flatten(), atol=1e-3)


def test_a_file_that_does_not_fit_is_one_line_naming_the_tensor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="205 or 365"):
        places_googlenet(100)
    state = bvlc_googlenet().state_dict()
    state["inception_4c_3x3.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(ModelError, match="inception_4c_3x3.weight has shape") as info:
        _load(tmp_path, "bvlc_googlenet", state)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="trunk tensor"):
        _load(tmp_path, "bvlc_googlenet", {"features.0.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="inception_9z"):
        bvlc_googlenet().forward_features(_random_input(32), ["inception_9z"])
