"""The Python contenders of `shmpool bench`, served over a line-oriented JSON protocol.

The harness (cli/src/bench/python.rs) writes this file to a scratch directory, starts it with the
chosen interpreter, and speaks the protocol documented in cli/src/bench/bridge.rs: one JSON
request per line on stdin, one JSON answer per line on stdout. Each cell (contender x workload x
workers) is set up once, checked once from fresh data (its digest is compared with the
sequential Rust result), then run once per round; the child times each run itself.

Contenders: python-shm (multiprocessing.Pool over shared_memory, NumPy on each chunk in place),
python-pool (Pool pickling chunks or tasks), numpy (one process), joblib (loky backend), pebble
(ProcessPool). A missing module makes a contender answer {"skip": reason}; a workload that does
not fit a contender answers {"na": reason}. Nothing here installs anything.
"""

import json
import multiprocessing as mp
import os
import sys
import time

try:
    import numpy as np
    NUMPY_ERR = None
except Exception as e:  # noqa: BLE001 - any import failure means "skipped"
    np = None
    NUMPY_ERR = f"numpy is not importable ({type(e).__name__}: {e}); python3 -m pip install numpy"

STEPS = 10
SIDES = [64, 128, 256, 512, 1024, 2048, 4096]
COEF = [0.5 * (-0.5) ** k for k in range(17)]
ARRAY = ("inplace", "sum", "dot", "poly", "stencil", "pipeline", "pipeline-3jobs", "matmul")
SCALAR = ("sum", "dot")
QUAD = [0.25, -0.5, 1.0]
START = {"start-fork": "fork", "start-forkserver": "forkserver", "start-spawn": "spawn"}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def module_version(name):
    try:
        mod = __import__(name)
        return getattr(mod, "__version__", "unknown"), None
    except Exception as e:  # noqa: BLE001
        return None, f"{name} is not importable ({type(e).__name__}: {e}); python3 -m pip install {name}"


# ---- kernels (module level, so pool workers can unpickle references to them) ----

def tiny(x):
    return x + 1


def init_array(n):
    return (np.arange(n, dtype=np.int64) % 1000).astype(np.float64) * 0.001


def second_array(n):
    """dot's second operand and matmul's B, as the Rust workloads make them."""
    return (np.arange(n, dtype=np.int64) % 997).astype(np.float64) * 0.001


