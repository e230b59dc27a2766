"""A NumPy image batch processed in place by Rust worker processes, checked against Pillow.

Creates a named (n, h, w, 3) uint8 array in shared memory holding photo-like images, asks the
Rust example `examples/image_batch.rs` for the shape its pipeline makes of them, creates the
named output array of that shape, runs the pipeline in Rust (a pool of worker processes reads
the one array and writes the other), then checks every output image against the same pipeline
in Pillow and NumPy, within the tolerances of `kernels/tests/oracle_imaging.rs` (max abs
difference on uint8: 0 for crop, flip and rotate, 1 for resize, brightness and grayscale,
added up over the pipeline). Both arrays are unlinked whatever happens.

    cargo build --release --example image_batch
    python3 python/image_batch.py target/release/examples/image_batch --pipeline "resize=40x30; flip=h"

Exits 0 when every image matches, 1 when one does not, 3 when the pipeline needs Pillow and it
is not installed (`python3 -m pip install pillow`), and with the example's status when it fails.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shmpool_shm  # noqa: E402


class NeedsPillow(Exception):
    pass


def photos(n, h, w, seed=7):
    """n photo-like RGB images: gradients, a hard-edged disc, stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((n, h, w, 3), np.uint8)
    for k in range(n):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, max(3, min(h, w) / 2))
        disc = ((y - cy) ** 2 + (x - cx) ** 2 < r * r) * 90.0
        stripes = (np.floor(x / 4 + k) % 2) * 30.0
        for ch in range(3):
            base = 60 + 120 * (x / max(w - 1, 1)) * (ch + 1) / 3 + 50 * (y / max(h - 1, 1))
            out[k, :, :, ch] = np.clip(base + disc + stripes + rng.normal(0, 8, (h, w)), 0, 255)
    return out


def pillow():
    try:
        from PIL import Image
    except ImportError:
        raise NeedsPillow() from None
    return Image


def reference(img, ops):
    """The pipeline on one (h, w, c) uint8 image in Pillow and NumPy; returns (image, tolerance)."""
    tol = 0
    for op in ops:
        name, _, value = op.partition("=")
        name, value = name.strip(), value.strip()
        if name == "resize":
            size, _, flt = value.partition(",")
            w, h = (int(v) for v in size.lower().split("x"))
            Image = pillow()
            f = Image.Resampling.LANCZOS if flt.strip().startswith("lanczos") else Image.Resampling.BILINEAR
            gray = img.shape[2] == 1
            im = Image.fromarray(img[:, :, 0] if gray else img)
            img = np.asarray(im.resize((w, h), f))
            img = img[:, :, None] if gray else img
            tol += 1
        elif name == "flip":
            img = img[:, ::-1] if value in ("h", "horizontal") else img[::-1]
        elif name == "rotate":
            img = np.rot90(img, k=-(int(value) // 90))  # clockwise
        elif name == "crop":
            x, y, w, h = (int(v) for v in value.split(","))
            img = img[y:y + h, x:x + w]
        elif name == "brightness":
            p = img.astype(np.float32) / np.float32(255)
            img = np.round(np.clip(p + np.float32(value), 0, 1) * 255).astype(np.uint8)
            tol += 1
        elif name in ("grayscale", "greyscale", "gray", "grey"):
            if img.shape[2] >= 3:
                f = img.astype(np.float32)
                luma = 0.2126 * f[:, :, 0] + 0.7152 * f[:, :, 1] + 0.0722 * f[:, :, 2]
                img = np.round(np.clip(luma, 0, 255)).astype(np.uint8)[:, :, None]
                tol += 1
        else:
            raise SystemExit(f"no reference here for `{op}`: give resize, flip, rotate, crop, "
                             "brightness or grayscale")
    return np.ascontiguousarray(img), tol


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary", help="the built example, e.g. target/release/examples/image_batch")
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--h", type=int, default=61)
    p.add_argument("--w", type=int, default=97)
    p.add_argument("--pipeline", default="resize=40x30; flip=h; rotate=90")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    ops = [o.strip() for o in a.pipeline.replace("\n", ";").split(";") if o.strip()]

    data = photos(a.n, a.h, a.w)
    try:
        want = [reference(img, ops) for img in data]
    except NeedsPillow:
        print("skipped: the pipeline needs Pillow (python3 -m pip install pillow)")
        return 3
    segs = []
    try:
        arr, seg = shmpool_shm.create(None, data.shape, "|u1")
        segs.append(seg)
        arr[:] = data
        print(f"arrays: {seg.name}", flush=True)
        shape = subprocess.run([a.binary, "shape", seg.name, a.pipeline], capture_output=True,
                               text=True, timeout=60)
        if shape.returncode != 0:
            sys.stderr.write(shape.stderr)
            return shape.returncode or 1
        dims = tuple(int(v) for v in shape.stdout.split())
        out, out_seg = shmpool_shm.create(None, dims, "|u1")
        segs.append(out_seg)
        print(f"arrays: {out_seg.name}", flush=True)
        run = subprocess.run([a.binary, "run", seg.name, out_seg.name, a.pipeline,
                              str(a.workers)], timeout=300)
        if run.returncode != 0:
            print(f"the Rust example failed with status {run.returncode}", file=sys.stderr)
            return run.returncode or 1
        if not np.array_equal(arr, data):
            print("MISMATCH: the input array changed", file=sys.stderr)
            return 1
        worst, ok = 0, True
        for k, (img, tol) in enumerate(want):
            if out[k].shape != img.shape:
                print(f"image {k}: Rust made {out[k].shape}, the reference {img.shape}: MISMATCH")
                return 1
            d = int(np.max(np.abs(out[k].astype(np.int16) - img.astype(np.int16))))
            worst = max(worst, d)
            ok = ok and d <= tol
        tol = max(t for _, t in want)
        print(f"{data.shape} -> {dims} through `{a.pipeline}`: max |rust - reference| = {worst} "
              f"(tolerance {tol}): {'OK' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    finally:
        for s in segs:
            s.close()
            s.unlink()


if __name__ == "__main__":
    sys.exit(main())
