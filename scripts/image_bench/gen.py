"""Photo-like 1024x768 JPEGs for the `shmpool images` benchmark: gradients, discs with hard
edges, stripes and noise, seeded, so every run makes the same files (the first 50 are the
50 of the earlier runs in docs/images.md). Usage: python3 gen.py OUT_DIR [COUNT=300]"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
y, x = np.mgrid[0:768, 0:1024].astype(np.float32)
for i in range(count):
    a, b, c = rng.uniform(0.2, 1.0, 3)
    base = np.stack([
        120 + 100 * np.sin(x / (40 + 30 * a) + i) * np.cos(y / (50 + 40 * b)),
        60 + 150 * (x / 1024) * c + 40 * (y / 768),
        200 - 150 * (y / 768) + 30 * np.sin((x + y) / 25),
    ], axis=-1)
    base += rng.normal(0, 12, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(8):
        cx, cy, r = rng.integers(0, 1024), rng.integers(0, 768), rng.integers(20, 160)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    img.save(f"{out}/photo{i:03d}.jpg", quality=90)
