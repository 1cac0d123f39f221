"""Presets in the plug-ins: choosing one fills the fields with its look and what the fields
show is what is sent, even a value set back to its default; a script's call takes the
preset's values for what it leaves out.  The table is plain data in the shared package."""

from __future__ import annotations

import pytest
from deepdream.engine.presets import PRESETS as ENGINE_PRESETS
from deepdream.engine.presets import expand_preset
from deepdream.engine.settings import DreamSettings
from deepdream_protocol.presets import (
    KEPT,
    PRESETS,
    complete_from_preset,
    find_preset,
    preset_fill,
    unset_from_preset,
)
from deepdream_protocol.settings import BY_NAME, DEFAULTS, wire_settings


def dreamed(sent: dict) -> DreamSettings:
    """What the daemon dreams for settings a plug-in sent."""
    return DreamSettings.from_dict(sent)


def test_the_engine_and_the_plugins_read_one_table_of_known_settings() -> None:
    assert ENGINE_PRESETS is PRESETS
    for preset in PRESETS.values():
        assert set(preset.settings) <= set(BY_NAME), preset.name
        assert not set(preset.settings) & set(KEPT), preset.name
        for key, value in preset.settings.items():
            assert isinstance(value, BY_NAME[key].kind) or (
                BY_NAME[key].kind is float and isinstance(value, int)), (preset.name, key)


def test_choosing_a_preset_fills_every_field_but_the_seed_with_its_look() -> None:
    fill = preset_fill("deep-objects")
    assert set(fill) == set(DEFAULTS) - {"preset", "seed"}
    assert fill["octaves"] == 5 and fill["layer"] == "inception4e" and fill["transform"]
    assert fill["norm"] == DEFAULTS["norm"]  # not in the preset: back to the default
    # The fields then dream exactly what the command line's --preset alone dreams.
    shown = {**DEFAULTS, "seed": 7, **fill, "preset": "deep-objects"}
    assert dreamed(wire_settings(shown)) == dreamed({"preset": "deep-objects", "seed": 7})
    # after "subtle" (strength 0.5), "classic" puts strength back: a look is all of it
    assert preset_fill("classic")["strength"] == 1.0
    assert preset_fill(" Deep-Objects ") == fill
    assert preset_fill("") == {} and preset_fill("no-such-look") == {}
    assert find_preset("nope") is None and find_preset(None) is None


def test_a_field_set_back_to_its_default_after_choosing_a_preset_is_what_runs() -> None:
    # The issue: deep-objects (octaves 5), the user sets octaves back to 4 (the default).
    shown = {**DEFAULTS, **preset_fill("deep-objects"), "preset": "deep-objects",
             "octaves": 4, "transform": False}
    sent = wire_settings({**shown, "use_selection": True})  # a plug-in-only key is dropped
    assert sent == shown
    settings = dreamed(sent)
    assert settings.octaves == 4 and settings.transform is False
    assert settings.layers == (("inception4e", 1.0),) and settings.iterations == 15


def test_a_scripts_call_takes_the_preset_for_what_it_leaves_out() -> None:
    # Krita's dream_layer(document, node, {...}): left out -> the preset's value
    values = complete_from_preset({"preset": "deep-objects", "octaves": 4, "seed": 2})
    assert set(values) == set(DEFAULTS)
    assert values["octaves"] == 4 and values["seed"] == 2 and values["iterations"] == 15
    assert dreamed(values) == dreamed(expand_preset({"preset": "deep-objects", "octaves": 4,
                                                     "seed": 2}))
    assert complete_from_preset({"iterations": 3}) == {**DEFAULTS, "iterations": 3}
    # an unknown name is kept, for the daemon to refuse with the list of known ones
    assert complete_from_preset({"preset": "dreamy"})["preset"] == "dreamy"


def test_a_pdb_call_takes_the_preset_for_what_it_leaves_at_the_default() -> None:
    given = {**DEFAULTS, "preset": "subtle", "iterations": 20, "seed": 5}
    values = unset_from_preset(given)
    assert values["iterations"] == 20 and values["seed"] == 5
    assert values["strength"] == 0.5 and values["octaves"] == 3 and values["norm"] == "laplacian"
    assert unset_from_preset({**DEFAULTS, "octaves": 7}) == {**DEFAULTS, "octaves": 7}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_presets_fill_is_a_valid_dream(name: str) -> None:
    shown = {**DEFAULTS, **preset_fill(name), "preset": name}
    assert dreamed(wire_settings(shown)) == dreamed({"preset": name})
