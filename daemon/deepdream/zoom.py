"""The zoom animation: dream, zoom in (and turn) a little, dream again, one frame each time.

Frames are written as ``frame_00000.png``, ``frame_00001.png``, ... into a folder.  Each
frame is written atomically and depends only on the previous frame and its index, so a run
that was interrupted resumes where it stopped and gives the frames an uninterrupted run
would have given.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engine.priors_extra import affine
from .imageio import check_output, png_text, quantise, read_image, write_image

FRAME_PATTERN = "frame_{:05d}.png"
MAX_ZOOM = 2.0


class ZoomError(ValueError):
    """Bad zoom options or output folder; the message is one line."""


def check_options(frames: int, zoom: float, rotate: float) -> None:
    if frames < 1:
        raise ZoomError(f"--frames must be at least 1, not {frames}")
    if not (math.isfinite(zoom) and 1.0 / MAX_ZOOM <= zoom <= MAX_ZOOM):
        raise ZoomError(f"--zoom must be between {1 / MAX_ZOOM} and {MAX_ZOOM} "
                        f"(1.04 = 4% closer per frame), not {zoom}")
    if not (math.isfinite(rotate) and -180.0 <= rotate <= 180.0):
        raise ZoomError(f"--rotate must be degrees between -180 and 180, not {rotate}")


def check_folder(out_dir: str | os.PathLike[str]) -> None:
    """ZoomError if ``out_dir`` cannot be (or become) the frames' folder."""
    out = Path(out_dir)
    if out.is_symlink() and not out.exists():
        raise ZoomError(f"{out} is a symbolic link to {os.readlink(out)}, which does not "
                        "exist; make that folder first")
    if out.exists() and not out.is_dir():
        raise ZoomError(f"{out} exists and is not a folder")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ZoomError(f"{out}: cannot write into the folder")


