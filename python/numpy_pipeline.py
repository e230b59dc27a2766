"""NumPy in, NumPy out, with the work done in Rust worker processes on the same memory.

Creates a named (rows, cols) float64 array in shared memory, fills it with NumPy, runs the Rust
example `examples/numpy_pipeline.rs` on it by name (which standardizes every row, scales and
clips, in place, on a pool), then checks the array against the same computation in NumPy.

    cargo build --release --example numpy_pipeline
    python3 python/numpy_pipeline.py target/release/examples/numpy_pipeline --rows 2000 --cols 1000

Exits 0 when Rust's result matches NumPy's, 1 when it does not, and with the example's own
status when the example fails.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shmpool_shm  # noqa: E402


def reference(x, scale, clip):
    """What the Rust pipeline computes, in NumPy."""
    std = x.std(axis=1, keepdims=True)
    z = np.divide(x - x.mean(axis=1, keepdims=True), std, out=np.zeros_like(x), where=std > 0)
    return np.clip(z * scale, -clip, clip)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary", help="the built example, e.g. target/release/examples/numpy_pipeline")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--cols", type=int, default=1000)
    p.add_argument("--scale", type=float, default=1.5)
    p.add_argument("--clip", type=float, default=2.5)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()

    data = np.random.default_rng(7).normal(3.0, 2.0, (a.rows, a.cols))
    arr, seg = shmpool_shm.create(None, (a.rows, a.cols), "<f8")
    try:
        arr[:] = data
        run = subprocess.run([a.binary, seg.name, str(a.scale), str(a.clip), str(a.workers)],
                             timeout=300)
        if run.returncode != 0:
            print(f"the Rust example failed with status {run.returncode}", file=sys.stderr)
            return run.returncode or 1
        want = reference(data, a.scale, a.clip)
        err = float(np.max(np.abs(arr - want))) if arr.size else 0.0
        ok = np.allclose(arr, want, rtol=1e-9, atol=1e-9)
        print(f"{a.rows} x {a.cols}: max |rust - numpy| = {err:.3g}: {'OK' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    finally:
        del arr
        seg.close()
        seg.unlink()


if __name__ == "__main__":
    sys.exit(main())
