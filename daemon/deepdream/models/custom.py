"""Custom models declared in TOML files.

```toml
[models.hed-vgg16]
arch = "vgg16"                  # one of deepdream.models.archs.ARCHS
weights = "vgg16-hed.pth"       # a file (relative to this TOML file), "torchvision" or "random"
preprocess = "caffe"            # or "torchvision" (the default)
seed = 0                        # random weights only
layer = "relu4_3"               # optional default layer
description = "..."
```
Files are read from the user's config folder, then ``DEEPDREAM_MODELS_FILE``, then
``--models-file``; a later file's model replaces an earlier one of the same name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from deepdream_protocol.launcher import config_dir

from .archs import ARCHS
from .weights import ModelError

ENV_VAR = "DEEPDREAM_MODELS_FILE"
PREPROCESS = ("torchvision", "caffe")
_KEYS = {"arch", "weights", "preprocess", "seed", "layer", "description"}


def models_files(models_file: str | os.PathLike[str] | None = None) -> list[Path]:
    """The TOML files to read, lowest priority first; named files must exist."""
    files: list[Path] = []
    default = config_dir() / "models.toml"
    if default.is_file():
        files.append(default)
    for named, origin in ((os.environ.get(ENV_VAR), ENV_VAR), (models_file, "--models-file")):
        if named:
            # absolute: a daemon tells clients where its models come from, and they
            # compare that with their own file from another folder
            path = Path(named).expanduser().absolute()
            if not path.is_file():
                raise ModelError(f"models file {path} (from {origin}) does not exist")
            files.append(path)
    return files


def read_models_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse and check one file: {name: {arch, weights, preprocess, seed, layer, ...}}."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read models file {path}: {exc}") from None
    except UnicodeDecodeError:
        raise ModelError(f"cannot read models file {path}: it is not a UTF-8 text (TOML) "
                         "file") from None
    other = next((key for key in doc if key != "models"), None)
    if other is not None:  # ([hed] instead of [models.hed]: its model was unknown, unsaid)
        raise ModelError(f"models file {path}: unknown table or key {other!r}; each model "
                         "goes under [models.NAME]")
    table = doc.get("models", {})
    if not isinstance(table, dict):
        raise ModelError(f"models file {path}: 'models' must be a table of [models.NAME]")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in table.items():
        where = f"models file {path}, [models.{name}]"
        if not isinstance(entry, dict):
            raise ModelError(f"{where} must be a table")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ModelError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: "
                             f"{', '.join(sorted(_KEYS))}")
        arch = entry.get("arch")
        if not isinstance(arch, str) or arch not in ARCHS:
            raise ModelError(f"{where}: arch must be one of {', '.join(ARCHS)}, not {arch!r}")
        preprocess = entry.get("preprocess", ARCHS[arch].preprocess)
        if preprocess not in PREPROCESS:
            raise ModelError(f"{where}: preprocess must be 'torchvision' or 'caffe', "
                             f"not {preprocess!r}")
        weights = entry.get("weights", "torchvision")
        if not isinstance(weights, str) or not weights:
            raise ModelError(f"{where}: weights must be a file path, 'torchvision' or 'random'")
        if weights == "torchvision" and not ARCHS[arch].weights_enum:
            raise ModelError(f"{where}: torchvision has no weights for {arch}; give weights = "
                             "a converted .pth file (or 'random')")
        if weights not in ("torchvision", "random"):
            weights = str((path.parent / Path(weights).expanduser()).resolve())
        seed = entry.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ModelError(f"{where}: seed must be an integer")
        layer = entry.get("layer", ARCHS[arch].default_layer)
        if not isinstance(layer, str) or layer not in ARCHS[arch].layers:
            raise ModelError(f"{where}: {arch} has no layer {layer!r}")
        out[name] = {
            "arch": arch, "weights": weights, "preprocess": preprocess, "seed": seed,
            "default_layer": layer, "description": str(entry.get("description", "")),
            "source": str(path),
        }
    return out