def zoom_rotate(image: np.ndarray, zoom: float, degrees: float) -> np.ndarray:
    """Enlarge (H, W, C) by ``zoom`` about the centre and turn it by ``degrees``
    (counter-clockwise); the size stays, edges that come into view are mirrored."""
    if zoom == 1.0 and degrees == 0.0:
        return image.copy()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    y = affine(x, scale=zoom, radians=math.radians(degrees))
    return y[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy().astype(image.dtype, copy=False)


def frame_path(out_dir: Path, index: int) -> Path:
    return out_dir / FRAME_PATTERN.format(index)


def frames_done(out_dir: Path, frames: int) -> int:
    """How many frames from the first are already written (a gap ends the count)."""
    n = 0
    while n < frames and frame_path(out_dir, n).is_file():
        n += 1
    return n


def _check_no_later_frames(out_dir: Path, done: int) -> None:
    """ZoomError when frame ``done`` is missing but later ones exist: each frame is dreamed
    from the one before, so going on would dream those again and overwrite them (or, past
    this run's last frame, leave them following a frame that is no longer there)."""
    later = sorted(i for p in out_dir.glob("frame_*.png")
                   if (i := _frame_index(p.name)) is not None and i > done)
    if later:
        raise ZoomError(
            f"{frame_path(out_dir, done)} is missing but {len(later)} later frame(s) exist "
            f"(e.g. {frame_path(out_dir, later[0]).name}), and each frame is dreamed from the "
            "one before; put the missing frame back, or remove the later ones to dream them "
            "again")


def _frame_index(name: str) -> int | None:
    digits = name.removeprefix("frame_").removesuffix(".png")
    return int(digits) if digits.isdigit() and FRAME_PATTERN.format(int(digits)) == name \
        else None


def _as_saved(image: np.ndarray, bits: int) -> np.ndarray:
    """The image as it reads back from a ``bits``-deep file, so a resumed run continues from
    exactly what an uninterrupted one had."""
    return quantise(image, bits).astype(np.float32) / float((1 << bits) - 1)


#: the PNG text note in each frame that says what made it
RECIPE_KEY = "deepdream-zoom"
_WHAT = {"input": "input image", "bits": "bit depth", "zoom": "--zoom", "rotate": "--rotate"}


def _recipe(image: np.ndarray, bits: int, zoom: float, rotate: float,
            settings: Mapping[str, Any] | None) -> str:
    """What makes frames of one animation, as the JSON text each frame notes: the same
    input pixels, depth, zoom, turn and dream settings."""
    samples = quantise(image, bits)
    digest = hashlib.sha256(repr(samples.shape).encode() + samples.tobytes()).hexdigest()
    return json.dumps({"input": digest, "bits": bits, "zoom": zoom, "rotate": rotate,
                       "settings": dict(settings or {})}, sort_keys=True)


def _check_resume(last: Path, recipe: dict[str, Any], fits: bool) -> None:
    """ZoomError unless the frames so far (``last`` the newest) were made by ``recipe``;
    ``fits``: size, channels and depth match (all an older frame without a note shows)."""
    hint = "use a new folder, or remove the old frames to start again"
    try:
        noted = json.loads(png_text(last).get(RECIPE_KEY, "null"))
    except ValueError:
        noted = None
    if not isinstance(noted, dict):
        if not fits:
            raise ZoomError(f"{last} does not match the input image's size, channels or "
                            f"bit depth; {hint}")
        return
    differ = [key for key in recipe if key != "settings" and noted.get(key) != recipe[key]]
    what = [_WHAT[key] for key in differ]
    theirs = noted.get("settings") if isinstance(noted.get("settings"), dict) else {}
    changed = sorted(k for k in set(theirs) | set(recipe["settings"])
                     if theirs.get(k) != recipe["settings"].get(k))
    if changed:
        what.append("dream settings (" + ", ".join(changed) + ")")
    if what:
        raise ZoomError(f"{last} does not match this run: it was made with another "
                        f"{' and another '.join(what)}; {hint}")


def run_zoom(
    image: np.ndarray,
    out_dir: str | os.PathLike[str],
    frames: int,
    zoom: float,
    rotate: float,
    dream_frame: Callable[[np.ndarray, int], np.ndarray],
    bits: int = 8,
    on_frame: Callable[[int, Path, bool], None] | None = None,
    settings: Mapping[str, Any] | None = None,
    icc_profile: bytes | None = None,
) -> int:
    """Write ``frames`` frames into ``out_dir``; returns how many were dreamed this run.

    ``dream_frame(image, index)`` dreams one frame (the caller varies the seed by index).
    ``on_frame(index, path, skipped)`` reports each frame.  ``settings``: the dream
    settings, JSON-able; with the input, bits, zoom and turn they are noted in each frame,
    and a folder whose frames were made otherwise is refused rather than continued.
    ``icc_profile``: the input's colour profile, embedded in every frame.
    """
    check_options(frames, zoom, rotate)
    out = Path(out_dir)
    check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe_text = _recipe(image, bits, zoom, rotate, settings)
    recipe = json.loads(recipe_text)  # read back, so it compares equal to what a frame holds
    done = frames_done(out, frames)
    if done < frames:  # (frames past this run's last are no gap)
        _check_no_later_frames(out, done)
    current = image
    if done:
        last = frame_path(out, done - 1)
        current, info = read_image(last)
        _check_resume(last, recipe, current.shape == image.shape and info.bits == bits)
    if on_frame is not None:
        for i in range(done):
            on_frame(i, frame_path(out, i), True)
    note = {RECIPE_KEY: recipe_text}
    for i in range(done, frames):
        path = frame_path(out, i)
        check_output(path, image.shape[2])  # a write-protected frame fails before its dream
        source = image if i == 0 else zoom_rotate(current, zoom, rotate)
        dreamed = dream_frame(source, i)
        write_image(path, dreamed, bits=bits, text=note, icc_profile=icc_profile)
        current = _as_saved(dreamed, bits)
        if on_frame is not None:
            on_frame(i, path, False)
    return frames - done
