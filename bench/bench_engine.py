"""Engine benchmark: seconds per megapixel-step, and the peak memory of a huge tiled dream.

Prints one JSON line per measurement. Random weights are fine for timing (same arithmetic).

    PYTHONPATH=daemon:shared python bench/bench_engine.py                # both, CPU
    PYTHONPATH=daemon:shared python bench/bench_engine.py --skip-big     # timings only
    PYTHONPATH=daemon:shared python bench/bench_engine.py --device cuda --big 16384
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = """
[models.bench-googlenet]
arch = "googlenet"
weights = "random"

[models.bench-vgg16]
arch = "vgg16"
weights = "random"
"""
CASES = (("bench-googlenet", "inception4c"), ("bench-vgg16", "relu4_3"))


def step_rate(models_file: str, model_name: str, layer: str, size: int, steps: int,
              device: str) -> dict[str, object]:
    """Seconds per megapixel per step of a one-octave dream at size x size."""
    import numpy as np
    import torch
    from deepdream.devices import pick_device
    from deepdream.engine import DreamSettings, dream
    from deepdream.models import registry

    dev = pick_device(device)
    model = registry.load(model_name, dev, models_file=models_file)
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    common = {"model": model_name, "layer": layer, "octaves": 1, "tile": 4096}
    dream(image[:64, :64], model, DreamSettings.from_dict({**common, "iterations": 1}))  # warm
    settings = DreamSettings.from_dict({**common, "iterations": steps})
    start = time.perf_counter()
    dream(image, model, settings)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    mp = size * size / 1e6
    return {"bench": "step_rate", "model": model_name.removeprefix("bench-"), "layer": layer,
            "device": str(dev), "size": size, "steps": steps, "threads": torch.get_num_threads(),
            "s_per_mp_step": round(seconds / (mp * steps), 3)}


def big_dream(models_file: str, size: int, steps: int, device: str, tile: int,
              layer: str) -> None:
    """Child process: dream a size x size RGB image; the parent reads our peak RSS."""
    import numpy as np
    from deepdream.devices import pick_device
    from deepdream.engine import DreamSettings, dream
    from deepdream.models import registry

    model = registry.load("bench-googlenet", pick_device(device), models_file=models_file)
    # not a flat gray: GoogLeNet maps 0.5 to 0, and a zero-bias random net has no gradient there
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    settings = DreamSettings.from_dict({"model": "bench-googlenet", "layer": layer,
                                        "octaves": 1, "iterations": steps, "tile": tile})
    start = time.perf_counter()
    out = dream(image, model, settings)
    print(json.dumps({"seconds": round(time.perf_counter() - start, 1),
                      "changed": bool((out != image).any())}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256, help="image edge for the step rate")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--big", type=int, default=8192, help="edge of the huge tiled dream")
    parser.add_argument("--big-steps", type=int, default=1)
    parser.add_argument("--tile", type=int, default=0, help="tile for the big dream; 0 = auto")
    parser.add_argument("--big-layer", default="inception4c",
                        help="GoogLeNet layer of the big dream (conv1 is the quickest way to "
                        "see the full-size buffers' share on a slow CPU)")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--models-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_big:
        big_dream(args.models_file, args.big, args.big_steps, args.device, args.tile,
                  args.big_layer)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        models_file = str(Path(tmp) / "bench.toml")
        Path(models_file).write_text(MODELS)
        for name, layer in CASES:
            print(json.dumps(step_rate(models_file, name, layer, args.size, args.steps,
                                       args.device)), flush=True)
        if not args.skip_big:
            child = subprocess.run(
                [sys.executable, __file__, "--child-big", "--models-file", models_file,
                 "--big", str(args.big), "--big-steps", str(args.big_steps),
                 "--device", args.device, "--tile", str(args.tile),
                 "--big-layer", args.big_layer],
                capture_output=True, text=True, check=False,
            )
            if child.returncode != 0:
                print(json.dumps({"bench": "big_dream", "error": child.stderr.strip()[-500:]}))
                return 1
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps({"bench": "big_dream", "size": args.big, "device": args.device,
                              "layer": args.big_layer,
                              "steps": args.big_steps, "tile": args.tile or "auto",
                              "peak_rss_gib": round(peak / 2**20, 2), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
