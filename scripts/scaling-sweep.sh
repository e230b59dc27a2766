#!/usr/bin/env bash
# Worker-scaling sweep: shmpool vs rayon vs sequential (and Python's Pool over shared_memory when
# NumPy is importable) at 1..16 workers, on the machine it runs on. Writes text to ${OUT:-.}.
# Usage: scripts/scaling-sweep.sh [path/to/shmpool]   (build it with cargo build --release -p shmpool-cli)
# Env: WORKERS ("1 2 4 8 12 16"), LENS ("33554432 1048576"), ROUNDS (9), OUT (.)
set -u
BIN=${1:-target/release/shmpool}
OUT=${OUT:-.}
WORKERS=${WORKERS:-"1 2 4 8 12 16"}
LENS=${LENS:-"33554432 1048576"}
ROUNDS=${ROUNDS:-9}
{
  echo "## machine"; date -u; uname -r; nproc
  grep -m1 "model name" /proc/cpuinfo; free -g | head -2; cat /proc/loadavg
  df -h /dev/shm | tail -1; python3 --version 2>&1
  # Which cores share a physical core, the caches, the vector extensions (a VM may hide AVX2)
  # and transparent huge pages: what per-core speed and pinning results depend on.
  lscpu 2>&1; lscpu -e 2>&1
  cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/shmem_enabled
} > "$OUT/machine.txt" 2>&1
for len in $LENS; do
  for w in $WORKERS; do
    echo "### len=$len workers=$w"
    timeout 120 "$BIN" run --len "$len" --workers "$w" --rounds "$ROUNDS" 2>&1
  done
done > "$OUT/shmpool.txt"
if python3 -c "import numpy" 2>/dev/null; then
  for w in $WORKERS; do
    echo "### python workers=$w"
    timeout 120 python3 benches/python_pool.py --workers "$w" --shm-only 2>&1
  done > "$OUT/python.txt"
else
  echo "numpy not importable: $(python3 -c 'import numpy' 2>&1 | tail -1)" > "$OUT/python.txt"
fi
