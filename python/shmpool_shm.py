"""Attach Python (NumPy) to shmpool's named shared arrays, and create arrays Rust can open.

Zero-copy both ways: the NumPy array is a view of the shared pages, with the shape the segment
records (a `(h, w, 3)` uint8 image made in Rust is a `(h, w, 3)` NumPy array here).

    import shmpool_shm
    arr, seg = shmpool_shm.attach("shmpool-1234-9f3c...")   # an array a Rust process created
    arr *= 2                                                 # writes land in shared memory
    seg.close()                                              # never unlinks what it attached

    arr, seg = shmpool_shm.create("my-image", (480, 640, 3), "|u1")
    # Rust: SharedArray::<u8>::open("my-image")?.shape() == [480, 640, 3]
    ...
    seg.close(); seg.unlink()                                # the creator removes the name

The layout is shmpool's segment header (docs/architecture.md, "Segment layout"): 128 bytes,
little-endian; for 2 or more dimensions the shape block follows (`ndim` u64s at offset 128);
then the data at `data_offset` (128 for a 1-D array, 256 for a shaped one, for every element
type up to 128-byte alignment). The same thing by hand:

    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(name)
    magic, version, kind, dtype, _, _, length, offset, *_, ndim = HEADER.unpack_from(shm.buf)
    shape = struct.unpack_from(f"<{ndim}Q", shm.buf, 128) if ndim > 1 else (length,)
    arr = numpy.ndarray(shape, dtype=dtype.rstrip(b"\\0").decode(), buffer=shm.buf, offset=offset)
"""

import math
import mmap
import operator
import os
import secrets
import struct
from multiprocessing import resource_tracker, shared_memory

import numpy as np

MAGIC = b"SHMPOOL\0"
VERSION = 2
KIND_ARRAY = 1
HEADER = struct.Struct("<8sII16sQQQQQQIIQQI20x")
assert HEADER.size == 128
SHAPE_OFFSET = 128
MAX_DIMS = 8
# NumPy's (and Rust's) limit: the non-zero dimensions multiply to at most this, even when
# another dimension is zero; so do the bytes of a segment.
MAX_SIZE = 2**63 - 1
# The longest name Rust accepts (segment/name.rs: NAME_MAX 255, less room for the '/').
MAX_NAME = 250


class ShmpoolError(Exception):
    """A segment that is not a shmpool array, or not the one expected."""


class Segment:
    """The shared mapping behind an array; keep it alive as long as the array is used."""

    def __init__(self, shm, owner):
        self._shm = shm
        self._owner = owner
        self.name = shm.name.lstrip("/")

    def close(self):
        """Unmap this process's view (arrays made from it must be dropped first)."""
        self._shm.close()

    def unlink(self):
        """Remove the name (the creator does this; attaching never does)."""
        shared_memory._posixshmem.shm_unlink("/" + self.name)


def _bare_name(name):
    """`name` without its one optional leading '/', checked as Rust checks it (segment/name.rs):
    a name with a NUL, a '/' inside or too long is refused, not truncated or passed on."""
    if not isinstance(name, str):
        raise ShmpoolError(f"segment name {name!r} is not a string")
    bare = name[1:] if name.startswith("/") else name
    if not bare or bare in (".", "..") or "/" in bare or "\0" in bare:
        raise ShmpoolError(f"segment name {name!r}: use a non-empty name without '/' (after the "
                           "optional leading one) or NUL, and not '.' or '..'")
    if len(bare.encode()) > MAX_NAME:
        raise ShmpoolError(f"segment name {bare[:20]!r}...: longer than {MAX_NAME} bytes")
    return bare


def _check_shape(shape):
    """A shape NumPy and Rust can both have, as a tuple; raises ShmpoolError otherwise."""
    try:
        try:
            shape = (operator.index(shape),)
        except TypeError:
            shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise ShmpoolError(f"shape {shape!r}: dimensions must be integers") from None
    if not 1 <= len(shape) <= MAX_DIMS or any(d < 0 for d in shape):
        raise ShmpoolError(f"shape {shape}: use 1 to {MAX_DIMS} non-negative dimensions")
    if math.prod(d for d in shape if d) > MAX_SIZE:
        raise ShmpoolError(f"shape {shape}: the non-zero dimensions multiply past 2**63 - 1")
    return shape


