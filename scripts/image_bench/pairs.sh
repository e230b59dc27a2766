#!/usr/bin/env bash
# The `shmpool images` benchmark of issue 12, in one command, from the repository root:
#
#   bash scripts/image_bench/pairs.sh [PAIRS=11] [FILES=300] [WORKERS=2]
#
# Makes FILES photo-like 1024x768 JPEGs once (gen.py; needs python3 with Pillow and NumPy:
# python3 -m pip install pillow numpy), builds the release CLI, then runs PAIRS rounds. Each
# round runs, for --chroma 420 and for --chroma auto, one pool/rayon pair (the order alternates
# from round to round), then --engine sequential at both settings and Python's Pool(WORKERS) +
# Pillow, all on the same files, pipeline resize=640x480 + blur=1.5, JPEG quality 90. Every run
# writes a JSON file under $DIR (default target/image-bench); summarize.py prints the medians,
# the per-pair pool/rayon ratios (median and quartiles) and per-stage times. Run it on a quiet
# machine: every other busy process shows up in the ratios. Each run's stderr goes to
# $RUNS/stderr.txt, not the terminal: with a progress bar drawn, the pool takes every result as
# it comes (waking this process per file), where rayon's engine draws nothing until the end.
#
# Environment, for a machine without a Rust toolchain (the lent 16-core machine):
#   B=path/to/shmpool     a built CLI, used as it is (no cargo build)
#   PIN=2,3               every run under `taskset -c 2,3` (2 cores of a larger machine)
#   BASELINES=N           sequential and Python only every Nth round (default 1: every round)
#   DIR=...               where inputs and runs go (default target/image-bench)
set -euo pipefail
PAIRS=${1:-11}
FILES=${2:-300}
WORKERS=${3:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${DIR:-target/image-bench}
IN=$DIR/in-$FILES
RUNS=$DIR/runs-$FILES
BASELINES=${BASELINES:-1}
PINNED=()
if [ -n "${PIN:-}" ]; then PINNED=(taskset -c "$PIN"); fi

if [ -z "${B:-}" ]; then
    B=target/release/shmpool
    cargo build --release -p shmpool-cli
fi
if [ "$(ls "$IN" 2>/dev/null | wc -l)" -ne "$FILES" ]; then
    rm -rf "$IN"
    python3 "$HERE/gen.py" "$IN" "$FILES"
fi
rm -rf "$RUNS"
mkdir -p "$RUNS"
OUT=$DIR/out

one() { # one LABEL ROUND ARGS...: a `shmpool images` run, its JSON kept
    local label=$1 round=$2
    shift 2
    rm -rf "$OUT"
    "${PINNED[@]}" "$B" images "$IN" --op resize=640x480 --op blur=1.5 --format jpeg --workers "$WORKERS" \
        --out "$OUT" --json "$@" > "$RUNS/$label-$round.json" 2>> "$RUNS/stderr.txt"
}

for r in $(seq 1 "$PAIRS"); do
    echo "round $r of $PAIRS: $(uptime)" | tee -a "$RUNS/load.txt"
    for chroma in 420 auto; do
        if [ $((r % 2)) -eq 1 ]; then order="pool rayon"; else order="rayon pool"; fi
        for e in $order; do one "$e-$chroma" "$r" --engine "$e" --chroma "$chroma"; done
    done
    if [ $(((r - 1) % BASELINES)) -eq 0 ]; then
        for chroma in 420 auto; do one "sequential-$chroma" "$r" --engine sequential --chroma "$chroma"; done
        rm -rf "$OUT"
        "${PINNED[@]}" python3 "$HERE/pool_pillow.py" "$IN" "$OUT" "$WORKERS" > "$RUNS/python-$r.json"
    fi
done
rm -rf "$OUT"
python3 "$HERE/summarize.py" "$RUNS" "$PAIRS"
