"""Named looks for the engine: the shared table (``deepdream_protocol.presets``, plain data
the plug-ins read too) and how the daemon and the command line apply it.

Anything given explicitly overrides the preset's value; the preset fills in the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdream_protocol.presets import PRESETS, Preset

__all__ = ["PRESETS", "Preset", "PresetError", "expand_preset", "get_preset"]


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
