"""Softmax along one axis on float32 buffers (ONNX Softmax, opset 13).

The loop is ``coinfer.kernels._softmax`` (numerically stable; a NaN or inf
along the axis makes that softmax NaN, as in the reference).  A 4-D
(N, C, H, W) output may be computed by region, ``rows=(r0, r1)`` /
``channels=(c0, c1)``, on axes other than the softmax axis; a 2-D (N, K)
output by ``channels`` when the axis is 0.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _softmax
from .. import args as _args

__all__ = ["softmax", "regions"]


def regions(shape, axis, rows, channels, op="softmax"):
    """The (5-D view, box) calls of ``_softmax`` that compute a region of a tensor of ``shape``.

    The softmax axis is L of the view; the box covers the region on the other axes.
    """
    nd = len(shape)
    if rows is not None and nd != 4:
        raise ValueError(f"{op}: rows needs a 4-D (N, C, H, W) tensor, got {nd}-D shape {shape}")
    if channels is not None and nd not in (2, 4):
        raise ValueError(f"{op}: channels needs a 2-D (N, K) or 4-D (N, C, H, W) tensor, got {nd}-D shape {shape}")
    if rows is not None and axis == 2:
        raise ValueError(f"{op}: rows cannot split the softmax axis 2 (H); compute whole rows")
    if channels is not None and axis == 1:
        raise ValueError(f"{op}: channels cannot split the softmax axis 1; compute all channels")
    if nd == 4:
        n, c, h, w = shape
        r0, r1 = _args.region(op, "rows", rows, h)
        c0, c1 = _args.region(op, "channels", channels, c)
        if axis == 0:  # N is outermost: one call per channel, over its rows' run of floats
            return [((1, 1, 1, n, c * h * w), ((0, 1), (0, 1), (ch * h * w + r0 * w, ch * h * w + r1 * w)))
                    for ch in range(c0, c1)]
        if axis == 1:
            return [((n, 1, 1, c, h * w), ((0, 1), (0, 1), (r0 * w, r1 * w)))]
        if axis == 2:
            return [((n, c, 1, h, w), ((c0, c1), (0, 1), (0, w)))]
        return [((n, c, h, w, 1), ((c0, c1), (r0, r1), (0, 1)))]
    if nd == 2:
        n, k = shape
        c0, c1 = _args.region(op, "channels", channels, k)
        if axis == 0:
            return [((1, 1, 1, n, k), ((0, 1), (0, 1), (c0, c1)))]
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1:])
    return [((outer, 1, 1, shape[axis], inner), ((0, 1), (0, 1), (0, inner)))]


def softmax(x, axis=1, out=None, rows=None, channels=None) -> np.ndarray:
    """Softmax of x along ``axis`` (negative counts from the end); ``out`` may be ``x``.

    ``rows`` / ``channels`` compute only that output region (see the module doc);
    other cells of ``out`` are untouched, and a new output is zero outside it.
    """
    x, out, calls = softmax_call(x, axis, out, rows, channels)
    for view, box in calls:
        _softmax.softmax(x, out, view, box)
    return out


def softmax_call(x, axis, out, rows, channels):
    """The checks of :func:`softmax` -> (x, out, the (5-D view, box) calls of ``_softmax.softmax``)."""
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
    calls = regions(x.shape, axis, rows, channels, op)
    whole = rows is None and channels is None
    if out is None:
        out = np.empty(x.shape, np.float32) if whole else np.zeros(x.shape, np.float32)
    else:
        out = _args.out_array(op, out, x.shape)
        if np.may_share_memory(out, x) and out.ctypes.data != x.ctypes.data:
            raise ValueError(f"{op}: out must be x itself or not overlap it")
    return x, out, ([] if x.size == 0 else calls)
