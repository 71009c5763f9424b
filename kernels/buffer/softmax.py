"""Softmax along one axis on float32 buffers (ONNX Softmax, opset 13).

The tensor is seen as ``(outer, L, inner)`` around the axis, so one kernel
serves (N, classes) logits and (N, C, H, W) maps: with ``inner > 1`` the loops
run along the contiguous inner axis.  Numerically stable: the maximum along
the axis is subtracted before exponentiating.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args

__all__ = ["softmax"]


@njit(nogil=True, fastmath=True, cache=True)
def _softmax(x, out):
    outer, length, inner = x.shape
    m = np.empty(inner, np.float32)
    s = np.empty(inner, np.float32)
    for o in range(outer):
        xo = x[o]
        yo = out[o]
        for i in range(inner):
            m[i] = xo[0, i]
            s[i] = 0.0
        for j in range(1, length):
            xr = xo[j]
            for i in range(inner):
                m[i] = max(m[i], xr[i])
        for j in range(length):
            xr = xo[j]
            yr = yo[j]
            for i in range(inner):
                e = np.exp(xr[i] - m[i])
                yr[i] = e
                s[i] += e
        for i in range(inner):
            s[i] = np.float32(1.0) / s[i]
        for j in range(length):
            yr = yo[j]
            for i in range(inner):
                yr[i] *= s[i]


def softmax(x, axis=1, out=None) -> np.ndarray:
    """Softmax of x along ``axis`` (negative counts from the end); ``out`` may be ``x``."""
    op = "softmax"
    x = _args.array(op, "x", x, None)
    rank = x.ndim
    if rank < 1:
        raise ValueError(f"{op}: x must have at least 1 axis, got a scalar array")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{op}: axis must be in [{-rank}, {rank - 1}] for {rank}-D x, got {axis}")
    axis = int(axis) % rank
    out = np.empty(x.shape, np.float32) if out is None else _args.out_array(op, out, x.shape)
    if np.may_share_memory(out, x) and out.ctypes.data != x.ctypes.data:
        raise ValueError(f"{op}: out must be x itself or not overlap it")
    if x.size == 0:
        return out
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    view = (outer, x.shape[axis], inner)
    _softmax(x.reshape(view), out.reshape(view))
    return out
