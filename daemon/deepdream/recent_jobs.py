"""The sizes and settings of a GPU daemon's last few jobs, kept across restarts.

A new image size costs its first try the capture of its octaves' CUDA graphs (and, with
``--compile ahead``, waits for a compile).  A daemon that remembers its last jobs dreams each
once at start, on noise of the same size, so the artist's first try after a restart finds
those graphs ready.  Only what shapes the graphs is kept: settings and size, never pixels.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("deepdream.server")

KEEP = 3  # jobs remembered: an artist iterates on one or two images at a time
MAX_PIXELS = 16_000_000  # larger jobs are not dreamed again at start (seconds each)


class RecentJobs:
    """The remembered jobs in ``path`` (JSON), the most recent first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # (one worker per device remembers)
        self._jobs = self._read()

    def remember(self, settings: dict[str, Any], width: int, height: int) -> None:
        """Note a finished job (its settings as ``DreamSettings.to_dict`` gives them)."""
        if width * height > MAX_PIXELS:
            return
        entry = {"settings": {k: v for k, v in settings.items() if k not in ("seed", "device")},
                 "width": width, "height": height}
        with self._lock:
            if self._jobs[:1] == [entry]:
                return  # the same try again: nothing to write
            self._jobs = [entry, *(j for j in self._jobs if j != entry)][:KEEP]
            self._write()

    def of_model(self, model: str) -> list[tuple[dict[str, Any], int, int]]:
        """The remembered (settings, width, height) of ``model``, the most recent first."""
        with self._lock:
            return [(j["settings"], j["width"], j["height"]) for j in self._jobs
                    if j["settings"].get("model") == model]

    def _read(self) -> list[dict[str, Any]]:
        try:
            jobs = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:  # damaged: start afresh, it is only a speed-up
            log.warning("ignoring %s: %s", self.path, exc)
            return []
        ok = isinstance(jobs, list) and all(
            isinstance(j, dict) and isinstance(j.get("settings"), dict)
            and isinstance(j.get("width"), int) and isinstance(j.get("height"), int)
            for j in jobs)
        if not ok:
            log.warning("ignoring %s: not a list of jobs", self.path)
            return []
        return jobs[:KEEP]

    def _write(self) -> None:
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".recent-jobs-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._jobs, f, indent=1)
            os.replace(tmp, self.path)  # whole or not at all, even if the daemon is killed
        except OSError as exc:
            log.warning("cannot remember recent jobs in %s: %s", self.path, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
