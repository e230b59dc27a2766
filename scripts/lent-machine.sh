#!/usr/bin/env bash
# Everything measured on a lent many-core machine, in one command, from the repository root,
# with a CLI built elsewhere (the lent machine has no Rust toolchain; it needs python3 with
# NumPy and Pillow):
#
#   OUT=results bash scripts/lent-machine.sh target/release/shmpool
#
# 1. the 1-16 worker scaling sweep of the main job (scripts/scaling-sweep.sh);
# 2. the images benchmark of issue 12 on 2 cores of the machine (taskset), pool/rayon pairs;
# 3. the images benchmark at 4, 8 and 16 workers, unpinned.
# Text summaries go to $OUT as they are made (a run cut short keeps what was done); the runs'
# JSON files go to $OUT/image-runs.tar.gz at the end. Env: SWEEP_ROUNDS (9), PAIRS2 (16),
# PAIRS_N (6), FILES (300), WIDE ("4 8 16"), PIN2 (the 2 CPUs: "2,3").
set -u
BIN=${1:-target/release/shmpool}
OUT=${OUT:-.}
FILES=${FILES:-300}
DIR=${DIR:-/tmp/image-bench}
mkdir -p "$OUT" "$DIR"
HERE=$(cd "$(dirname "$0")" && pwd)
stamp() { echo "$(date -u +%T) $*" >> "$OUT/timeline.txt"; }

stamp "sweep"
mkdir -p "$OUT/sweep"
ROUNDS=${SWEEP_ROUNDS:-9} LENS="33554432 4194304 1048576" OUT="$OUT/sweep" \
    timeout 200 bash "$HERE/scaling-sweep.sh" "$BIN"

stamp "generating $FILES images"
timeout 120 python3 "$HERE/image_bench/gen.py" "$DIR/in-$FILES" "$FILES"

PIN=${PIN2-2,3}
command -v taskset > /dev/null || PIN=
stamp "images, 2 workers pinned to CPUs ${PIN:-none}"
B=$BIN PIN=$PIN BASELINES=4 DIR=$DIR timeout 300 \
    bash "$HERE/image_bench/pairs.sh" "${PAIRS2:-16}" "$FILES" 2 > "$OUT/images-w2-pinned.txt" 2>&1
mv "$DIR/runs-$FILES" "$DIR/runs-w2-pinned"

for w in ${WIDE:-4 8 16}; do
    stamp "images, $w workers"
    echo "### $w workers" >> "$OUT/images-wide.txt"
    B=$BIN BASELINES=3 DIR=$DIR timeout 150 \
        bash "$HERE/image_bench/pairs.sh" "${PAIRS_N:-6}" "$FILES" "$w" >> "$OUT/images-wide.txt" 2>&1
    mv "$DIR/runs-$FILES" "$DIR/runs-w$w"
done
stamp "done"
tar -C "$DIR" -czf "$OUT/image-runs.tar.gz" --exclude "in-*" --exclude out .
