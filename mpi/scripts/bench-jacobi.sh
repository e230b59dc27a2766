#!/usr/bin/env bash
# The distributed Jacobi benchmark of docs/mpi.md: a SIZE grid, STEPS steps, each configuration
# run RUNS times, the median of its ms/step (total, and the halo exchange alone) printed;
# beside it the single-node example (examples/jacobi.rs: pool of 2, rayon 2 threads, sequential).
# Usage: bash mpi/scripts/bench-jacobi.sh [SIZE=2048] [STEPS=50] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2048}; steps=${2:-50}; runs=${3:-5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release -q -p shmpool-mpi --features mpi --example jacobi_mpi
cargo build --release -q -p shmpool --example jacobi
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "Jacobi ${n}x${n}, ${steps} steps, median of ${runs} runs, ms/step"
# ranks, workers per rank, and whether idle ranks yield the CPU instead of busy-polling
# (Open MPI's mpi_yield_when_idle: it matters when ranks plus workers outnumber the cores).
for cfg in "1 2 0" "2 1 0" "2 1 1" "1 1 0"; do
  set -- $cfg
  out=$(for _ in $(seq "$runs"); do
    mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle "$3" -np "$1" \
      target/release/examples/jacobi_mpi --size "${n}x${n}" --steps "$steps" --workers "$2" \
      | grep '^ms/step'
  done)
  total=$(awk '{print $3}' <<<"$out" | median)
  halo=$(awk '{print $7}' <<<"$out" | median)
  reduce=$(awk '{print $9}' <<<"$out" | median)
  echo "mpi $1 rank(s) x $2 worker(s), yield when idle $3: total $total, halo exchange $halo, allreduce $reduce"
done
out=$(for _ in $(seq "$runs"); do target/release/examples/jacobi "$n" "$steps" 0; done)
for who in "shmpool pool" "rayon" "sequential"; do
  ms=$(grep "^$who" <<<"$out" | awk '{print 1000 / $NF}' | median)
  echo "single node, $who: $ms"
done
