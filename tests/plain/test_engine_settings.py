"""DreamSettings.from_dict reads the shared settings names and rejects bad values in one line."""

from __future__ import annotations

import numpy as np
import pytest
from deepdream.engine import DreamSettings, SettingsError
from deepdream_protocol.settings import DEFAULTS


def test_defaults_come_from_the_shared_settings_table() -> None:
    s = DreamSettings.from_dict({})
    assert (s.model, s.iterations, s.octaves, s.octave_scale, s.step, s.jitter) == (
        DEFAULTS["model"], DEFAULTS["iterations"], DEFAULTS["octaves"],
        DEFAULTS["octave_scale"], DEFAULTS["step"], DEFAULTS["jitter"])
    assert s.layers == ()  # the model's own default layer
    assert s.tile == 0 and s.device == "auto"


def test_a_host_form_at_its_defaults_suits_any_model() -> None:
    # GIMP's procedure arguments and Krita's docker start from DEFAULTS; an artist who picks
    # VGG16 there must not be sent GoogLeNet's layer (it failed: no layer 'inception4c')
    assert DreamSettings.from_dict({**DEFAULTS, "model": "vgg16"}).layers == ()


@pytest.mark.parametrize(("given", "layers"), [
    ("inception4c", (("inception4c", 1.0),)),
    ("inception4c:1,inception4d:0.5", (("inception4c", 1.0), ("inception4d", 0.5))),
    (" relu4_3 : 2 ", (("relu4_3", 2.0),)),
    (["conv3", "inception3b:-1"], (("conv3", 1.0), ("inception3b", -1.0))),
])
def test_layer_strings_and_lists(given: object, layers: tuple) -> None:
    assert DreamSettings.from_dict({"layer": given}).layers == layers


def test_layers_as_name_weight_pairs() -> None:
    s = DreamSettings.from_dict({"layers": [["inception4c", 1], ["inception5a", 0.25]]})
    assert s.layers == (("inception4c", 1.0), ("inception5a", 0.25))


@pytest.mark.parametrize(("given", "channels"), [
    ("3,7,10-12", (3, 7, 10, 11, 12)),
    ([5, 1, 5], (5, 1)),
    ("", None),
    (None, None),
])
def test_channels(given: object, channels: tuple | None) -> None:
    assert DreamSettings.from_dict({"channels": given}).channels == channels


@pytest.mark.parametrize(("bad", "words"), [
    ({"iterations": 501}, "iterations must be between 0 and 500"),
    ({"octaves": 2.5}, "octaves must be a whole number"),
    ({"step": "fast"}, "step must be a number"),
    ({"strength": float("nan")}, "strength must be a finite number"),
    ({"seamless": "yes"}, "seamless must be true or false"),
    ({"layer": "inception4c:x"}, "bad layer weight"),
    ({"layer": "a", "layers": [["a", 1]]}, "either 'layer' or 'layers'"),
    ({"channels": "4-2"}, "bad channel range"),
    ({"channels": [-1]}, "negative"),
    ({"channels": "0-99999999999"}, "more than 65536 channels"),
    ({"channels": "0-40000,50000-90000"}, "more than 65536 channels"),
    ({"colour": 1}, "unknown setting 'colour'"),
    ({"tile": -5}, "tile must be between 0 and 65536"),
    # an int no float holds (it escaped as OverflowError), told in a line of its own size
    ({"iterations": 10**400}, f"iterations must be a number, not 1{'0' * 39}... (401 "),
])
def test_bad_values_are_one_line_errors(bad: dict, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        DreamSettings.from_dict(bad)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_numbers_given_as_text_are_accepted() -> None:
    s = DreamSettings.from_dict({"iterations": "12", "step": "2.5", "keep_colors": 1})
    assert (s.iterations, s.step, s.keep_colors) == (12, 2.5, True)


def test_numpy_numbers_are_accepted() -> None:
    """What a Python caller computing its settings with numpy passes (they were refused as
    "must be a number, not np.int64(5)")."""
    s = DreamSettings.from_dict({"iterations": np.int64(5), "step": np.float32(1.5),
                                 "strength": np.float64(0.25)})
    assert (s.iterations, s.step, s.strength) == (5, 1.5, 0.25)
    assert type(s.iterations) is int


@pytest.mark.parametrize("preset, layer, says_preset", [
    ("painterly", "inception4b", True),  # the preset's own layer: say where it came from
    ("painterly", "conv9", False),  # the user's layer, under a preset
    ("", "inception4b", False),
])
def test_a_layer_the_model_lacks_is_named_with_the_preset_it_came_from(
        preset: str, layer: str, says_preset: bool) -> None:
    """A preset names GoogLeNet's layers; on another model the user never typed the layer."""
    from types import SimpleNamespace

    from deepdream.engine.looks import check_layer

    vgg = SimpleNamespace(name="vgg16", spec=SimpleNamespace(layers={"relu4_3": 512}))
    with pytest.raises(SettingsError) as refused:
        check_layer(vgg, layer, preset)
    assert str(refused.value) == (
        f"model 'vgg16' has no layer {layer!r}"
        + (f", which preset {preset!r} names" if says_preset else "")
        + "; choose one of relu4_3")