def _open_untracked(name):
    # Python < 3.13 registers every attached segment with the resource tracker, which then
    # unlinks it when this process exits, under the creator's feet (CPython issue 82300).
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def _data_offset(ndim, alignment):
    """Where data starts: past the header and shape block, on a multiple of 128 and alignment."""
    start = HEADER.size + (8 * ndim if ndim > 1 else 0)
    step = max(alignment, HEADER.size)
    return -(-start // step) * step


def read_header(buf):
    """The header fields (and "shape") as a dict; raises ShmpoolError unless it is a finished,
    consistent shmpool header."""
    if len(buf) < HEADER.size:
        raise ShmpoolError(f"segment is {len(buf)} bytes, smaller than the 128-byte header")
    f = HEADER.unpack_from(buf)
    h = dict(zip(
        ["magic", "version", "kind", "dtype", "elem_size", "elem_align", "len", "data_offset",
         "data_bytes", "segment_bytes", "creator_pid", "flags", "nonce", "type_hash", "ndim"], f))
    if h["magic"] != MAGIC:
        raise ShmpoolError("not a shmpool segment (bad magic)")
    if h["version"] != VERSION:
        raise ShmpoolError(f"header layout version {h['version']}, this helper reads {VERSION}: "
                           "use the shmpool_shm.py of the shmpool version that made the segment")
    ndim = h["ndim"]
    if not 1 <= ndim <= MAX_DIMS:
        raise ShmpoolError(f"corrupt header: {ndim} dimensions, not 1 to {MAX_DIMS}")
    if ndim > 1 and (h["data_offset"] < SHAPE_OFFSET + 8 * ndim or len(buf) < SHAPE_OFFSET + 8 * ndim):
        raise ShmpoolError("corrupt header: the data offset is inside the shape block")
    h["shape"] = struct.unpack_from(f"<{ndim}Q", buf, SHAPE_OFFSET) if ndim > 1 else (h["len"],)
    if math.prod(h["shape"]) != h["len"]:
        raise ShmpoolError(f"corrupt header: shape {h['shape']} does not hold {h['len']} elements")
    if math.prod(d for d in h["shape"] if d) > MAX_SIZE:
        raise ShmpoolError(f"corrupt header: shape {h['shape']} is larger than any array")
    if h["len"] * h["elem_size"] != h["data_bytes"]:
        raise ShmpoolError("corrupt header: len * elem_size != data bytes")
    try:
        h["dtype"] = h["dtype"].rstrip(b"\0").decode()
    except UnicodeDecodeError:
        raise ShmpoolError("corrupt header: the dtype is not text") from None
    return h


def attach(name, dtype=None, shape=None):
    """Attach to the named shmpool array; returns (numpy view with the stored shape, Segment).

    `dtype`, if given, must match the header's (NumPy dtypes compare by meaning: "<f8" == float64);
    `shape`, if given, must equal the stored shape.
    """
    shm = _open_untracked(_bare_name(name))
    try:
        h = read_header(shm.buf)
        if h["kind"] != KIND_ARRAY:
            raise ShmpoolError(f"segment holds kind {h['kind']}, not an array")
        try:
            dt = np.dtype(h["dtype"])
        except (TypeError, ValueError):
            raise ShmpoolError(f"segment holds {h['dtype']!r}, not a NumPy dtype") from None
        if dt.hasobject:
            raise ShmpoolError(f"segment holds {h['dtype']!r}: Python objects are not shared")
        if dt.itemsize != h["elem_size"]:
            raise ShmpoolError(f"corrupt header: {dt} is not {h['elem_size']} bytes")
        if dtype is not None and np.dtype(dtype) != dt:
            raise ShmpoolError(f"segment holds {h['dtype']}, asked for {np.dtype(dtype).str}")
        if shape is not None and tuple(shape) != tuple(h["shape"]):
            raise ShmpoolError(f"segment has shape {tuple(h['shape'])}, asked for {tuple(shape)}")
        if h["segment_bytes"] != shm.size or h["data_offset"] + h["data_bytes"] != shm.size:
            raise ShmpoolError(f"corrupt header: it describes {h['segment_bytes']} bytes but the "
                               f"segment is {shm.size} (truncated or resized)")
        if h["data_offset"] % dt.alignment:
            raise ShmpoolError("corrupt header: the data offset is misaligned")
        arr = np.ndarray(tuple(h["shape"]), dtype=dt, buffer=shm.buf, offset=h["data_offset"])
    except BaseException:
        shm.close()
        raise
    return arr, Segment(shm, owner=False)


def create(name, shape, dtype):
    """Create a named array Rust can open with `SharedArray::<T>::open(name)`, whose `shape()` is
    `shape` (a tuple of 1 to 8 dimensions, or an int for 1-D).

    The memory is reserved with posix_fallocate, so a full /dev/shm raises OSError(ENOSPC) here
    instead of SIGBUS later (SharedMemory(create=True) only ftruncates). `name=None` generates a
    shmpool-style name. Returns (numpy view, Segment); the caller unlinks when done.
    """
    dt = np.dtype(dtype)
    if dt.str[1] not in "iuf" or dt.itemsize > 8:
        raise ShmpoolError(f"only integer and float dtypes are shared with Rust, not {dt}")
    shape = _check_shape(shape)
    length = math.prod(shape)
    name = _bare_name(name or f"shmpool-{os.getpid()}-{secrets.token_hex(8)}")
    offset = _data_offset(len(shape), dt.alignment)
    size = offset + length * dt.itemsize
    if size > MAX_SIZE:
        raise ShmpoolError(f"shape {shape} of {dt} takes {size} bytes, more than 2**63 - 1")
    fd = shared_memory._posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        with mmap.mmap(fd, size) as m:
            typestr = dt.str if dt.itemsize > 1 else "|" + dt.str[1:]
            fields = (b"\0" * 8, VERSION, KIND_ARRAY, typestr.encode(), dt.itemsize, dt.alignment,
                      length, offset, length * dt.itemsize, size, os.getpid(), 0,
                      secrets.randbits(64), 0, len(shape))
            HEADER.pack_into(m, 0, *fields)
            if len(shape) > 1:
                struct.pack_into(f"<{len(shape)}Q", m, SHAPE_OFFSET, *shape)
            m[0:8] = MAGIC  # last: openers see a finished header or none
    except BaseException:
        shared_memory._posixshmem.shm_unlink("/" + name)
        raise
    finally:
        os.close(fd)
    try:
        arr, seg = attach(name, dt)
    except BaseException:
        shared_memory._posixshmem.shm_unlink("/" + name)  # made here: nothing else removes it
        raise
    seg._owner = True
    return arr, seg
