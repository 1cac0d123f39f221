"""The plug-in's settings: the shared table plus "use selection", checked and persisted.

Values arrive from three places (the docker's widgets, a script's dict, Krita's settings
file, which stores strings); all pass through ``coerce`` so they reach the daemon typed
and in range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from deepdream_protocol.presets import complete_from_preset
from deepdream_protocol.settings import SETTINGS, Setting

from .pixels import DreamError

USE_SELECTION = Setting("use_selection", bool, True, label="Use selection",
                        help="dream only the selection; its feathered edge blends the dream in")
# Docker order: the shared table with "use selection" just before the two look toggles.
_SPLIT = next(i for i, s in enumerate(SETTINGS) if s.name == "keep_colors")
PLUGIN_SETTINGS: tuple[Setting, ...] = (*SETTINGS[:_SPLIT], USE_SELECTION, *SETTINGS[_SPLIT:])
BY_NAME: dict[str, Setting] = {s.name: s for s in PLUGIN_SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in PLUGIN_SETTINGS}
SETTINGS_GROUP = "deepdream_krita"

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def coerce(setting: Setting, value: Any) -> Any:
    """``value`` as the setting's type and within its range; raises DreamError."""
    name = setting.name
    try:
        if setting.kind is bool:
            if isinstance(value, str):
                if value.strip().lower() not in _TRUE + _FALSE:
                    raise ValueError(value)
                return value.strip().lower() in _TRUE
            if not isinstance(value, (bool, int)):
                raise ValueError(value)
            return bool(value)
        if setting.kind is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value.strip()
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        if not math.isfinite(number):  # nan passes every range check; inf breaks int()
            raise ValueError(value)
        if setting.kind is int:
            if not number.is_integer():
                raise ValueError(value)
            number = int(number)
    except (TypeError, ValueError):
        words = _KIND_WORDS[setting.kind]
        raise DreamError(f"setting {name!r} must be {words}, not {value!r}") from None
    lo, hi = setting.minimum, setting.maximum
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise DreamError(f"setting {name!r} must be between {lo:g} and {hi:g}, not {value!r}")
    return number


def complete(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every plug-in setting: the given ones checked, the missing ones from the named preset
    (a script's ``{"preset": "subtle", "seed": 4}`` dreams the subtle look) or else at
    their defaults.  The docker gives them all: what it shows is what runs."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise DreamError(f"unknown setting {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    checked = {name: coerce(BY_NAME[name], value) for name, value in values.items()}
    shared = complete_from_preset(checked)  # (the daemon's settings; the plug-in's own here)
    return {name: shared.get(name, checked.get(name, DEFAULTS[name])) for name in BY_NAME}


def load(read: Callable[[str], str | None]) -> dict[str, Any]:
    """Saved values (``read(name)`` returns the stored string or None); bad ones → defaults."""
    out = dict(DEFAULTS)
    for name, setting in BY_NAME.items():
        raw = read(name)
        if raw is None or (raw == "" and setting.kind is not str):
            continue
        try:
            out[name] = coerce(setting, raw)
        except DreamError:
            pass  # a hand-edited or outdated kritarc must not break the docker
    return out


def save(values: Mapping[str, Any], write: Callable[[str, str], None]) -> None:
    for name, value in complete(values).items():
        write(name, str(value).lower() if isinstance(value, bool) else str(value))


_UNSET = "\x01unset"


def load_saved() -> dict[str, Any]:
    """The values saved in Krita's settings (kritarc), so they survive restarts."""
    from krita import Krita

    app = Krita.instance()

    def read(name: str) -> str | None:
        raw = app.readSetting(SETTINGS_GROUP, name, _UNSET)
        return None if raw == _UNSET else raw

    return load(read)


def save_to_krita(values: Mapping[str, Any]) -> None:
    from krita import Krita

    app = Krita.instance()
    save(values, lambda name, raw: app.writeSetting(SETTINGS_GROUP, name, raw))
