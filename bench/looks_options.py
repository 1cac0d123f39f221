"""Time each looks option through dream() and check its result is sane; prints JSON lines.

    PYTHONPATH=daemon:shared python bench/looks_options.py --device cuda --size 512

Uses a random-initialised GoogLeNet (no weights needed), so the numbers are speed and
plumbing (device placement, finite output), not looks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from deepdream.engine import DreamSettings, dream
from deepdream.imageio import write_image
from deepdream.models import registry

OPTIONS: dict[str, dict[str, object]] = {
    "plain": {},
    "norm-std": {"norm": "std"},
    "norm-laplacian": {"norm": "laplacian"},
    "smooth": {"smooth": 2.0},
    "tv-l2": {"tv": 1.0, "l2": 1.0},
    "transform": {"transform": True},
    "keep-colors": {"keep_colors": True},
    "seamless": {"seamless": True},
    "from-noise": {"from_noise": True},
    "class": {"classes": "tabby cat"},
    "neuron": {"neuron": "inception4c:10"},
    "rank": {"rank": 8},
    "guide": {"guide": "GUIDE"},
    "bvlc-caffe": {"model": "bvlc"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--octaves", type=int, default=4)
    ap.add_argument("--only", nargs="*", help="option names to run (default: all)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "m.toml").write_text('[models.rnd]\narch = "googlenet"\nweights = "random"\n'
                                '[models.bvlc]\narch = "bvlc_googlenet"\nweights = "random"\n')
    rng = np.random.default_rng(0)
    write_image(tmp / "guide.png", rng.random((64, 64, 3)).astype(np.float32))
    yy, xx = np.mgrid[0:args.size, 0:args.size] / args.size
    image = np.stack([xx, yy, 0.5 + 0.4 * np.sin(12 * xx * yy)], -1).astype(np.float32)
    models = {}
    for name, extra in OPTIONS.items():
        if args.only and name not in args.only:
            continue
        extra = {k: (str(tmp / "guide.png") if v == "GUIDE" else v) for k, v in extra.items()}
        model_name = str(extra.pop("model", "rnd"))
        if model_name not in models:
            models[model_name] = registry.load(model_name, args.device, tmp / "m.toml")
        layer = "inception_4c" if model_name == "bvlc" else "inception4c"
        settings = DreamSettings.from_dict({"model": model_name, "layer": layer,
                                            "iterations": args.iterations,
                                            "octaves": args.octaves, **extra})
        dream(image[:32, :32], models[model_name], settings)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = dream(image, models[model_name], settings)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        print(json.dumps({"option": name, "device": args.device, "size": args.size,
                          "steps": args.iterations * args.octaves, "seconds": round(seconds, 3),
                          "finite": bool(np.isfinite(out).all()),
                          "mean_change": round(float(np.abs(out - image).mean()), 4)}),
              flush=True)


if __name__ == "__main__":
    main()
