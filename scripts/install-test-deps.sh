#!/usr/bin/env bash
# What the test suite needs beyond the Rust toolchain, installed only where missing (idempotent):
# NumPy and Pillow (the Python interop and image oracle tests) and Open MPI with its headers plus
# libclang (shmpool-mpi's feature `mpi`: rsmpi finds MPI through `mpicc` and runs bindgen),
# and the real photographs the image oracle tests read (scripts/test-photos.py).
# Used by .ci/run and by the README's test command. Works as root or through sudo; fails with
# the fix when neither can install, and checks at the end that everything is there.
set -euo pipefail

as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  fi
fi

# apt-get install, as root; refreshes the package lists first (a fresh machine has none).
apt_install() {
  if [ "$(id -u)" != 0 ] && [ ${#as_root[@]} = 0 ]; then
    echo "install-test-deps: need root or sudo to run: apt-get install -y $*" >&2
    echo "  install these packages yourself, or rerun this script as root" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get; install the equivalents of: $*" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  ${as_root[@]+"${as_root[@]}"} apt-get update -qq
  ${as_root[@]+"${as_root[@]}"} apt-get install -y -qq "$@" >/dev/null
}

if ! python3 -c "import numpy, PIL" >/dev/null 2>&1; then
  # pip first (a virtualenv or pyenv Python); a distribution's Python refuses pip (PEP 668,
  # "externally-managed-environment"): then its own packages.
  if ! python3 -m pip install --quiet --disable-pip-version-check numpy pillow 2>/dev/null; then
    apt_install python3-numpy python3-pil
  fi
  if ! python3 -c "import numpy, PIL" >/dev/null 2>&1; then
    echo "install-test-deps: python3 still cannot import numpy and PIL; install them for" \
      "$(command -v python3)" >&2
    exit 1
  fi
fi

# Real photographs for the image oracle tests (scikit-image's bundled samples, public domain
# and CC0) into target/test-photos/: skipped when already there.
python3 "$(dirname "${BASH_SOURCE[0]}")/test-photos.py"

has_libclang() {
  ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1
}

if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1 || ! has_libclang; then
  apt_install openmpi-bin libopenmpi-dev libclang-dev
fi

# The MPI tests pass Open MPI's options (--oversubscribe); say so now rather than fail there.
mpirun_version=$(mpirun --version 2>&1 || true)
if [[ "$mpirun_version" != *"Open MPI"* ]]; then
  echo "install-test-deps: mpirun is not Open MPI (${mpirun_version%%$'\n'*});" \
    "the MPI tests need Open MPI's mpirun first on PATH (apt-get install openmpi-bin)" >&2
  exit 1
fi
