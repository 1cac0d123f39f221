"""The dream settings every front end shares: names, types, defaults, ranges, help.

One table drives the command line's defaults, the daemon's validation, GIMP's PDB
arguments and Krita's docker, so the four never disagree.  Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str  # wire / Python name (underscores); GIMP's PDB name uses dashes
    kind: type  # bool, int, float or str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    label: str = ""
    help: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting("preset", str, "", label="Preset",
            help="a named look (model, layers and step settings); choosing one in a dialog "
            "fills in its settings; empty for none"),
    Setting("model", str, "googlenet", label="Model",
            help="network to dream with; 'deepdream models' lists them"),
    Setting("layer", str, "", label="Layer",
            help="layer(s) to amplify: NAME or NAME:WEIGHT, several separated by commas; "
            "empty for the model's usual layer"),
    Setting("iterations", int, 10, 0, 500, "Iterations", "gradient steps per octave"),
    Setting("octaves", int, 4, 1, 12, "Octaves", "number of scales, smallest first"),
    Setting("octave_scale", float, 1.4, 1.0, 4.0, "Octave scale", "size ratio between octaves"),
    Setting("step", float, 1.5, 0.0, 10.0, "Step size", "how far each step moves the pixels"),
    Setting("jitter", int, 32, 0, 512, "Jitter", "random shift in pixels before each step"),
    Setting("seed", int, 0, 0, 2**31 - 1, "Seed",
            "random seed; the same seed gives the same dream of the same image with the same "
            "settings (a large image's automatic tile follows free memory, which may shift it)"),
    Setting("strength", float, 1.0, 0.0, 1.0, "Strength",
            "blend of the dream over the original (1 = full dream)"),
    Setting("keep_colors", bool, False, label="Keep colours",
            help="dream the brightness only and keep the original colours"),
    Setting("seamless", bool, False, label="Seamless",
            help="make the result tile without a visible seam"),
    # The looks beyond layer amplification (engine/looks.py); all off by default.
    Setting("norm", str, "mean", label="Normalisation",
            help="how each step's gradient is scaled: mean, std or laplacian (smoother, "
            "more colourful)"),
    Setting("smooth", float, 0.0, 0.0, 10.0, "Smoothing",
            "gradient blur in pixels at an octave's first step, relaxing over its steps"),
    Setting("tv", float, 0.0, 0.0, 10.0, "TV penalty", "pull towards flat areas: less pixel noise"),
    Setting("l2", float, 0.0, 0.0, 10.0, "L2 penalty", "pull towards mid-grey: tamer values"),
    Setting("transform", bool, False, label="Transform robustness",
            help="a small random scale and rotation each step, besides the jitter"),
    Setting("from_noise", bool, False, label="From noise",
            help="start from noise instead of the image (feature visualisation: always with "
            "transform robustness; keep colours, TV, L2, smoothing and normalisation do not "
            "apply)"),
    Setting("classes", str, "", label="Classes",
            help="ImageNet classes to push towards, e.g. 'tabby cat, goldfish'; "
            "'deepdream classes' lists them"),
    Setting("guide", str, "", label="Guide image",
            help="image file whose features the dream is pulled towards"),
    Setting("neuron", str, "", label="Neuron",
            help="[LAYER:]CHANNEL[@X,Y]: one channel at one position (X, Y fractions 0-1)"),
    Setting("rank", int, 0, -1024, 1024, "Rank channels",
            "amplify the N strongest channels of the layer for this image (negative: weakest)"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def missing_guide(path: str) -> str:
    """Why the guide image ``path``, which is no file, cannot be read (one line)."""
    what = "is a folder, not an image file" if Path(path).expanduser().is_dir() else \
        "does not exist"
    return f"guide image {path} {what}"


def layer_names(value: str) -> list[str]:
    """The layer names a ``layer`` setting names: ``"inception4c"``, or a list with or
    without weights (``"inception4c:1, inception3b:0.5"``), in order."""
    return [part.split(":")[0].strip() for part in value.split(",") if part.strip()]


def wire_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Settings as a plug-in sends them: the known ones, as given (unknown keys dropped).

    Nothing is left out for a named preset: a plug-in's fields show the preset's values
    once it is chosen (``presets.preset_fill``) and what they show is what runs, even a
    value the user set back to its default.  The daemon fills in only what is missing.
    """
    return {k: v for k, v in values.items() if k in BY_NAME}
