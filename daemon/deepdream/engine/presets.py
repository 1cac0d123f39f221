"""Named looks: a model, layers and step settings bundled under a name a user can pick.

Settings use the names of ``deepdream_protocol.settings`` (plus the engine's own keys);
anything the user sets explicitly overrides the preset's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    description: str  # one line, shown by 'deepdream presets' and the plug-ins
    settings: Mapping[str, Any] = field(default_factory=dict)


def _preset(name: str, description: str, **settings: Any) -> Preset:
    return Preset(name, description, MappingProxyType(settings))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset("classic", "Google's original look: GoogLeNet inception 4c, 4 octaves of 10 steps",
                model="googlenet", layer="inception4c", octaves=4, octave_scale=1.4,
                iterations=10, step=1.5, jitter=32),
        _preset("shallow-textures", "fine swirls and brush-stroke textures from an early layer",
                model="googlenet", layer="inception3b", octaves=4, octave_scale=1.4,
                iterations=10, step=1.5, norm="laplacian"),
        _preset("deep-objects", "eyes, animal faces and buildings emerge from a deep layer",
                model="googlenet", layer="inception4e", octaves=5, octave_scale=1.5,
                iterations=15, step=2.0, transform=True),
        _preset("animal", "pushes the image towards dogs, cats and birds (class-driven)",
                model="googlenet", layer="inception4c",
                classes="golden retriever, tabby, macaw", octaves=4, octave_scale=1.4,
                iterations=12, step=2.0, transform=True, smooth=0.5),
        _preset("subtle", "a light touch: gentle patterns, half blended over the original",
                model="googlenet", layer="inception4c", octaves=3, octave_scale=1.4,
                iterations=6, step=1.0, strength=0.5, norm="laplacian"),
        _preset("painterly", "smooth, colourful strokes: Laplacian normalisation and smoothing",
                model="googlenet", layer="inception4b", octaves=4, octave_scale=1.4,
                iterations=10, step=1.5, norm="laplacian", smooth=1.0, tv=0.2),
        _preset("tileable-texture", "a texture that repeats without a seam (for patterns)",
                model="googlenet", layer="inception3b", octaves=3, octave_scale=1.4,
                iterations=10, step=1.5, seamless=True),
    )
}


class PresetError(ValueError):
    """Unknown preset; the message lists the known ones."""


def get_preset(name: str) -> Preset:
    key = name.strip().lower()
    if key not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[key]


def expand_preset(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with its preset's settings filled in under the explicit ones.

    An explicit ``layer``/``layers`` replaces the preset's layer in either spelling.
    Without a preset (absent or empty) the values come back unchanged.
    """
    out = dict(values)
    name = out.get("preset")
    if not name:
        return out
    if not isinstance(name, str):
        raise PresetError(f"preset must be a name, not {name!r}")
    preset = get_preset(name)
    explicit_layers = "layer" in out or "layers" in out
    for key, value in preset.settings.items():
        if key in ("layer", "layers") and explicit_layers:
            continue
        out.setdefault(key, value)
    out["preset"] = preset.name
    return out
