"""The arena: one block of shared memory holding every activation at planned offsets.

The block comes from :func:`coinfer.hw.memory.map_block` (an anonymous ``MAP_SHARED``
mapping, page aligned), so a forked process sees the same bytes.  Offsets come
from :func:`plan_offsets` (see :mod:`coinfer.hw.arena_plan`): tensors alive at
the same op never overlap.

Views are numpy arrays over the block.  Each view keeps the mapping alive
through its ``base`` chain, so the memory is unmapped only once the arena is
closed *and* no view is left: a view can never point at unmapped memory.
After :meth:`Arena.close` the arena hands out no new views.
"""
from __future__ import annotations

import functools
import mmap
import threading

import numpy as np

from coinfer.kernels import LAYOUTS

from . import memory
from .arena_plan import check_alignment, check_tensors, lower_bound, naive_bytes, plan_offsets

__all__ = ["Arena", "plan_offsets", "lower_bound", "naive_bytes"]



class _Mapping:
    """State of one mmap'd block, shared with its release callback."""

    __slots__ = ("nbytes", "mapped")

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.mapped = True


def _release(state: _Mapping, p) -> None:
    memory.unmap_block(p, state.nbytes)
    state.mapped = False


class Arena:
    """Shared memory for a set of tensors with lifetimes.

    ``Arena(tensors, alignment=64)`` plans offsets for ``tensors`` (a list of
    ``(nbytes, first_use, last_use)``) and maps one block of ``used_bytes``
    (at least one alignment unit).  ``view(i, shape, dtype)`` is tensor ``i``
    as a numpy array; ``layout="image"`` reads ``shape`` as NCHW and returns
    the image view ``(N, H, CB, W, 4)``.
    """

    def __init__(self, tensors, alignment: int = 64):
        self.alignment = check_alignment(alignment)
        if self.alignment > mmap.PAGESIZE:
            raise ValueError(f"arena: alignment {self.alignment} exceeds the page size {mmap.PAGESIZE}")
        self._tensors = check_tensors(tensors)
        self._offsets, self.used_bytes = plan_offsets(self._tensors, self.alignment)
        self.lower_bound = lower_bound(self._tensors, self.alignment)
        self.naive_bytes = naive_bytes(self._tensors, self.alignment)
        self.nbytes = max(self.used_bytes, self.alignment)
        p = memory.map_block(self.nbytes)
        if p is None:
            raise MemoryError(f"arena: could not map {self.nbytes} bytes")
        self._state = _Mapping(self.nbytes)
        self._mem = memory.block_buffer(p, self.nbytes, functools.partial(_release, self._state))
        self._lock = threading.Lock()
        if self._mem.ctypes.data % self.alignment:
            raise MemoryError(f"arena: block is not {self.alignment}-byte aligned")

    @classmethod
    def plan(cls, tensors, alignment: int = 64) -> "Arena":
        """Plan offsets for ``tensors`` and map the block (same as the constructor)."""
        return cls(tensors, alignment)

    def __len__(self) -> int:
        return len(self._tensors)

    @property
    def offsets(self) -> tuple:
        return tuple(self._offsets)

    def offset(self, i: int) -> int:
        return self._offsets[self._index(i)]

    def size(self, i: int) -> int:
        """Planned bytes of tensor ``i`` (as requested, before alignment)."""
        return self._tensors[self._index(i)][0]

    @property
    def closed(self) -> bool:
        return self._mem is None

    @property
    def mapped(self) -> bool:
        """True while the block is mapped (after close, until the last view is gone)."""
        return self._state.mapped

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"arena: tensor index must be an int, got {type(i).__name__}")
        if not 0 <= i < len(self._tensors):
            raise ValueError(f"arena: tensor {i} out of range (arena holds {len(self._tensors)} tensors)")
        return int(i)

    def view(self, i: int, shape, dtype=np.float32, *, layout: str | None = None) -> np.ndarray:
        """Tensor ``i`` as a writeable, C-contiguous array of ``shape`` and ``dtype``.

        ``layout=None`` takes ``shape`` as given; ``"buffer"`` and ``"image"``
        take an NCHW ``shape`` and return it as NCHW or as the image view
        ``(N, H, ceil(C/4), W, 4)``.  Asking for more bytes than tensor ``i``
        was planned with raises ValueError.
        """
        k = self._index(i)
        shape = self._shape(k, shape, layout)
        dtype = np.dtype(dtype)
        count = 1
        for d in shape:
            count *= d
        need = count * dtype.itemsize
        size = self._tensors[k][0]
        if need > size:
            raise ValueError(
                f"arena: view of tensor {k} needs {need} bytes ({shape}, {dtype}) "
                f"but the tensor was planned with {size} bytes"
            )
        with self._lock:
            if self._mem is None:
                raise ValueError("arena: closed, no new views")
            off = self._offsets[k]
            return self._mem[off:off + need].view(dtype).reshape(shape)

    @staticmethod
    def _shape(k: int, shape, layout) -> tuple:
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"arena: view of tensor {k}: shape must be a tuple of non-negative ints, got {shape!r}")
        shape = tuple(int(d) for d in shape)
        if layout is None or layout == "buffer":
            if layout == "buffer" and len(shape) != 4:
                raise ValueError(f"arena: view of tensor {k}: buffer layout needs an NCHW shape, got {shape}")
            return shape
        if layout == "image":
            if len(shape) != 4:
                raise ValueError(f"arena: view of tensor {k}: image layout needs an NCHW shape, got {shape}")
            n, c, h, w = shape
            return (n, h, (c + 3) // 4, w, 4)
        raise ValueError(f"arena: layout must be one of {LAYOUTS} or None, got {layout!r}")

    def close(self) -> None:
        """Refuse new views and drop the arena's hold on the block.

        The block is unmapped as soon as no view of it is left (at once when
        there are none).  Closing twice is harmless.
        """
        with self._lock:
            self._mem = None

    def __enter__(self) -> "Arena":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"Arena({len(self)} tensors, used={self.used_bytes} B, lower_bound={self.lower_bound} B, "
            f"naive={self.naive_bytes} B, {state})"
        )
