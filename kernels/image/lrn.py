"""Local response normalisation across channels on image tensors (ONNX LRN).

For channel c the window is [c - floor((size-1)/2), c + ceil((size-1)/2)],
clipped to the true channel count C, and
``y = x / (k + alpha/size * sum(x^2 over window))^beta``.  The window sum
slides along the channels, one running row of W sums per (n, h) in float64.
Channel ``c`` of a row lives in lane ``c % 4`` of block ``c // 4``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from . import _common

__all__ = ["lrn"]


@njit(nogil=True, fastmath=True, cache=True)
def _lrn_region(x, out, nc, size, alpha, beta, k, r0, r1, b0, b1):
    nb, _, _, w, _ = x.shape
    lo = (size - 1) // 2
    hi = size // 2
    scale = alpha / size
    c0 = 4 * b0
    c1 = min(4 * b1, nc)
    acc = np.empty(w, np.float64)
    for n in range(nb):
        for h in range(r0, r1):
            for i in range(w):
                acc[i] = 0.0
            for c in range(max(c0 - lo, 0), min(c0 + hi + 1, nc)):
                xrow = x[n, h, c >> 2]
                for i in range(w):
                    v = xrow[i, c & 3]
                    acc[i] += v * v
            for c in range(c0, c1):
                xrow = x[n, h, c >> 2]
                orow = out[n, h, c >> 2]
                lane = c & 3
                for i in range(w):
                    orow[i, lane] = xrow[i, lane] * (k + scale * acc[i]) ** (-beta)
                enter = c + 1 + hi
                leave = c - lo
                if enter < nc:
                    xr = x[n, h, enter >> 2]
                    for i in range(w):
                        v = xr[i, enter & 3]
                        acc[i] += v * v
                if leave >= 0:
                    xr = x[n, h, leave >> 2]
                    for i in range(w):
                        v = xr[i, leave & 3]
                        acc[i] = max(acc[i] - v * v, 0.0)  # guard rounding below zero
            for c in range(c1, 4 * b1):  # padding lanes of the last block
                orow = out[n, h, c >> 2]
                for i in range(w):
                    orow[i, c & 3] = 0.0


def _number(op, name, v, positive=False) -> float:
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a number, got {v!r}")
    v = float(v)
    if not np.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{op}: {name} must be a finite{' positive' if positive else ''} number, got {v!r}")
    return v


def lrn(x, c, *, size=5, alpha=1e-4, beta=0.75, k=1.0, out=None, rows=None,
        channels=None) -> np.ndarray:
    """ONNX LRN on an image x (N, H, CB, W, 4) with ``c`` true channels.

    ``rows=(r0, r1)`` and ``channels=(c0, c1)`` (multiples of 4; c1 may be c)
    compute only that output region; other cells of ``out`` are untouched.
    """
    op = "lrn"
    x = _common.image(op, "x", x)
    nc = _common.channels_of(op, "c", c, x.shape[2])
    size = _common.integer(op, "size", size)
    alpha = _number(op, "alpha", alpha)
    beta = _number(op, "beta", beta)
    k = _number(op, "k", k, positive=True)
    r0, r1 = _args.region(op, "rows", rows, x.shape[1])
    b0, b1 = _common.block_region(op, channels, x.shape[2], nc)
    out = _args.output(op, out, x.shape, (r0, r1, b0, b1) == (0, x.shape[1], 0, x.shape[2]), (x,),
                       names=("x",))
    if r0 < r1 and b0 < b1:
        _lrn_region(x, out, nc, size, alpha, beta, k, r0, r1, b0, b1)
    return out