def digest(a):
    n = len(a)
    d = [float(a.sum())]
    if n:
        d += [float(a[i]) for i in (0, n // 4, n // 2, 3 * n // 4, n - 1)]
    return d


def scale_add(seg):
    seg *= 1.0001
    seg += 0.5


def poly(seg):
    y = np.full_like(seg, COEF[16])
    for c in reversed(COEF[:16]):
        y *= seg
        y += c
    seg[:] = y


def pipeline(seg):
    """The three stages of the pipeline workloads, in place."""
    scale_add(seg)
    np.clip(seg, 0.0, 1.0, out=seg)
    y = np.full_like(seg, QUAD[0])
    for c in QUAD[1:]:
        y *= seg
        y += c
    seg[:] = y


def side_for(n):
    fits = [s for s in SIDES if s * s <= n]
    return max(fits) if fits else SIDES[0]


def jacobi_rows(src, dst, lo, hi):
    """Rows lo..hi of one Jacobi step from src to dst (2-D views); the boundary is copied."""
    side = src.shape[0]
    dst[lo:hi] = src[lo:hi]
    r0, r1 = max(lo, 1), min(hi, side - 1)
    if r0 < r1:
        dst[r0:r1, 1:-1] = ((src[r0 - 1:r1 - 1, 1:-1] + src[r0 + 1:r1 + 1, 1:-1])
                            + (src[r0:r1, :-2] + src[r0:r1, 2:])) * 0.25


def chunks(n, parts):
    step = max(1, -(-n // parts))
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


# ---- pool workers over shared_memory ----

_shm = None


def _attach(name):
    global _shm
    from multiprocessing import shared_memory
    _shm = shared_memory.SharedMemory(name=name)


def _view(n):
    return np.ndarray((n,), dtype=np.float64, buffer=_shm.buf)


def _shm_task(args):
    kind, lo, hi, n = args
    a = _view(n)
    if kind == "inplace":
        scale_add(a[lo:hi])
    elif kind == "poly":
        poly(a[lo:hi])
    elif kind in ("pipeline", "pipeline-3jobs"):
        pipeline(a[lo:hi])
    elif kind == "sum":
        return float(a[lo:hi].sum())
    elif kind == "dot":
        both = _view(2 * n)
        return float(np.dot(both[lo:hi], both[n + lo:n + hi]))
    return None


def _shm_matmul(args):
    lo, hi, side = args
    cells = side * side
    abc = _view(3 * cells)
    a, b = abc[:cells].reshape(side, side), abc[cells:2 * cells].reshape(side, side)
    c = abc[2 * cells:].reshape(side, side)
    np.matmul(a[lo:hi], b, out=c[lo:hi])


def _shm_stencil(args):
    parity, lo, hi, side = args
    both = _view(2 * side * side)
    grids = both[: side * side].reshape(side, side), both[side * side:].reshape(side, side)
    jacobi_rows(grids[parity], grids[1 - parity], lo, hi)


def _pickled_task(args):
    kind, seg = args
    if kind == "sum":
        return float(seg.sum())
    if not seg.flags.writeable:
        seg = seg.copy()
    {"inplace": scale_add, "poly": poly}.get(kind, pipeline)(seg)
    return seg


def _image(i):
    """Image i of the images workload, resized to 128x128 (bilinear) and blurred (Gaussian,
    sigma 1) by Pillow; returns the sum of its pixels. The source is the Rust workload's
    triangle wave, in integers, so both start from the same bytes."""
    from PIL import Image, ImageFilter
    y, x, c = np.ogrid[0:256, 0:256, 0:3]
    v = (2 * x + y + 40 * c + 13 * i) % 510
    px = np.where(v < 255, v, 510 - v).astype(np.uint8)
    img = Image.fromarray(px, "RGB").resize((128, 128), Image.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(1.0))
    return int(np.asarray(img, dtype=np.uint64).sum())


class ImageCell:
    """images for python-pool: Pool.map over the image indices, one task each."""

    def __init__(self, contender, workload, size, workers):
        self.n, self.workers = size, workers
        self.pool = None

    def setup(self):
        self.pool = mp.get_context("fork").Pool(self.workers)

    def once(self):
        return self.pool.map(_image, range(self.n), 1)

    def check(self):
        sums = self.once()
        n = len(sums)
        d = [float(sum(sums))]
        if n:
            d += [float(sums[i]) for i in (0, n // 4, n // 2, 3 * n // 4, n - 1)]
        return d

    def run(self):
        t = time.perf_counter()
        self.once()
        return time.perf_counter() - t

    def close(self):
        self.pool.terminate()
        self.pool.join()


def _produce(q, ctl):
    while True:
        n = ctl.get()
        if n is None:
            return
        for i in range(n):
            q.put(i)


# ---- cells ----

class Cell:
    """One contender x workload x workers. check() -> digest, run() -> seconds."""

    def __init__(self, contender, workload, size, workers):
        self.c, self.w, self.n, self.workers = contender, workload, size, workers
        self.pool = None
        self.shm = None
        self.extra = None

    # timing wrapper
    def run(self):
        t = time.perf_counter()
        self.once()
        return time.perf_counter() - t

    def close(self):
        if self.pool is not None:
            if hasattr(self.pool, "terminate"):
                self.pool.terminate()
                self.pool.join()
            else:
                self.pool.stop()
                self.pool.join()
        if self.extra is not None:
            ctl, proc = self.extra
            ctl.put(None)
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if self.shm is not None:
            self.shm.close()
            self.shm.unlink()


class ArrayCell(Cell):
    """inplace, sum, poly, stencil for python-shm, python-pool, numpy, joblib."""

    def setup(self):
        if self.w == "stencil":
            self.side = side_for(self.n)
            self.cells = self.side * self.side
        elif self.w == "matmul":
            self.side = self.n
            self.cells = self.side * self.side
        else:
            self.cells = self.n
        copies = {"stencil": 2, "dot": 2, "matmul": 3}.get(self.w, 1)
        total = copies * self.cells
        if self.c == "python-shm":
            from multiprocessing import shared_memory
            self.shm = shared_memory.SharedMemory(create=True, size=max(8, total * 8))
            self.buf = np.ndarray((total,), dtype=np.float64, buffer=self.shm.buf)
            self.pool = mp.get_context("fork").Pool(self.workers, _attach, (self.shm.name,))
        else:
            self.buf = np.zeros(total)
            if self.c == "python-pool":
                self.pool = mp.get_context("fork").Pool(self.workers)
            elif self.c == "joblib":
                import joblib
                self.pool = None
                self.joblib = joblib.Parallel(n_jobs=self.workers, backend="loky", max_nbytes=None)
        self.parity = 0

    def reset(self):
        self.buf[: self.cells] = init_array(self.cells)
        if self.w in ("dot", "matmul"):
            self.buf[self.cells: 2 * self.cells] = second_array(self.cells)
        self.parity = 0

    def result_view(self):
        lo = (2 if self.w == "matmul" else self.parity) * self.cells
        return self.buf[lo: lo + self.cells]

    def check(self):
        self.reset()
        r = self.once()
        return [r] if self.w in SCALAR else digest(self.result_view())

    def once(self):
        if self.w == "stencil":
            for _ in range(STEPS):
                self.step()
                self.parity = 1 - self.parity
            return None
        a = self.buf
        if self.w == "matmul":
            side, cells = self.side, self.cells
            if self.c == "numpy":
                mat = a[:cells].reshape(side, side), a[cells:2 * cells].reshape(side, side)
                a[2 * cells:] = (mat[0] @ mat[1]).reshape(-1)
            else:  # python-shm
                parts = chunks(side, 4 * self.workers)
                self.pool.map(_shm_matmul, [(lo, hi, side) for lo, hi in parts])
            return None
        parts = chunks(self.n, 4 * self.workers)
        if self.c == "numpy":
            if self.w == "sum":
                return float(a.sum())
            if self.w == "dot":
                return float(np.dot(a[: self.n], a[self.n:]))
            {"inplace": scale_add, "poly": poly}.get(self.w, pipeline)(a)
            return None
        if self.c == "python-shm":
            out = self.pool.map(_shm_task, [(self.w, lo, hi, self.n) for lo, hi in parts])
            return float(sum(out)) if self.w in SCALAR else None
        tasks = [(self.w, a[lo:hi]) for lo, hi in parts]
        if self.c == "python-pool":
            out = self.pool.map(_pickled_task, tasks)
        else:
            import joblib
            out = self.joblib(joblib.delayed(_pickled_task)(t) for t in tasks)
        if self.w == "sum":
            return float(sum(out))
        for (lo, hi), seg in zip(parts, out):
            a[lo:hi] = seg
        return None

    def step(self):
        side = self.side
        grids = (self.buf[: self.cells].reshape(side, side), self.buf[self.cells:].reshape(side, side))
        if self.c == "numpy":
            jacobi_rows(grids[self.parity], grids[1 - self.parity], 0, side)
        else:  # python-shm
            parts = chunks(side, 4 * self.workers)
            self.pool.map(_shm_stencil, [(self.parity, lo, hi, side) for lo, hi in parts])


class TaskCell(Cell):
    """tiny, tiny-chunk1, apply, strings, queue, start-* for python-pool, joblib, pebble."""

    def setup(self):
        w = self.w
        if w == "strings":
            self.items = [f"/data/file-{i}.csv" for i in range(self.n)]
        else:
            self.items = list(range(self.n))
        if w in START:
            return
        if w == "queue":
            ctx = mp.get_context("fork")
            self.q, ctl = ctx.Queue(), ctx.Queue()
            proc = ctx.Process(target=_produce, args=(self.q, ctl), daemon=True)
            proc.start()
            self.extra = (ctl, proc)
            return
        if self.c == "python-pool":
            self.pool = mp.get_context("fork").Pool(self.workers)
        elif self.c == "pebble":
            import pebble
            self.pool = pebble.ProcessPool(max_workers=self.workers, context=mp.get_context("fork"))
        elif self.c == "joblib":
            import joblib
            self.joblib = joblib.Parallel(n_jobs=self.workers, backend="loky", max_nbytes=None)

    def check(self):
        return [float(self.once())]

    def once(self):
        w, c, items = self.w, self.c, self.items
        fn = len if w == "strings" else tiny
        if w in START:
            with mp.get_context(START[w]).Pool(self.workers) as p:
                s = sum(p.map(tiny, items))
                p.close()
                p.join()
            return s
        if w == "queue":
            self.extra[0].put(self.n)
            return sum(self.q.get() for _ in range(self.n))
        if w == "apply":
            if c == "pebble":
                return sum(self.pool.schedule(tiny, args=(i,)).result() for i in items)
            return sum(self.pool.apply(tiny, (i,)) for i in items)
        chunksize = 1 if w == "tiny-chunk1" else None
        if c == "python-pool":
            return sum(self.pool.map(fn, items, chunksize))
        if c == "pebble":
            return sum(self.pool.map(fn, items, chunksize=chunksize or max(1, len(items) // (4 * self.workers))).result())
        import joblib
        return sum(self.joblib(joblib.delayed(fn)(x) for x in items))


def fits(contender, workload):
    """None if the workload fits the contender, else why not."""
    table = {
        "python-shm": set(ARRAY) - {"pipeline-3jobs"},
        "numpy": set(ARRAY) - {"pipeline-3jobs"},
        "python-pool": {"inplace", "sum", "poly", "pipeline", "images", "tiny", "tiny-chunk1", "apply", "strings", "queue", *START},
        "joblib": {"inplace", "sum", "poly", "tiny", "strings"},
        "pebble": {"tiny", "tiny-chunk1", "apply", "strings"},
    }
    if contender not in table:
        return f"{contender} is not a Python contender"
    if workload not in table[contender]:
        return f"{workload} does not fit {contender}"
    return None


def needs(contender, workload):
    """None if every module the cell needs imports, else why not."""
    if (workload in ARRAY or contender in ("python-shm", "numpy")) and NUMPY_ERR:
        return NUMPY_ERR
    if contender in ("joblib", "pebble"):
        return module_version(contender)[1]
    if workload == "images":
        if NUMPY_ERR:
            return NUMPY_ERR
        try:
            import PIL  # noqa: F401
        except Exception as e:  # noqa: BLE001
            return f"Pillow is not importable ({type(e).__name__}: {e}); python3 -m pip install pillow"
    return None


def main():
    versions = {m: module_version(m)[0] for m in ("joblib", "pebble")}
    reply({"hello": 1, "python": sys.version.split()[0],
           "numpy": None if np is None else np.__version__, "modules": versions})
    cells = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "quit":
                break
            cid = req.get("id")
            if cmd == "setup":
                c, w = req["contender"], req["workload"]
                why = fits(c, w)
                if why:
                    reply({"na": why})
                    continue
                why = needs(c, w)
                if why:
                    reply({"skip": why})
                    continue
                kind = ArrayCell if w in ARRAY else ImageCell if w == "images" else TaskCell
                cell = kind(c, w, int(req["size"]), int(req["workers"]))
                cells[cid] = cell
                cell.setup()
                reply({"ok": True})
            elif cmd == "check":
                reply({"ok": True, "digest": cells[cid].check()})
            elif cmd == "run":
                reply({"ok": True, "seconds": cells[cid].run()})
            elif cmd == "close":
                cell = cells.pop(cid, None)
                if cell is not None:
                    cell.close()
                reply({"ok": True})
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as e:  # noqa: BLE001 - reported as this cell's failure
            reply({"error": f"{type(e).__name__}: {e}"})
    for cell in cells.values():
        try:
            cell.close()
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    main()
