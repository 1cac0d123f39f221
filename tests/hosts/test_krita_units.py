"""The Krita plug-in's pure parts, without Krita: wire formats, masks, settings.

The same code runs inside real Krita in test_krita.py; these pin the decisions that do not
need Krita (which layout and transfer a colour space maps to, how settings are checked).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))

from deepdream_krita import job, preferences  # noqa: E402
from deepdream_krita.pixels import (  # noqa: E402
    DreamError,
    Rect,
    splice_unmasked,
    wire_format,
    working_space,
)
from deepdream_protocol.pixels import PixelFormat  # noqa: E402


@pytest.mark.parametrize(("space", "expected"), [
    (("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("BGRA", "u8", "srgb")),
    (("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("BGRA", "u16", "srgb")),
    # Krita's default 16-bit and float RGB profile is linear light
    (("RGBA", "U16", "sRGB-elle-V2-g10.icc"), PixelFormat("BGRA", "u16", "linear")),
    (("RGBA", "F16", "sRGB-elle-V2-g10.icc"), PixelFormat("RGBA", "f16", "linear")),
    (("RGBA", "F32", "scRGB (linear)"), PixelFormat("RGBA", "f32", "linear")),
    (("RGBA", "F32", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("RGBA", "f32", "srgb")),
    (("GRAYA", "U8", "Gray-D50-elle-V2-srgbtrc.icc"), PixelFormat("GA", "u8", "srgb")),
    (("GRAYA", "F32", "Gray-D50-elle-V2-g10.icc"), PixelFormat("GA", "f32", "linear")),
])
def test_wire_format_follows_krita_layout_and_profile(space, expected):
    assert wire_format(*space) == expected


@pytest.mark.parametrize("model", ["CMYKA", "LABA", "XYZA", "YCbCrA"])
def test_other_models_need_conversion_to_rgba_of_the_same_depth(model):
    assert wire_format(model, "U16", "whatever") is None
    assert working_space("U16")[:2] == ("RGBA", "U16")
    assert wire_format(*working_space("F32")).dtype == "f32"


def test_unknown_depth_is_a_clear_error():
    with pytest.raises(DreamError, match="colour depth"):
        wire_format("RGBA", "U32", "")


def test_rect_intersection():
    assert Rect(10, 5, 64, 48).intersected(Rect(0, 0, 64, 48)) == Rect(10, 5, 54, 43)
    assert Rect(0, 0, 4, 4).intersected(Rect(10, 10, 4, 4)).empty


def test_splice_takes_unselected_pixels_from_the_original():
    original = bytes(range(0, 30))  # five 6-byte pixels
    dreamed = bytes(range(100, 130))
    mask = bytes([0, 255, 0, 0, 7])
    out = splice_unmasked(original, dreamed, mask, 6)
    assert out[0:6] == original[0:6]
    assert out[6:12] == dreamed[6:12]
    assert out[12:24] == original[12:24]
    assert out[24:30] == dreamed[24:30]


def test_settings_defaults_and_checks():
    values = preferences.complete({"iterations": "3", "use_selection": False})
    assert values["iterations"] == 3
    assert values["use_selection"] is False
    assert values["model"] == "googlenet"  # missing -> the shared default
    with pytest.raises(DreamError, match="unknown setting 'iterationz'"):
        preferences.complete({"iterationz": 3})
    with pytest.raises(DreamError, match="between"):
        preferences.complete({"octaves": 0})
    with pytest.raises(DreamError, match="must be a whole number"):
        preferences.complete({"iterations": 2.5})
    with pytest.raises(DreamError, match="must be true or false"):
        preferences.complete({"seamless": "maybe"})
    for bad in ("inf", "nan", float("-inf")):  # typed into a script or a hand-edited kritarc
        with pytest.raises(DreamError, match="must be a whole number"):
            preferences.complete({"iterations": bad})
        with pytest.raises(DreamError, match="must be a number"):
            preferences.complete({"step": bad})


def test_docker_order_puts_presets_first_and_selection_before_colour_toggles():
    names = [s.name for s in preferences.PLUGIN_SETTINGS]
    assert names[0] == "preset"
    assert names.index("use_selection") == names.index("keep_colors") - 1


def test_saved_settings_round_trip_and_bad_values_fall_back():
    store: dict[str, str] = {}
    chosen = {"iterations": 7, "step": 0.5, "seamless": True, "layer": "inception4d"}
    preferences.save(chosen, store.__setitem__)
    loaded = preferences.load(store.get)
    assert {k: loaded[k] for k in chosen} == chosen
    store["octaves"] = "lots"  # a hand-edited kritarc
    assert preferences.load(store.get)["octaves"] == preferences.DEFAULTS["octaves"]


class _Node:
    """The little of krita.Node that job.prepare and PreparedDream.finish look at first."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def type(self) -> str:
        return self.kind

    def name(self) -> str:
        return "layer"


class _ClosedDocument:
    def rootNode(self) -> None:  # noqa: N802 - Krita's name
        return None  # what a closed Document answers


@pytest.mark.parametrize(("kind", "message"), [
    ("grouplayer", "group layers cannot be dreamed; select a paint layer"),
    ("filllayer", "fill layers cannot be dreamed; select a paint layer"),
    ("filterlayer", "filter layers cannot be dreamed; select a paint layer"),
    ("filelayer", "file layers cannot be dreamed; select a paint layer"),
    ("somenewlayer", "layers of this kind cannot be dreamed; select a paint layer"),
])
def test_only_paint_layers_are_dreamed(kind, message):
    with pytest.raises(DreamError) as caught:
        job.prepare(object(), _Node(kind))
    assert str(caught.value) == message


def test_a_document_closed_while_dreaming_gets_nothing_and_says_so():
    prepared = job.PreparedDream(_ClosedDocument(), _Node("paintlayer"), Rect(0, 0, 1, 1),
                                 PixelFormat("BGRA", "u8", "srgb"), b"\0" * 4, None)
    with pytest.raises(DreamError, match=r"^the document was closed; nothing was added$"):
        prepared.finish(b"\0" * 4)
