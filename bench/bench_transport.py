"""Transport overhead of the daemon: zero-step round trips through pyzmq and the stdlib client.

Starts a real daemon on loopback (tiny random model; a zero-step job never runs it) and
times ``Client.dream`` for 1 MP RGBA u8 and 16 MP RGBA u16, printing one JSON line per case:

    PYTHONPATH=daemon:shared .venv/bin/python bench/bench_transport.py [--runs N] [--quick]

Target: at most 10 ms for 1 MP u8 on loopback.  ``--quick`` skips the 16 MP case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepdream_protocol.client import Client  # noqa: E402
from deepdream_protocol.pixels import PixelFormat  # noqa: E402

from tests.support.daemon import running_daemon  # noqa: E402

CASES = [("1MP RGBA u8", PixelFormat("RGBA", "u8"), 1024, 1024, 10.0),
         ("16MP RGBA u16", PixelFormat("RGBA", "u16"), 4096, 4096, None)]


def bench(endpoint: str, transport: str, label: str, fmt: PixelFormat, width: int,
          height: int, runs: int, target_ms: float | None) -> dict:
    pixels = bytes(range(256)) * (fmt.frame_size(width, height) // 256)
    with Client(endpoint, transport=transport, timeout=120) as client:
        client.hello()
        times = []
        for i in range(runs + 1):  # the first run warms caches and is not counted
            start = time.perf_counter()
            out = client.dream({"iterations": 0}, pixels, width, height, fmt)
            elapsed = (time.perf_counter() - start) * 1000
            if out != pixels:
                raise SystemExit(f"{label} via {transport}: the round trip changed the pixels")
            if i:
                times.append(elapsed)
    return {"bench": "transport", "transport": transport, "payload": label,
            "bytes": len(pixels), "runs": runs, "median_ms": round(statistics.median(times), 2),
            "min_ms": round(min(times), 2), "target_ms": target_ms,
            "mb_per_s": round(2 * len(pixels) / 2**20 / (statistics.median(times) / 1000), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case")
    parser.add_argument("--quick", action="store_true", help="1 MP only")
    args = parser.parse_args()
    cases = CASES[:1] if args.quick else CASES
    with running_daemon() as endpoint:
        for label, fmt, width, height, target in cases:
            runs = args.runs if width * height <= 2**20 else max(2, args.runs // 4)
            for transport in ("zmq", "stdlib"):
                print(json.dumps(bench(endpoint, transport, label, fmt, width, height, runs,
                                       target)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
