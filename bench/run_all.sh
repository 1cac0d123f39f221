#!/usr/bin/env bash
# Every benchmark in one call: the full set on a GPU, the quick set on a CPU-only machine.
#   bash bench/run_all.sh [extra bench_dream.py options]     (JSON lines in bench/out/)
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/daemon:$PWD/shared:$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
mkdir -p bench/out
out="bench/out/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    "$PY" bench/bench_dream.py --out "$out" "$@"
else
    "$PY" bench/bench_dream.py --quick --out "$out" "$@"
fi
echo "JSON lines: $out"
