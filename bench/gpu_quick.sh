#!/usr/bin/env bash
# The short GPU call (about 4 minutes; give the run call timeout_s 250) for a session whose
# device time is nearly spent: (1) the benchmark's GoogLeNet and VGG16 rows with the daemon's
# end to end, no compile pass, no 4096x4096; (2) the daemon's default background compile
# (bench_dream.py --background) with, beside it, the CUDA checks of the rewrites, graphs and
# engine.  Logs and JSON lines in $OUT, a summary on stdout.
#   OUT=/tmp/out BACKGROUND_S=150 bash bench/gpu_quick.sh
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

echo "== 1. benchmark (GoogLeNet, VGG16, end to end), $(date +%T)"
timeout 100 "$PY" bench/bench_dream.py --cases googlenet,vgg16 --repeats 3 \
    --out "$OUT/bench.jsonl" >"$OUT/bench.log" 2>&1
echo "bench exit status $?"
grep '"error"' "$OUT/bench.log" | cut -c1-300
sed -n '/^$/,$p' "$OUT/bench.log" | tail -n 12

echo "== 2. background compile, with the checks beside it, $(date +%T)"
timeout $((${BACKGROUND_S:-150} + 30)) "$PY" bench/bench_dream.py --background "${BACKGROUND_S:-150}" \
    --daemon-logs "$OUT/background" --out "$OUT/background.jsonl" >"$OUT/background.log" 2>&1 &
bg=$!
sleep 15  # the daemon's start and first try come first
timeout 100 "$PY" bench/check_fastpath_cuda.py --only rewrites,engine,graph1,tiled,warm_up \
    --out "$OUT/check.jsonl" >"$OUT/check.log" 2>&1
echo "checks exit status $?"
grep -A8 "^fast-path checks" "$OUT/check.log" || tail -n 15 "$OUT/check.log"
grep -o '"check": "rewrites".*' "$OUT/check.log" | cut -c1-700
wait $bg
echo "background exit status $?, $(date +%T)"
grep -o '"mode": "e2e_background".*' "$OUT/background.log" | cut -c1-2500
grep -i "compile\|error\|warning" "$OUT"/background/*.log 2>/dev/null | tail -n 8
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
