"""The speed settings, torch-free so the command line can check them before anything heavy
loads: precision (``--precision`` / DEEPDREAM_PRECISION; accel.prepare applies it),
compiling (``serve --compile`` / DEEPDREAM_COMPILE; engine/fastpath.py applies it) and CPU
threads (DEEPDREAM_THREADS; accel.set_threads applies it)."""

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


#: DEEPDREAM_COMPILE's values: "now" (also 1) compiles each new size before it dreams,
#: "ahead" in a background process, "auto" (empty too) is ahead in a daemon on an NVIDIA GPU
#: with torch.compile's compiler (serve decides) and off elsewhere; 0 or off: off
COMPILE_MODES = {"": "auto", "auto": "auto", "0": None, "off": None, "1": "now", "now": "now",
                 "ahead": "ahead"}


def compile_setting(mode: str | None = None) -> str | None:
    """``mode`` (``serve --compile``'s), else DEEPDREAM_COMPILE: "now", "ahead", "auto" or
    None (off)."""
    raw = mode if mode is not None else os.environ.get("DEEPDREAM_COMPILE", "")
    name = raw.strip().lower()
    if name not in COMPILE_MODES:
        raise PrecisionError(f"unknown compile mode {raw!r} (DEEPDREAM_COMPILE); use auto, "
                             "ahead, 1 (or now) or 0 (or off)")
    return COMPILE_MODES[name]


def threads_setting() -> int:
    """DEEPDREAM_THREADS (accel.set_threads applies it): a whole number of CPU threads, 0 or
    unset for the default (one per physical core)."""
    value = os.environ.get("DEEPDREAM_THREADS", "").strip()
    if not value:
        return 0
    try:
        threads = int(value)
    except ValueError:
        threads = -1
    if threads < 0:
        raise PrecisionError(f"DEEPDREAM_THREADS must be a whole number of CPU threads (or "
                             f"unset for one per physical core), not {value!r}")
    return threads


def apply_speed_settings(precision: str | None = None, compile_mode: str | None = None) -> None:
    """For a command that dreams here: ``--precision`` into the environment accel.prepare
    reads, and every speed setting checked (a bad DEEPDREAM_PRECISION, DEEPDREAM_COMPILE or
    DEEPDREAM_THREADS is one line up front, not a surprise later).  An option given
    (``--precision``, serve's ``--compile``) stands for its variable, which is then not read."""
    if precision:
        os.environ["DEEPDREAM_PRECISION"] = precision
    precision_setting()
    compile_setting(compile_mode)
    threads_setting()
