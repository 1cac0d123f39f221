"""DreamSettings: the engine's checked view of the shared settings table."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from deepdream_protocol import messages as m
from deepdream_protocol.settings import BY_NAME, DEFAULTS


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line naming it and the fix."""


@dataclass(frozen=True)
class DreamSettings:
    model: str = DEFAULTS["model"]
    # (layer, weight) pairs; empty means the model's default layer
    layers: tuple[tuple[str, float], ...] = ()
    channels: tuple[int, ...] | None = None  # restrict the layers to these channels
    iterations: int = DEFAULTS["iterations"]
    octaves: int = DEFAULTS["octaves"]
    octave_scale: float = DEFAULTS["octave_scale"]
    step: float = DEFAULTS["step"]
    jitter: int = DEFAULTS["jitter"]
    seed: int = DEFAULTS["seed"]
    strength: float = DEFAULTS["strength"]
    preset: str = DEFAULTS["preset"]
    keep_colors: bool = DEFAULTS["keep_colors"]
    seamless: bool = DEFAULTS["seamless"]
    # looks (engine/looks.py): step options and objectives beyond the layer's L2
    norm: str = DEFAULTS["norm"]
    smooth: float = DEFAULTS["smooth"]
    tv: float = DEFAULTS["tv"]
    l2: float = DEFAULTS["l2"]
    transform: bool = DEFAULTS["transform"]
    from_noise: bool = DEFAULTS["from_noise"]
    classes: str = DEFAULTS["classes"]
    guide: str = DEFAULTS["guide"]
    neuron: str = DEFAULTS["neuron"]
    rank: int = DEFAULTS["rank"]
    tile: int = 0  # tile edge in pixels; 0 picks one from the device's free memory
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DreamSettings:
        """Check and convert settings named as in ``deepdream_protocol.settings``; a named
        preset fills in what ``d`` does not set."""
        from .looks import check_settings
        from .presets import PresetError, expand_preset

        try:
            d = expand_preset(d)
        except PresetError as exc:
            raise SettingsError(str(exc)) from None
        values: dict[str, Any] = {}
        own = {f.name for f in fields(cls)} - {"layers", "channels"}
        for key, value in d.items():
            if key == "layer":
                if "layers" in d:
                    raise SettingsError("give either 'layer' or 'layers', not both")
                values["layers"] = parse_layers(value)
            elif key == "layers":
                values["layers"] = parse_layers(value)
            elif key == "channels":
                values["channels"] = parse_channels(value)
            elif key in own:
                values[key] = _coerce(key, value)
            else:
                raise SettingsError(f"unknown setting {key!r}")
        settings = cls(**values)
        check_settings(settings)
        return settings

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["layers"] = [list(p) for p in self.layers]
        d["channels"] = list(self.channels) if self.channels is not None else None
        return d


_ENGINE_ONLY = {"tile": (int, 0, 65536), "device": (str, None, None)}


def _shown(value: Any) -> str:
    """``value`` for an error line, cut short (a 400-digit number is no message)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text):,} characters)"


def _coerce(key: str, value: Any) -> Any:
    if key in _ENGINE_ONLY:
        kind, lo, hi = _ENGINE_ONLY[key]
    else:
        s = BY_NAME[key]
        kind, lo, hi = s.kind, s.minimum, s.maximum
    if kind is bool:
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise SettingsError(f"{key} must be true or false, not {_shown(value)}")
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f"{key} must be text, not {_shown(value)}")
        return value
    # (numbers.Real: numpy's scalars too, as a Python caller passes them)
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise SettingsError(f"{key} must be a number, not {_shown(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # (an int of 400 digits overflows a float)
        raise SettingsError(f"{key} must be a number, not {_shown(value)}") from None
    if not math.isfinite(number):
        raise SettingsError(f"{key} must be a finite number, not {_shown(value)}")
    if kind is int:
        if number != int(number):
            raise SettingsError(f"{key} must be a whole number, not {_shown(value)}")
        number = int(number)
    if lo is not None and hi is not None and not lo <= number <= hi:
        raise SettingsError(f"{key} must be between {m.number(lo)} and {m.number(hi)}, not "
                            f"{_shown(value)}")
    if lo is not None and number < lo:
        raise SettingsError(f"{key} must be at least {m.number(lo)}, not {_shown(value)}")
    if hi is not None and number > hi:
        raise SettingsError(f"{key} must be at most {m.number(hi)}, not {_shown(value)}")
    return number


#: a layer weight mixes layers (and the priors); far bigger ones overflow float32 (from
#: 1e38 the dream is all NaN, written as a black image), so they are refused
MAX_LAYER_WEIGHT = 1000


def parse_layers(value: Any) -> tuple[tuple[str, float], ...]:
    """``"a:1,b:0.5"``, ``"a"``, ``["a", "b:2"]`` or ``[["a", 1], ["b", 0.5]]``."""
    items: list[Any]
    if isinstance(value, str):
        items = [p for p in (s.strip() for s in value.split(",")) if p]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise SettingsError(f"layer must be text like 'inception4c:1,inception4d:0.5', "
                            f"not {value!r}")
    out: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, str):
            name, _, weight = item.partition(":")
            pair: Any = (name, weight.strip() or 1.0)
        else:
            pair = item
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not isinstance(pair[0], str) or not pair[0].strip()):
            raise SettingsError(f"bad layer {item!r}; write NAME or NAME:WEIGHT")
        try:
            weight = float(pair[1])
        except (TypeError, ValueError):
            raise SettingsError(f"bad layer weight in {item!r}; write NAME:WEIGHT with a "
                                "number") from None
        if not (math.isfinite(weight) and abs(weight) <= MAX_LAYER_WEIGHT):
            raise SettingsError(f"bad layer weight in {item!r}; it must be between "
                                f"-{MAX_LAYER_WEIGHT} and {MAX_LAYER_WEIGHT}")
        out.append((pair[0].strip(), weight))
    return tuple(out)


#: more channels than any layer has (the largest have a few thousand)
MAX_CHANNELS = 1 << 16


def parse_channels(value: Any) -> tuple[int, ...] | None:
    """``"3,7,10-12"`` or ``[3, 7, 10]``; empty or None means every channel."""
    if value is None:
        return None
    out: list[int] = []
    if isinstance(value, str):
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            lo, dash, hi = part.partition("-")
            try:
                a = int(lo)
                b = int(hi) if dash else a
            except ValueError:
                raise SettingsError(f"bad channels {value!r}; write e.g. '3,7,10-12'") from None
            if b < a:
                raise SettingsError(f"bad channel range {part!r}; write LOW-HIGH")
            if len(out) + (b - a + 1) > MAX_CHANNELS:  # checked before the range is built
                raise SettingsError(f"channels {value!r} lists more than {MAX_CHANNELS} "
                                    "channels; no layer has that many")
            out.extend(range(a, b + 1))
    elif isinstance(value, (list, tuple)):
        for c in value:
            if isinstance(c, bool) or not isinstance(c, int):
                raise SettingsError(f"channels must be whole numbers, not {c!r}")
            out.append(c)
    else:
        raise SettingsError(f"bad channels {value!r}; write e.g. '3,7,10-12'")
    if any(c < 0 for c in out):
        raise SettingsError("channel numbers start at 0; negative ones are not allowed")
    return tuple(dict.fromkeys(out)) or None
