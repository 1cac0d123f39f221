#!/usr/bin/env bash
# The short GPU call (about 2-3 minutes; give the run call timeout_s 240) for a session whose
# device time is nearly spent: (1) the CUDA checks of graphs, rewrites, engine and pixels,
# (2) the benchmark's GoogLeNet and VGG16 rows with the daemon's end to end (no compile pass,
# no 4096x4096), (3) the step probe without compiling.  gpu_check.sh is the full call.
#   OUT=/tmp/out bash bench/gpu_quick.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/deepdream-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if ! "$PY" -c "import zmq" 2>/dev/null; then  # see gpu_check.sh for .whl/
    "$PY" -m pip install --quiet --target /tmp/site .whl/*.whl >/dev/null 2>&1
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/daemon:$PWD/shared:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

echo "== 1. checks, $(date +%T)"
timeout 90 "$PY" bench/check_fastpath_cuda.py --only graph1,tiled,engine,warm_up,pixels,rewrites \
    --out "$OUT/check.jsonl" >"$OUT/check.log" 2>&1
echo "checks exit status $?"
grep -A8 "^fast-path checks" "$OUT/check.log" || tail -n 15 "$OUT/check.log"
grep -o '"check": "rewrites".*' "$OUT/check.log" | cut -c1-700

echo "== 2. benchmark (GoogLeNet, VGG16, end to end), $(date +%T)"
timeout 100 "$PY" bench/bench_dream.py --cases googlenet,vgg16 --repeats 3 \
    --out "$OUT/bench.jsonl" >"$OUT/bench.log" 2>&1
echo "bench exit status $?"
grep '"error"' "$OUT/bench.log" | cut -c1-300
sed -n '/^$/,$p' "$OUT/bench.log" | tail -n 12

echo "== 3. step probe, $(date +%T)"
timeout 45 "$PY" bench/probe_gpu_step.py --short --no-compile --out "$OUT/probe.jsonl" \
    >"$OUT/probe.log" 2>&1
echo "probe exit status $?"
grep -o '"part": "[^"]*"[^{]*"graph_ms_per_step": [0-9.]*' "$OUT/probe.log" \
    | sed 's/"prepare": "[^"]*", //'
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
