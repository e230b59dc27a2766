"""Attach Python (NumPy) to shmpool's named shared arrays, and create arrays Rust can open.

Zero-copy both ways: the NumPy array is a view of the shared pages.

    import shmpool_shm
    arr, seg = shmpool_shm.attach("shmpool-1234-9f3c...")   # an array a Rust process created
    arr *= 2                                                 # writes land in shared memory
    seg.close()                                              # never unlinks what it attached

    arr, seg = shmpool_shm.create("my-array", 1000, "<f8")   # Rust: SharedArray::<f64>::open
    ...
    seg.close(); seg.unlink()                                # the creator removes the name

The layout is shmpool's segment header (docs/architecture.md, "Segment layout"): 128 bytes,
little-endian, then the data at `data_offset` (128 for every element type up to 128-byte
alignment). The same thing by hand:

    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(name)
    magic, version, kind, dtype, _, _, length, offset, *_ = HEADER.unpack_from(shm.buf)
    arr = numpy.ndarray((length,), dtype=dtype.rstrip(b"\\0").decode(), buffer=shm.buf, offset=offset)
"""

import mmap
import os
import secrets
import struct
from multiprocessing import resource_tracker, shared_memory

import numpy as np

MAGIC = b"SHMPOOL\0"
VERSION = 1
KIND_ARRAY = 1
HEADER = struct.Struct("<8sII16sQQQQQQIIQQ24x")
assert HEADER.size == 128
DATA_OFFSET = 128


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


def _open_untracked(name):
    # Python < 3.13 registers every attached segment with the resource tracker, which then
    # unlinks it when this process exits, under the creator's feet (CPython issue 82300).
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def read_header(buf):
    """The header fields as a dict; raises ShmpoolError unless it is a finished shmpool header."""
    if len(buf) < HEADER.size:
        raise ShmpoolError(f"segment is {len(buf)} bytes, smaller than the 128-byte header")
    f = HEADER.unpack_from(buf)
    h = dict(zip(
        ["magic", "version", "kind", "dtype", "elem_size", "elem_align", "len", "data_offset",
         "data_bytes", "segment_bytes", "creator_pid", "flags", "nonce", "type_hash"], f))
    if h["magic"] != MAGIC:
        raise ShmpoolError("not a shmpool segment (bad magic)")
    if h["version"] != VERSION:
        raise ShmpoolError(f"header layout version {h['version']}, this helper reads {VERSION}")
    h["dtype"] = h["dtype"].rstrip(b"\0").decode()
    return h


def attach(name, dtype=None):
    """Attach to the named shmpool array; returns (numpy view, Segment).

    `dtype`, if given, must match the header's (NumPy dtypes compare by meaning: "<f8" == float64).
    """
    shm = _open_untracked(name.lstrip("/"))
    try:
        h = read_header(shm.buf)
        if h["kind"] != KIND_ARRAY:
            raise ShmpoolError(f"segment holds kind {h['kind']}, not an array")
        if dtype is not None and np.dtype(dtype) != np.dtype(h["dtype"]):
            raise ShmpoolError(f"segment holds {h['dtype']}, asked for {np.dtype(dtype).str}")
        if h["data_offset"] + h["data_bytes"] > shm.size:
            raise ShmpoolError("header describes more data than the segment holds")
        arr = np.ndarray((h["len"],), dtype=np.dtype(h["dtype"]), buffer=shm.buf,
                         offset=h["data_offset"])
    except BaseException:
        shm.close()
        raise
    return arr, Segment(shm, owner=False)


def create(name, length, dtype):
    """Create a named array Rust can open with `SharedArray::<T>::open(name)`.

    The memory is reserved with posix_fallocate, so a full /dev/shm raises OSError(ENOSPC) here
    instead of SIGBUS later (SharedMemory(create=True) only ftruncates). `name=None` generates a
    shmpool-style name. Returns (numpy view, Segment); the caller unlinks when done.
    """
    dt = np.dtype(dtype)
    if dt.str[1] not in "iuf" or dt.itemsize > 8:
        raise ShmpoolError(f"only integer and float dtypes are shared with Rust, not {dt}")
    name = (name or f"shmpool-{os.getpid()}-{secrets.token_hex(8)}").lstrip("/")
    size = DATA_OFFSET + length * dt.itemsize
    fd = shared_memory._posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        with mmap.mmap(fd, size) as m:
            typestr = dt.str if dt.itemsize > 1 else "|" + dt.str[1:]
            fields = (b"\0" * 8, VERSION, KIND_ARRAY, typestr.encode(), dt.itemsize, dt.alignment,
                      length, DATA_OFFSET, length * dt.itemsize, size, os.getpid(), 0,
                      secrets.randbits(64), 0)
            HEADER.pack_into(m, 0, *fields)
            m[0:8] = MAGIC  # last: openers see a finished header or none
    except BaseException:
        shared_memory._posixshmem.shm_unlink("/" + name)
        raise
    finally:
        os.close(fd)
    arr, seg = attach(name, dt)
    seg._owner = True
    return arr, seg
