"""What the hardware model needs from the C layer (csrc, built as ``coinfer.hw._native``).

- Arena memory: :func:`map_block` / :func:`unmap_block`, an anonymous
  ``MAP_SHARED`` mapping (page aligned, so a forked process sees it).
- Cache maintenance for map/unmap: :func:`cache_flush` writes back and drops
  the cache lines under an array (``clflushopt``, the map side: the next read
  sees the other processor's writes), :func:`cache_clean` writes them back
  (``clwb``, the unmap side).  Both walk the region line by line, so their
  cost is real and grows with bytes.
- The flag a finished task sets (:func:`new_flag`) and :func:`spin_wait`, which
  watches one without the interpreter lock (a sync's first, cheap phase).

Every C call checks its arguments and returns a status code; a negative one
raises ValueError naming the operation.
"""
from __future__ import annotations

import numpy as np

from coinfer.kernels.args import check_status

from ._native import ffi, lib

__all__ = ["map_block", "unmap_block", "block_buffer", "cache_clean", "cache_flush", "bind_cache_clean",
           "bind_cache_flush", "new_flag", "spin_wait", "entry_address"]


def map_block(nbytes: int):
    """A new zero-filled shared block of ``nbytes`` (> 0) bytes as a cffi pointer, or None."""
    p = lib.cf_arena_alloc(int(nbytes))
    return None if p == ffi.NULL else p


def unmap_block(p, nbytes: int) -> None:
    """Release a block from :func:`map_block`."""
    check_status(lib.cf_arena_free(p, int(nbytes)), "arena unmap")


def block_buffer(p, nbytes: int, release):
    """A numpy uint8 array over the block; ``release(p)`` runs once nothing refers to it."""
    owned = ffi.gc(p, release, size=int(nbytes))
    return np.frombuffer(ffi.buffer(owned, int(nbytes)), np.uint8)


def _extent(a: np.ndarray) -> int:
    """Elements from ``a``'s first element to one past its last (non-negative strides)."""
    return 1 + sum((n - 1) * (s // 4) for n, s in zip(a.shape, a.strides) if n > 0)


def _byte_span(a: np.ndarray):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"cache maintenance needs a numpy.ndarray, got {type(a).__name__}")
    if a.size == 0:
        return None, 0
    if not a.flags.c_contiguous:
        lo = a.ctypes.data
        hi = lo + (_extent(a) if a.dtype == np.float32 else a.nbytes // a.itemsize) * a.itemsize
        return ffi.cast("void *", lo), hi - lo
    return ffi.cast("void *", a.ctypes.data), a.nbytes


def cache_clean(a) -> int:
    """Write back the cache lines under ``a`` (unmap side). Returns bytes walked."""
    p, n = _byte_span(a)
    if n:
        check_status(lib.cf_cache_clean(p, n), "cache_clean")
    return n


def cache_flush(a) -> int:
    """Write back and drop the cache lines under ``a`` (map side). Returns bytes walked."""
    p, n = _byte_span(a)
    if n:
        check_status(lib.cf_cache_flush(p, n), "cache_flush")
    return n


def entry_address(name: str) -> int:
    """The address of one of this extension's native-program entries (csrc: ``*_entry``)."""
    return int(ffi.cast("intptr_t", ffi.addressof(lib, name)))


def _bind_cache(kind: str, a):
    from coinfer.kernels.entry.call import NativeCall

    p, n = _byte_span(a)
    address = int(ffi.cast("intptr_t", p)) if n else a.ctypes.data  # an empty view walks nothing
    iargs = np.array([address, n], np.int64)
    return NativeCall(kind, entry_address(f"cf_{kind}_entry"), iargs, np.zeros(1), keep=(a,))


def bind_cache_clean(a):
    """:func:`cache_clean` of the view ``a`` as a native call (``coinfer.kernels.entry.NativeCall``)."""
    return _bind_cache("cache_clean", a)


def bind_cache_flush(a):
    """:func:`cache_flush` of the view ``a`` as a native call (``coinfer.kernels.entry.NativeCall``)."""
    return _bind_cache("cache_flush", a)


def new_flag():
    """A C ``int32_t`` flag, 0 until a task sets ``flag[0] = 1`` when it is done."""
    return ffi.new("int32_t *")


def spin_wait(flag, seconds: float) -> bool:
    """Watch ``flag`` (from :func:`new_flag`) for up to ``seconds`` without the
    interpreter lock; True once it is set."""
    return bool(lib.cf_spin_wait(flag, int(seconds * 1e9)))
