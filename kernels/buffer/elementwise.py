"""ReLU, Add and Concat on float32 buffers.

ReLU and Add work on any shape through a flat view, so 2-D FC outputs and 4-D
activations share one compiled kernel.  Concat sees every tensor as
``(outer, inner)`` around the concat axis, and copies each input into its
column band of the output.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import _args

__all__ = ["relu", "add", "concat"]


@njit(nogil=True, fastmath=True, cache=True)
def _relu(x, out):
    for i in range(x.size):
        out[i] = max(x[i], np.float32(0.0))


@njit(nogil=True, fastmath=True, cache=True)
def _add(a, b, out, relu):
    if relu:
        for i in range(a.size):
            out[i] = max(a[i] + b[i], np.float32(0.0))
    else:
        for i in range(a.size):
            out[i] = a[i] + b[i]


@njit(nogil=True, fastmath=True, cache=True)
def _copy_band(src, dst, col):
    """dst[:, col:col + src.shape[1]] = src, for 2-D arrays."""
    rows, width = src.shape
    for r in range(rows):
        s = src[r]
        d = dst[r, col:col + width]  # a view, so the loop index stays a plain range
        for i in range(width):
            d[i] = s[i]


def _any_rank(op, name, a):
    a = _args.array(op, name, a, None)
    if a.ndim < 1:
        raise ValueError(f"{op}: {name} must have at least 1 axis, got a scalar array")
    return a


def _same_out(op, out, shape, *inputs):
    """New output, or the checked ``out``: it may be an input itself but not overlap one partially."""
    if out is None:
        return np.empty(shape, np.float32)
    out = _args.out_array(op, out, shape)
    for a in inputs:
        if np.may_share_memory(out, a) and out.ctypes.data != a.ctypes.data:
            raise ValueError(f"{op}: out must be an input itself or not overlap it")
    return out


def relu(x, out=None) -> np.ndarray:
    """max(x, 0) elementwise; ``out`` may be ``x`` itself."""
    op = "relu"
    x = _any_rank(op, "x", x)
    out = _same_out(op, out, x.shape, x)
    _relu(x.reshape(-1), out.reshape(-1))
    return out


def add(a, b, *, relu=False, out=None) -> np.ndarray:
    """a + b for equal shapes (no broadcasting), optionally followed by ReLU."""
    op = "add"
    a = _any_rank(op, "a", a)
    b = _any_rank(op, "b", b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: b must have the shape of a {a.shape}, got {b.shape}")
    if not isinstance(relu, (bool, np.bool_, int, np.integer)) or relu not in (0, 1):
        raise TypeError(f"{op}: relu must be a bool, got {relu!r}")
    out = _same_out(op, out, a.shape, a, b)
    _add(a.reshape(-1), b.reshape(-1), out.reshape(-1), bool(relu))
    return out


def concat(xs, axis=1, out=None) -> np.ndarray:
    """Join tensors of equal rank along ``axis`` (negative counts from the end)."""
    op = "concat"
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise TypeError(f"{op}: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    xs = [_any_rank(op, f"xs[{i}]", x) for i, x in enumerate(xs)]
    rank = xs[0].ndim
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{op}: axis must be in [{-rank}, {rank - 1}] for {rank}-D inputs, got {axis}")
    axis = int(axis) % rank
    base = xs[0].shape
    for i, x in enumerate(xs):
        if x.ndim != rank or x.shape[:axis] != base[:axis] or x.shape[axis + 1:] != base[axis + 1:]:
            raise ValueError(
                f"{op}: xs[{i}] shape {x.shape} does not match xs[0] {base} off axis {axis}"
            )
    shape = base[:axis] + (sum(x.shape[axis] for x in xs),) + base[axis + 1:]
    out = _same_out(op, out, shape)
    if any(np.may_share_memory(out, x) for x in xs):
        raise ValueError(f"{op}: out must not overlap an input")
    outer = int(np.prod(base[:axis], dtype=np.int64))
    if outer == 0 or out.size == 0:
        return out
    dst = out.reshape(outer, -1)
    col = 0
    for x in xs:
        if x.size:
            _copy_band(x.reshape(outer, -1), dst, col)
        col += x.size // outer
    return out
