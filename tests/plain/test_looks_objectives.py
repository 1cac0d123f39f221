"""Neuron, class, guide-image and channel-ranking objectives do what they claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from deepdream.engine.objectives_extra import (
    ObjectiveError,
    class_logits,
    guide,
    guide_size,
    guide_vectors,
    imagenet_categories,
    neuron,
    parse_neuron,
    rank_channels,
    ranked_channels,
    resolve_class,
    resolve_classes,
)
from deepdream.models import registry
from torch import nn


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU()).eval().requires_grad_(False)


def _ascend(objective, features_of, x: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Plain normalised gradient ascent on the pixels, as the dream loop does."""
    x = x.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        (g,) = torch.autograd.grad(objective(features_of(x)), x)
        x = (x + 0.02 * g / (g.abs().mean() + 1e-8)).detach().clamp(0, 1)
    return x


def _image(size: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- neuron ------------------------------------------------------------------------------

def test_neuron_objective_raises_that_neuron_and_only_touches_its_receptive_field() -> None:
    net = _tiny_net()

    def feats(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"c2": net(x)}

    x0 = _image()
    # a channel that is alive there (a random net has dead ReLUs)
    channel = int(feats(x0)["c2"][0, :, 17, 6].argmax())
    obj = neuron("c2", channel, x=0.25, y=0.75)
    x1 = _ascend(obj, feats, x0)
    assert obj(feats(x1)) > obj(feats(x0))
    changed = (x1 - x0).abs().sum(dim=(0, 1)) > 0
    rows, cols = changed.nonzero(as_tuple=True)
    # two 3x3 convs: a 5x5 field around (row 17, col 6) of the 24x24 map
    assert rows.min() >= 15 and rows.max() <= 19 and cols.min() >= 4 and cols.max() <= 8


def test_neuron_spec_parsing_and_errors() -> None:
    assert parse_neuron("12", "inception4c") == ("inception4c", 12, 0.5, 0.5)
    assert parse_neuron("inception4d:3@0.1,0.9", "x") == ("inception4d", 3, 0.1, 0.9)
    for bad in ("", "abc", "4c:-1", "3@2,0.5"):
        with pytest.raises(ObjectiveError):
            parse_neuron(bad, "inception4c")
    with pytest.raises(ObjectiveError, match="channels 0..15"):
        neuron("c2", 16)({"c2": torch.zeros(1, 16, 4, 4)})


# --- class -------------------------------------------------------------------------------

def test_class_names_resolve_case_insensitively_with_suggestions() -> None:
    cats = imagenet_categories()
    assert len(cats) == 1000
    tabby = cats.index("tabby")
    assert resolve_class("Tabby", cats) == tabby
    assert resolve_class("tabby cat", cats) == tabby  # the words of exactly one class
    assert resolve_class("GOLDFISH", cats) == cats.index("goldfish")
    assert resolve_class("#281", cats) == 281
    assert resolve_classes("tabby cat, goldfish, tabby", cats) == [tabby, cats.index("goldfish")]
    with pytest.raises(ObjectiveError, match="did you mean 'goldfish'"):
        resolve_class("goldfsh", cats)
    with pytest.raises(ObjectiveError, match="ambiguous: tiger cat"):
        resolve_class("cat", cats)
    with pytest.raises(ObjectiveError, match="ambiguous"):
        resolve_class("cardigan", cats)  # the corgi and the sweater
    with pytest.raises(ObjectiveError, match="out of range"):
        resolve_class("1000", cats)
    with pytest.raises(ObjectiveError, match="no class"):
        resolve_classes(" , ", cats)


@pytest.mark.usefixtures("isolated_config")
def test_class_objective_raises_that_logit_on_a_random_googlenet(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('[models.bvlc]\narch = "bvlc_googlenet"\nweights = "random"\nseed = 0\n')
    net = registry.load("bvlc", "cpu", models_file=toml, accelerate=False)

    def feats(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return net(x, ["logits"])

    obj = class_logits([281])
    x0 = _image(64)
    before = feats(x0)["logits"][0]
    after = feats(_ascend(obj, feats, x0, steps=4))["logits"][0]
    assert after[281] - before[281] > 0
    # it is that class that rose most, not every logit
    assert (after - before).argmax().item() == 281


def test_class_objective_without_classifier_is_a_clear_error() -> None:
    with pytest.raises(ObjectiveError, match="trunk-only"):
        class_logits([1])({"inception4c": torch.zeros(1, 4, 2, 2)})
    with pytest.raises(ObjectiveError, match="has 10 classes"):
        class_logits([281])({"logits": torch.zeros(1, 10)})


# --- guide -------------------------------------------------------------------------------

def test_guide_pulls_activations_towards_the_guides_features() -> None:
    net = _tiny_net()

    def feats(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"c2": net(x)}

    # a guide of pure saturated red/blue stripes: features unlike the noise image's
    stripes = torch.zeros(1, 3, 16, 16)
    stripes[:, 0, :, ::2] = 1.0
    stripes[:, 2, :, 1::2] = 1.0
    vectors = guide_vectors(feats(stripes)["c2"])
    obj = guide("c2", vectors)

    def similarity(x: torch.Tensor) -> float:
        a = torch.nn.functional.normalize(feats(x)["c2"][0].flatten(1), dim=0)
        v = torch.nn.functional.normalize(vectors, dim=0)
        return (a.t() @ v).max(dim=1).values.mean().item()

    x0 = _image()
    x1 = _ascend(obj, feats, x0)
    assert obj(feats(x1)) > obj(feats(x0))
    assert similarity(x1) > similarity(x0)


def test_guide_is_downscaled_and_subsampled_sensibly() -> None:
    assert guide_size(1000, 500) == (224, 112)
    assert guide_size(100, 60) == (100, 60)  # never enlarged
    vectors = guide_vectors(torch.rand(1, 8, 100, 100), max_vectors=64)
    assert vectors.shape == (8, 64) and not vectors.requires_grad
    with pytest.raises(ObjectiveError, match="8 channels"):
        guide("c", vectors)({"c": torch.zeros(1, 4, 2, 2)})


# --- channel ranking ---------------------------------------------------------------------

def test_ranking_picks_the_strongest_or_weakest_channels_of_this_image() -> None:
    act = torch.zeros(1, 6, 3, 3)
    for c, level in enumerate([0.5, 3.0, 0.1, 2.0, 0.0, 1.0]):
        act[:, c] = level
    assert rank_channels(act, 2) == [1, 3]
    # the weakest that respond: channel 4 is zero everywhere (no gradient: it would dream
    # nothing, and -1 used to pick it alone and leave the image as it was)
    assert rank_channels(act, -2) == [2, 0]
    assert rank_channels(act, -6) == [2, 0, 5, 3, 1]
    with pytest.raises(ObjectiveError, match="no channel of the layer responds"):
        rank_channels(torch.zeros(1, 6, 3, 3), -1)
    obj = ranked_channels("c", 2)
    value = obj({"c": act})
    assert obj.channels == [1, 3]
    assert value.item() == pytest.approx((9.0 + 4.0) / 2)
    # chosen once, for the original image: later steps push the same channels
    obj({"c": act.flip(1)})
    assert obj.channels == [1, 3]
    with pytest.raises(ObjectiveError, match="the layer has 6"):
        rank_channels(act, 7)
    with pytest.raises(ObjectiveError, match="non-zero"):
        ranked_channels("c", 0)
