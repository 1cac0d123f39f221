"""Presets: the looks named in the issue, described, and overridable by explicit settings."""

from __future__ import annotations

import pytest
from deepdream.engine.presets import PRESETS, PresetError, expand_preset, get_preset


def test_the_promised_looks_exist_with_one_line_descriptions() -> None:
    for name in ("classic", "shallow-textures", "deep-objects", "animal", "subtle"):
        preset = PRESETS[name]
        assert preset.description and "\n" not in preset.description
    assert PRESETS["classic"].settings["layer"] == "inception4c"
    assert PRESETS["classic"].settings["model"] == "googlenet"
    assert PRESETS["animal"].settings["classes"]


def test_explicit_settings_override_the_preset() -> None:
    out = expand_preset({"preset": "subtle", "strength": 0.9, "layer": "inception4a"})
    assert out["strength"] == 0.9 and out["layer"] == "inception4a"
    assert out["iterations"] == PRESETS["subtle"].settings["iterations"]
    # an explicit 'layers' list also replaces the preset's 'layer'
    out = expand_preset({"preset": "classic", "layers": [["inception3b", 1.0]]})
    assert "layer" not in out
    assert expand_preset({"iterations": 3}) == {"iterations": 3}
    assert expand_preset({"preset": "", "iterations": 3}) == {"preset": "", "iterations": 3}
    assert get_preset(" Classic ").name == "classic"


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(PresetError, match="unknown preset 'dreamy'; choose one of classic"):
        expand_preset({"preset": "dreamy"})
    with pytest.raises(PresetError, match="must be a name"):
        expand_preset({"preset": 3})
