"""The zoom animation: dream, zoom in (and turn) a little, dream again, one frame each time.

Frames are written as ``frame_00000.png``, ``frame_00001.png``, ... into a folder.  Each
frame is written atomically and depends only on the previous frame and its index, so a run
that was interrupted resumes where it stopped and gives the frames an uninterrupted run
would have given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .engine.priors_extra import affine
from .imageio import quantise, read_image, write_image

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


def _as_saved(image: np.ndarray, bits: int) -> np.ndarray:
    """The image as it reads back from a ``bits``-deep file, so a resumed run continues from
    exactly what an uninterrupted one had."""
    return quantise(image, bits).astype(np.float32) / float((1 << bits) - 1)


def run_zoom(
    image: np.ndarray,
    out_dir: str | os.PathLike[str],
    frames: int,
    zoom: float,
    rotate: float,
    dream_frame: Callable[[np.ndarray, int], np.ndarray],
    bits: int = 8,
    on_frame: Callable[[int, Path, bool], None] | None = None,
) -> int:
    """Write ``frames`` frames into ``out_dir``; returns how many were dreamed this run.

    ``dream_frame(image, index)`` dreams one frame (the caller varies the seed by index).
    ``on_frame(index, path, skipped)`` reports each frame.
    """
    check_options(frames, zoom, rotate)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ZoomError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    done = frames_done(out, frames)
    if on_frame is not None:
        for i in range(done):
            on_frame(i, frame_path(out, i), True)
    current = image
    if done:
        current = read_image(frame_path(out, done - 1))[0]
        if current.shape != image.shape:
            raise ZoomError(f"{frame_path(out, done - 1)} does not match the input image's size "
                            "or channels; use an empty folder for a new animation")
    for i in range(done, frames):
        source = image if i == 0 else zoom_rotate(current, zoom, rotate)
        dreamed = dream_frame(source, i)
        path = frame_path(out, i)
        write_image(path, dreamed, bits=bits)
        current = _as_saved(dreamed, bits)
        if on_frame is not None:
            on_frame(i, path, False)
    return frames - done
