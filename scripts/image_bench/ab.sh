#!/usr/bin/env bash
# Contenders of `shmpool images` in alternating rounds, for diagnosis (two builds, or an engine
# against another), from the repository root:
#
#   bash scripts/image_bench/ab.sh ROUNDS INPUT_DIR LABEL:ENV:BINARY:ENGINE[:ARGS] ...
#
# e.g. bash scripts/image_bench/ab.sh 11 target/image-bench/in-300 \
#        new:X=1:target/release/shmpool:pool old:X=1:/tmp/shmpool-old:pool \
#        rayon:X=1:target/release/shmpool:rayon
#
# ENV is one VAR=VALUE set for that contender's runs (X=1 for none); ARGS, more options of
# its runs, space-separated (--chroma 420). Each round runs every
# contender once, in the given order in odd rounds and reversed in even ones; pipeline
# resize=640x480 + blur=1.5, JPEG q90, --workers 2. Prints per contender the median files/s and
# per-file stage times, and per round each contender's files/s over the LAST one's (median,
# quartiles, every round). stderr of the runs goes to $RUNS/stderr.txt, not the terminal.
set -euo pipefail
ROUNDS=$1
IN=$2
shift 2
RUNS=${RUNS:-target/image-bench/ab}
OUT=$RUNS/out
rm -rf "$RUNS"
mkdir -p "$RUNS"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order=("$@"); else
        order=()
        for ((i = $#; i > 0; i--)); do order+=("${!i}"); done
    fi
    echo "round $r of $ROUNDS: $(uptime)" | tee -a "$RUNS/load.txt"
    for spec in "${order[@]}"; do
        IFS=: read -r label var bin engine extra <<< "$spec"
        rm -rf "$OUT"
        env "$var" "$bin" images "$IN" --op resize=640x480 --op blur=1.5 --format jpeg \
            --workers 2 --engine "$engine" --out "$OUT" --json ${extra:-} \
            > "$RUNS/$label-$r.json" 2>> "$RUNS/stderr.txt"
    done
done
rm -rf "$OUT"
python3 - "$RUNS" "$ROUNDS" "$@" <<'EOF'
import json, statistics as st, sys
runs, rounds, labels = sys.argv[1], int(sys.argv[2]), [a.split(":")[0] for a in sys.argv[3:]]
data = {}
for label in labels:
    xs = [json.load(open(f"{runs}/{label}-{r}.json"))["totals"] for r in range(1, rounds + 1)]
    assert all(x["failed"] == 0 for x in xs), f"{label}: some files failed"
    data[label] = xs
    n = xs[0]["written"]
    stages = [st.median(x[k] / n for x in xs) for k in ("decode_ms", "process_ms", "encode_ms")]
    print(f"{label}: files/s median {st.median(x['files_per_s'] for x in xs):.1f}; "
          "decode / process / encode ms per file %.2f / %.2f / %.2f" % tuple(stages))
base = labels[-1]
for label in labels[:-1]:
    rs = [a["files_per_s"] / b["files_per_s"] for a, b in zip(data[label], data[base])]
    q = st.quantiles(rs, n=4) if len(rs) > 1 else rs * 3
    print(f"{label}/{base} per round: median {q[1]:.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}); "
          + " ".join(f"{x:.3f}" for x in rs))
EOF
