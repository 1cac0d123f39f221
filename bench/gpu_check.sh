#!/usr/bin/env bash
# One call on a lent GPU machine (at most ~9.5 min; give the run call timeout_s 590): (1) the
# fast path's correctness on CUDA, (2) the full benchmark with DEEPDREAM_COMPILE's rows last,
# (3) the step probe (per-octave step times with and without the rewrites, kernel profiles,
# host share).  Each part has its own time limit
# and log, so one failing part does not lose the others; full logs and JSON lines go to
# $OUT, a summary to stdout.
#   OUT=/tmp/out bash bench/gpu_check.sh
# QUICK=1 (about 3.5 minutes, timeout_s 270, for a nearly spent device budget): the checks
# without compile, GoogLeNet and VGG16 without the compiled pass and the 4096x4096 case, and
# the first try at 1024x768 in a fresh and in a restarted daemon (its warm-up for recent jobs).
# AHEAD=1: DEEPDREAM_COMPILE=ahead's check and benchmark only (below); STEMS=1 and POOLS=1
# put session 11's probes (the stem's channels; planar max pools and VGG16's compiled step)
# before AHEAD's benchmark; VGG=1 puts VGG16's compiled benchmark there, with and without
# inductor's coordinate-descent tuning (session 14: VGG=1 AHEAD=1 took 483 s on an H100).
# VGG16's compiled step per octave size and its kernel profiles: probe_gpu_step.py --vgg.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/deepdream-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
# the GPU image's Python has no pyzmq: the daemon and client need it.  .whl/ (ignored by
# git; pass it in the run's carry) is made here with: python -m pip download pyzmq
#   --only-binary :all: --python-version 3.12 --platform manylinux_2_28_x86_64 --no-deps -d .whl
if ! "$PY" -c "import zmq" 2>/dev/null; then
    "$PY" -m pip install --quiet --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1 \
        || echo "pip install of .whl/ failed (see pip.log): the end-to-end case will be skipped"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/daemon:$PWD/shared:$PWD${PYTHONPATH:+:$PYTHONPATH}"

{ nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm,power.draw \
      --format=csv; "$PY" -c "import torch; print('torch', torch.__version__)"; } \
    >"$OUT/gpu.txt" 2>&1 || true

if [ -n "${VGG:-}" ]; then
    # VGG=1 (about 4 minutes; with AHEAD=1 about 9.5, timeout_s 590): VGG16 relu4_3 compiled
    # (DEEPDREAM_COMPILE=1 rows, fresh inductor cache, 5 runs), then the same with inductor's
    # coordinate-descent tuning of its Triton kernels, each in a cache of its own.
    for v in default cdt; do
        echo "== vgg16 compiled: $v"
        rm -rf "/tmp/inductor-$v"
        cdt=0; [ "$v" = cdt ] && cdt=1
        env TORCHINDUCTOR_CACHE_DIR="/tmp/inductor-$v" TORCHINDUCTOR_COORDINATE_DESCENT_TUNING=$cdt \
            timeout 170 "$PY" bench/bench_dream.py --cases vgg16 --compile --repeats 5 \
            --out "$OUT/vgg_$v.jsonl" >"$OUT/vgg_$v.log" 2>&1
        echo "vgg $v exit status $? after ${SECONDS}s"
        grep '"error"' "$OUT/vgg_$v.log" | cut -c1-300
        sed -n '/^$/,$p' "$OUT/vgg_$v.log" | tail -n 8
    done
fi

if [ -n "${POOLS:-}" ]; then
    # POOLS=1 (about 4 minutes; with AHEAD=1 about 9 on an H100, timeout_s 590): max pools
    # on planar memory in the uncompiled graphs; the compiled step with its own ops compiled
    # (the engine since session 11) and eager; VGG16's compiled step with planar pools and
    # with coordinate-descent tuning, and its kernel profile: probe_gpu_step.py --pools.
    echo "== pools"
    timeout 270 "$PY" bench/probe_gpu_step.py --pools >"$OUT/pools.log" 2>&1
    echo "pools exit status $?"
    grep -o '"part": "[^"]*"[^{]*"graph_ms_per_step": [0-9.]*' "$OUT/pools.log" \
        | sed 's/"prepare": "[^"]*", //'
    grep -o '"error": "[^"]*"' "$OUT/pools.log"
fi

if [ -n "${STEMS:-}" ]; then
    # STEMS=1 (with AHEAD=1: about 9 minutes, timeout_s 590): first conv layers reading
    # a multiple of 8 channels (probe_gpu_step.py --stems), the checks the stem's new form
    # must pass, then AHEAD's benchmark (its check skipped), then the compiled step with the
    # plain stem and with the space-to-depth one.
    echo "== stems: step times"
    timeout 120 "$PY" bench/probe_gpu_step.py --stems --no-compile >"$OUT/stems.log" 2>&1
    echo "stems exit status $?"
    grep -o '"part": "[^"]*"[^{]*"graph_ms_per_step": [0-9.]*' "$OUT/stems.log" \
        | sed 's/"prepare": "[^"]*", //'
    grep -o '"error": "[^"]*"' "$OUT/stems.log"
    echo "== stems: checks"
    timeout 100 "$PY" bench/check_fastpath_cuda.py --only graph1,engine,rewrites \
        --out "$OUT/check.jsonl" >"$OUT/check.log" 2>&1
    echo "checks exit status $?"
    grep -A8 "^fast-path checks" "$OUT/check.log" || tail -n 15 "$OUT/check.log"
