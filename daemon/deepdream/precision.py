"""The precision setting (``--precision`` / DEEPDREAM_PRECISION), torch-free so the
command line can check it before anything heavy loads; accel.prepare applies it."""

from __future__ import annotations

import os

#: auto: the device's reduced precision where accel.precision_check accepts it
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
PRECISION_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class PrecisionError(ValueError):
    """An unknown precision name; the message is one line."""


def precision_setting(precision: str | None = None) -> str:
    """``precision``, else DEEPDREAM_PRECISION, else "auto"; checked against PRECISIONS."""
    name = (precision or os.environ.get("DEEPDREAM_PRECISION") or "auto").strip().lower()
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r} (DEEPDREAM_PRECISION or "
                             f"--precision); use one of {', '.join(PRECISIONS)}")
    return name
