"""Local response normalisation across channels on image tensors (ONNX LRN).

For channel c the window is [c - floor((size-1)/2), c + ceil((size-1)/2)],
clipped to the true channel count C, and
``y = x / (k + alpha/size * sum(x^2 over window))^beta``.  Channel ``c`` of a
row lives in lane ``c % 4`` of block ``c // 4``; each output sums its window's
squares directly (``coinfer.kernels._lrn``), so NaN and inf reach only the
channels whose window holds them.  Padding lanes are written as zeros.
"""
from __future__ import annotations

import numpy as np

from .. import _lrn
from .. import args as _args
from . import _common

__all__ = ["lrn"]


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
    out, call, tail = lrn_call(x, c, size, alpha, beta, k, out, rows, channels)
    if call is not None:
        _lrn.lrn_texels(*call)
    if tail is not None:  # padding lanes are exact zeros
        r0, r1, blk, k0 = tail
        out[:, r0:r1, blk, :, k0:] = 0.0
    return out


def lrn_call(x, c, size, alpha, beta, k, out, rows, channels):
    """The checks of :func:`lrn` -> (out, the arguments of ``_lrn.lrn_texels`` or None, the padding
    lanes to zero after it (r0, r1, block, first lane) or None)."""
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
    if r0 >= r1 or b0 >= b1:
        return out, None, None
    tail = (r0, r1, b1 - 1, nc % 4) if nc % 4 and b1 == x.shape[2] else None
    return out, (x, out, nc, size, alpha, beta, k, (r0, r1, b0, b1)), tail
