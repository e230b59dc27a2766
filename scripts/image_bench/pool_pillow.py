"""Python's multiprocessing.Pool + Pillow over the `shmpool images` benchmark's pipeline: read,
decode, resize to 640x480 (bilinear), Gaussian blur 1.5, JPEG quality 90 (Pillow's default
4:2:0 chroma), written to a temporary name and renamed. Prints one JSON line: files, seconds,
files_per_s, in_mb_per_s and per-file decode/process/encode milliseconds (each worker's own).
Usage: python3 pool_pillow.py IN_DIR OUT_DIR WORKERS"""
import io
import json
import os
import sys
import time
from multiprocessing import Pool

from PIL import Image, ImageFilter


def one(args):
    src, out = args
    t0 = time.perf_counter()
    with open(src, "rb") as f:
        data = f.read()
    im = Image.open(io.BytesIO(data))
    im.load()
    t1 = time.perf_counter()
    im = im.resize((640, 480), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1.5))
    t2 = time.perf_counter()
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    tmp = os.path.join(os.path.dirname(out), "." + os.path.basename(out) + ".part")
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.rename(tmp, out)
    t3 = time.perf_counter()
    return len(data), t1 - t0, t2 - t1, t3 - t2


if __name__ == "__main__":
    src, dst, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # Timed from before the listing, as `shmpool images` times itself.
    t = time.perf_counter()
    os.makedirs(dst, exist_ok=True)
    files = sorted(f for f in os.listdir(src) if f.endswith(".jpg"))
    jobs = [(os.path.join(src, f), os.path.join(dst, os.path.splitext(f)[0] + ".jpg")) for f in files]
    with Pool(workers) as p:
        res = p.map(one, jobs, chunksize=1)
    wall = time.perf_counter() - t
    n = len(res)
    print(json.dumps({
        "files": n,
        "seconds": wall,
        "files_per_s": n / wall,
        "in_mb_per_s": sum(r[0] for r in res) / 1e6 / wall,
        "decode_ms": sum(r[1] for r in res) / n * 1e3,
        "process_ms": sum(r[2] for r in res) / n * 1e3,
        "encode_ms": sum(r[3] for r in res) / n * 1e3,
    }))
