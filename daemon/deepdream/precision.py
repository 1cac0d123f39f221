"""The precision and compile settings (``--precision`` / DEEPDREAM_PRECISION, ``--compile`` /
DEEPDREAM_COMPILE), torch-free so the command line can check them before anything heavy
loads; accel.prepare and the fast path apply them."""

from __future__ import annotations

import os

#: auto: the device's reduced precision where accel.precision_check accepts it
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
PRECISION_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class PrecisionError(ValueError):
    """An unknown precision or compile mode; the message is one line."""


def precision_setting(precision: str | None = None) -> str:
    """``precision``, else DEEPDREAM_PRECISION, else "auto"; checked against PRECISIONS."""
    name = (precision or os.environ.get("DEEPDREAM_PRECISION") or "auto").strip().lower()
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r} (DEEPDREAM_PRECISION or "
                             f"--precision); use one of {', '.join(PRECISIONS)}")
    return name


#: background: compile each new octave size on a side thread, plain graphs meanwhile;
#: wait: compile before the size's first dream; off: never (engine/fastpath.py)
COMPILE_MODES = ("background", "wait", "off")
COMPILE_ALIASES = {"1": "wait", "on": "wait", "0": "off", "no": "off"}


def compile_setting(mode: str | None = None) -> str:
    """``mode``, else DEEPDREAM_COMPILE, else "background"; checked against COMPILE_MODES."""
    name = (mode or os.environ.get("DEEPDREAM_COMPILE") or "background").strip().lower()
    name = COMPILE_ALIASES.get(name, name)
    if name not in COMPILE_MODES:
        raise PrecisionError(f"unknown compile mode {name!r} (DEEPDREAM_COMPILE or "
                             f"--compile); use one of {', '.join(COMPILE_MODES)}")
    return name
