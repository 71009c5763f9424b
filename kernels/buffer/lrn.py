"""Local response normalisation across channels on NCHW float32 buffers (ONNX LRN).

For channel c the window is [c - floor((size-1)/2), c + ceil((size-1)/2)],
clipped to the tensor, and ``y = x / (k + alpha/size * sum(x^2 over window))^beta``.
Each output sums its window's squares directly (``coinfer.kernels._lrn``), so
NaN and inf reach only the channels whose window holds them, and channel
regions reproduce the whole output bit for bit.
"""
from __future__ import annotations

import numpy as np

from .. import _lrn
from .. import args as _args

__all__ = ["lrn"]


def _number(op, name, v, positive=False) -> float:
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a number, got {v!r}")
    v = float(v)
    if not np.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{op}: {name} must be a finite{' positive' if positive else ''} number, got {v!r}")
    return v


def lrn(x, *, size=5, alpha=1e-4, beta=0.75, k=1.0, out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX LRN on x (N, C, H, W); ``rows`` / ``channels`` compute only that output region."""
    out, call = lrn_call(x, size, alpha, beta, k, out, rows, channels)
    if call is not None:
        _lrn.lrn_planes(*call)
    return out


def lrn_call(x, size, alpha, beta, k, out, rows, channels):
    """The checks of :func:`lrn` -> (out, the arguments of ``_lrn.lrn_planes`` or None)."""
    op = "lrn"
    x = _args.array(op, "x", x, 4)
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise TypeError(f"{op}: size must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"{op}: size must be >= 1, got {size}")
    alpha = _number(op, "alpha", alpha)
    beta = _number(op, "beta", beta)
    k = _number(op, "k", k, positive=True)
    if min(x.shape) < 1:
        raise ValueError(f"{op}: x must have no empty axis, got shape {x.shape}")
    shape = x.shape
    r0, r1 = _args.region(op, "rows", rows, shape[2])
    c0, c1 = _args.region(op, "channels", channels, shape[1])
    # out may not overlap x: the window reads neighbouring channels.
    out = _args.output(op, out, shape, (r0, r1, c0, c1) == (0, shape[2], 0, shape[1]), (x,), names=("x",))
    if r0 >= r1 or c0 >= c1:
        return out, None
    return out, (x, out, int(size), alpha, beta, k, (r0, r1, c0, c1))