fi

if [ -z "${AHEAD:-}" ] && [ -n "${STEMS:-}${POOLS:-}${VGG:-}" ]; then
    cat "$OUT/gpu.txt"
    exit 0  # (a probe alone: not the full run after it)
fi

if [ -n "${AHEAD:-}" ]; then
    # AHEAD=1 (about 7 minutes, timeout_s 540): DEEPDREAM_COMPILE=ahead only.  Its check (a
    # child process compiles two octave sizes; not with STEMS or POOLS) and GoogLeNet's
    # benchmark with an e2e_ahead row, timed once that daemon's child has compiled and it
    # has captured its four sizes.  After a probe, the benchmark gets what is left of the
    # call's LIMIT_S (default 575 s).
    if [ -z "${STEMS:-}${POOLS:-}${VGG:-}" ]; then
        echo "== compile ahead: check"
        timeout 200 "$PY" bench/check_fastpath_cuda.py --only ahead \
            --out "$OUT/check_ahead.jsonl" >"$OUT/check_ahead.log" 2>&1
        echo "check exit status $?"
        grep -A3 "^fast-path checks" "$OUT/check_ahead.log" || tail -n 15 "$OUT/check_ahead.log"
        grep -o '"child_s".*' "$OUT/check_ahead.log"
    fi
    echo "== compile ahead: benchmark"
    left=$((${LIMIT_S:-575} - SECONDS))
    timeout "$((left > 330 ? 330 : left))" "$PY" bench/bench_dream.py --cases googlenet \
        --ahead 220 --repeats 5 \
        --out "$OUT/bench_ahead.jsonl" >"$OUT/bench_ahead.log" 2>&1
    echo "bench exit status $?"
    grep '"error"\|e2e_ahead_wait\|_after_idle' "$OUT/bench_ahead.log" | cut -c1-600
    sed -n '/^$/,$p' "$OUT/bench_ahead.log" | tail -n 10
    left=$((${LIMIT_S:-575} - SECONDS))  # (the call's own limit: what is left of it goes here)
    if [ -n "${STEMS:-}" ] && [ "$left" -ge 30 ]; then
        echo "== stems: compiled step, space-to-depth stem (now) and plain stem (before)"
        timeout "$((left > 140 ? 140 : left))" "$PY" bench/probe_gpu_step.py \
            --stems --compile-only >"$OUT/stems_compiled.log" 2>&1
        echo "compiled stems exit status $?"
        grep -o '"part": "[^"]*"[^{]*"graph_ms_per_step": [0-9.]*' "$OUT/stems_compiled.log" \
            | sed 's/"prepare": "[^"]*", //'
        grep -o '"error": "[^"]*"' "$OUT/stems_compiled.log"
    fi
    cat "$OUT/gpu.txt"
    exit 0
fi

echo "== 1. fast-path checks (CUDA graph vs eager, bf16 vs fp32)"
if [ -n "${QUICK:-}" ]; then
    checks=(--only roll,graph1,tiled,engine,warm_up,pixels,rewrites)
    bench=(--cases googlenet,vgg16 --first-tries)
else  # (ahead has its own run: AHEAD=1)
    checks=(--only roll,graph1,graph10,reuse,tiled,bf16,engine,warm_up,pixels,rewrites,compile)
    bench=(--compile)
fi
timeout 150 "$PY" bench/check_fastpath_cuda.py "${checks[@]}" --out "$OUT/check.jsonl" \
    >"$OUT/check.log" 2>&1
echo "checks exit status $?"
grep -A20 "^fast-path checks" "$OUT/check.log" || tail -n 15 "$OUT/check.log"
grep -o '"check": "pixels".*_ms": [0-9.]*' "$OUT/check.log"

echo "== 2. benchmark (engine, end to end, reference loop, 4096x4096 tiled, compiled)"
timeout 330 "$PY" bench/bench_dream.py "${bench[@]}" --repeats 3 --out "$OUT/bench.jsonl" \
    >"$OUT/bench.log" 2>&1
echo "bench exit status $?"
grep '"error"' "$OUT/bench.log" | cut -c1-300
sed -n '/^$/,$p' "$OUT/bench.log" | tail -n 16

echo "== 3. step probe"
timeout 90 "$PY" bench/probe_gpu_step.py --short --no-compile --out "$OUT/probe.jsonl" \
    >"$OUT/probe.log" 2>&1
echo "probe exit status $?"
grep -o '"part": "[^"]*"[^{]*"graph_ms_per_step": [0-9.]*' "$OUT/probe.log"
grep -o '"part": "fused error[^}]*' "$OUT/probe.log"
grep -o '"part": "profile googlenet engine small"[^[]*' "$OUT/probe.log"

echo "== card"
cat "$OUT/gpu.txt"
