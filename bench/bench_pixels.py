"""Host-side pixel work of a daemon job, outside the network: decode, dream()'s own work around
the octave loop, and encode, for a 1024x768 frame.

    PYTHONPATH=daemon:shared .venv/bin/python bench/bench_pixels.py [--runs N] [--size WxH]

One JSON line per measurement (bench, format, op, ms = the fastest of ``--runs``), a short
table last.  ``dream_overhead`` is ``dream()`` minus the ``dream_rgb`` call inside it, both
timed on the same run: the real loop at zero steps on the tiny random model (CPU), so no
stub stands in for the engine.  ``encode`` gets a result that differs from the input in
every colour sample (the dreamed case), ``decode`` the host bytes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deepdream.engine import DreamSettings  # noqa: E402
from deepdream.models import registry  # noqa: E402
from deepdream.pixelformat import decode, encode  # noqa: E402
from deepdream_protocol.pixels import PixelFormat  # noqa: E402

# RGBA for GIMP and float-free hosts, BGRA is what Krita sends for 8-bit layers
FORMATS = [PixelFormat("RGBA", "u8"), PixelFormat("RGBA", "u16"), PixelFormat("BGRA", "u8")]


def fastest(fn, runs: int) -> float:
    """Milliseconds of the fastest of ``runs`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def dream_overhead(image: np.ndarray, model, runs: int) -> float:
    """Fastest ``dream()`` minus its own ``dream_rgb`` call, in milliseconds."""
    engine = importlib.import_module("deepdream.engine.dream")
    real = engine.dream_rgb
    inner: list[float] = []

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            inner.append(time.perf_counter() - start)

    settings = DreamSettings.from_dict({"model": "tiny", "iterations": 0, "octaves": 1})
    engine.dream_rgb = timed
    try:
        best = float("inf")
        for i in range(runs + 1):  # the first call warms up and is not counted
            inner.clear()
            start = time.perf_counter()
            engine.dream(image, model, settings)
            total = time.perf_counter() - start
            if i:
                best = min(best, total - sum(inner))
    finally:
        engine.dream_rgb = real
    return best * 1000


def measure(fmt: PixelFormat, width: int, height: int, model, runs: int) -> list[dict]:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, fmt.frame_size(width, height), dtype=np.uint8).tobytes()
    image = decode(data, fmt, width, height)
    result = image.copy()
    result[..., :3] = np.clip(result[..., :3] + np.float32(0.01), 0.0, 1.0)
    times = {
        "decode": fastest(lambda: decode(data, fmt, width, height), runs),
        "dream_overhead": dream_overhead(image, model, runs),
        "encode": fastest(lambda: encode(result, fmt, data, width, height, decoded=image), runs),
    }
    name = f"{width}x{height} {fmt.layout} {fmt.dtype}"
    return [{"bench": "pixels", "format": name, "op": op, "ms": round(ms, 2)}
            for op, ms in times.items()]


def table(rows: list[dict]) -> str:
    ops = list(dict.fromkeys(r["op"] for r in rows))
    formats = list(dict.fromkeys(r["format"] for r in rows))
    ms = {(r["format"], r["op"]): r["ms"] for r in rows}
    lines = [f"{'format (ms)':<22}" + "".join(f"{op:>16}" for op in ops) + f"{'sum':>10}"]
    for f in formats:
        cells = [ms[f, op] for op in ops]
        lines.append(f"{f:<22}" + "".join(f"{c:>16.2f}" for c in cells) + f"{sum(cells):>10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--size", default="1024x768", help="frame size WxH")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    model = registry.load("tiny", "cpu", ROOT / "tests" / "support" / "tiny_models.toml",
                          accelerate=False)
    rows = []
    for fmt in FORMATS:
        for row in measure(fmt, width, height, model, args.runs):
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
