"""Named looks: a model, layers and step settings bundled under a name a user can pick.

Plain data, pure Python, so the daemon and both plug-ins read the same table.  Settings
use the names of ``deepdream_protocol.settings``.  How a preset combines with settings
depends on the front end (docs/LOOKS.md, "Presets"):

* the command line and the daemon: the preset fills in what is not given; anything given
  wins (``deepdream.engine.presets.expand_preset``);
* the plug-ins' dialogs: choosing a preset fills the fields with its look
  (``preset_fill``) and what the fields show is what is sent;
* a plug-in called from a script (GIMP's PDB, Krita's ``dream_layer``): a setting left out,
  or in GIMP's PDB left at its default, takes the preset's value
  (``complete_from_preset``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .settings import DEFAULTS


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

#: settings a preset never changes: the preset's own name and the seed (which dream of
#: the look, not part of the look)
KEPT = ("preset", "seed")


def find_preset(name: Any) -> Preset | None:
    """The preset called ``name`` (case and surrounding spaces ignored), or None."""
    if not isinstance(name, str):
        return None
    return PRESETS.get(name.strip().lower())


def preset_fill(name: str) -> dict[str, Any]:
    """What choosing preset ``name`` in a dialog sets: every shared setting except ``KEPT``,
    at the preset's value or, where it names none, at the default (so the fields show
    exactly the look the command line's ``--preset NAME`` alone dreams).  Empty for an
    empty or unknown name: the fields stay as they are."""
    preset = find_preset(name)
    if preset is None:
        return {}
    return {k: preset.settings.get(k, v) for k, v in DEFAULTS.items() if k not in KEPT}


def complete_from_preset(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every shared setting for a script's call: those in ``values`` as given, the others
    from the named preset (``preset_fill``) or else at their defaults.  An unknown preset
    name is left for the daemon to refuse (with the list of known ones)."""
    out = {**DEFAULTS, **preset_fill(values.get("preset") or "")}
    out.update((k, v) for k, v in values.items() if k in DEFAULTS)
    return out


def unset_from_preset(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the settings still at their default taken from the named preset:
    for a caller that always gives every setting and cannot say which it set (a GIMP PDB
    call), a default means "not set".  Such a caller runs a preset with one of the
    preset's settings at its default by giving every setting and no preset."""
    unset = [k for k, v in values.items() if k in DEFAULTS and v == DEFAULTS[k]]
    fill = preset_fill(values.get("preset") or "")
    return {**values, **{k: fill[k] for k in unset if k in fill}}
