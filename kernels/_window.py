"""Built rows: the scratch rows the window kernels (pools, depthwise conv) read their taps from.

Both layouts are seen as *planes* of rows of *cells*: an NCHW plane (n, c) has
rows of W cells of one float; an image plane (n, cb) has rows of W texels of
four floats (``cell`` = 4).  A plane is given by its flat offset and its row
stride, so one compiled kernel per (layout, op) serves every shape.

A *built row* is a copy of an input row (or of a fold of several, for pools)
padded with the window's identity (-inf for max, 0 for sums and conv) and,
for a column stride of 2, split by column phase: cells 0, 2, 4, ... of the
padded row, then cells 1, 3, 5, ...  Window tap j of ``VW`` consecutive output
floats is then one vector load from the built row at ``tap_columns()[j]``,
whatever the stride (a stride of 3 or more is split by a scalar loop).

Each phase row holds ``wq`` cells: enough for every output block's taps, in
``wql`` floats (aligned, plus one vector of slack for a last full store).
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from ._simd import VW

__all__ = ["row_geometry", "tap_columns", "scratch"]


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def row_geometry(ow: int, cell: int, kw: int, sw: int, dw: int, pl: int) -> tuple[int, int]:
    """(wq, wql) of the built rows for output rows of ``ow`` cells (module doc)."""
    nblk = -(-ow * cell // VW)
    wq = nblk * VW // cell + (dw * (kw - 1)) // sw
    return wq, _round_up((wq + pl) * cell, VW) + VW


@lru_cache(maxsize=256)
def tap_columns(kw: int, sw: int, dw: int, wql: int, cell: int) -> np.ndarray:
    """Offset of tap column j in a built row: its phase row, then its slot (read-only)."""
    a = np.array([((j * dw) % sw) * wql + ((j * dw) // sw) * cell for j in range(kw)], np.int64)
    a.flags.writeable = False
    return a


_local = threading.local()


def scratch(kind: str, size: int, fill: float, key) -> np.ndarray:
    """A per-thread scratch array of ``size`` floats for ``kind``, reused between calls.

    It is (re)filled with ``fill`` when ``key`` (the geometry it serves) changes:
    the kernels write only the cells of the input, and read the rest as padding.
    """
    store = getattr(_local, "store", None)
    if store is None:
        store = _local.store = {}
    buf, last = store.get(kind, (None, None))
    if buf is None or buf.size < size:
        buf, last = np.empty(max(size, VW), np.float32), None
    if last != (key, size, fill):
        buf.fill(fill)
    store[kind] = (buf, (key, size, fill))
    return buf
