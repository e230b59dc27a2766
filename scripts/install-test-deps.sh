#!/usr/bin/env bash
# What the test suite needs beyond the Rust toolchain, installed only where missing (idempotent):
# NumPy and Pillow (the Python interop and image oracle tests) and an MPI with its headers plus
# libclang (shmpool-mpi's feature `mpi`: rsmpi finds MPI through `mpicc` and runs bindgen).
# Used by .ci/run and by the README's test command.
set -euo pipefail

if ! python3 -c "import numpy, PIL" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check numpy pillow 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
fi

if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1 \
  || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
fi
