"""Softmax along any axis on image tensors (ONNX Softmax, opset 13).

The image ``(N, H, CB, W, 4)`` holds an NCHW tensor with ``c`` true channels
(a 2-D (N, K) tensor is held as (N, K, 1, 1)); ``axis`` is an axis of that
NCHW tensor.  Along channels (axis 1) each pixel is normalised over the c
true channels, which lie in lanes ``c % 4`` of blocks ``c // 4``; along N, H
or W the texels are normalised lane by lane with ``coinfer.kernels._softmax``.
Padding lanes are written as zeros.  Numerically stable; a NaN or inf along
the axis makes that softmax NaN, as in the reference.

``rows=(r0, r1)`` / ``channels=(c0, c1)`` (multiples of 4, c1 may be c)
compute one region of the output on axes other than the softmax axis;
other cells of ``out`` are untouched.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import _softmax
from .. import args as _args
from . import _common

__all__ = ["softmax"]


@njit(nogil=True, cache=True)
def _channel_softmax(x, out, nc, r0, r1):
    """Rows [r0, r1): every pixel normalised over its ``nc`` channels; padding lanes set to 0."""
    nb, h, cb, w, _ = x.shape
    m = np.empty(w, np.float32)
    s = np.empty(w, np.float32)
    for n in range(nb):
        for ih in range(r0, r1):
            xr = x[n, ih]
            yr = out[n, ih]
            for i in range(w):
                m[i] = xr[0, i, 0]
                s[i] = 0.0
            for c in range(1, nc):
                for i in range(w):
                    v = xr[c >> 2, i, c & 3]
                    m[i] = v if (v > m[i] or v != v) else m[i]
            for c in range(nc):
                for i in range(w):
                    e = np.exp(xr[c >> 2, i, c & 3] - m[i])
                    yr[c >> 2, i, c & 3] = e
                    s[i] += e
            for i in range(w):
                s[i] = np.float32(1.0) / s[i]
            for c in range(nc):
                for i in range(w):
                    yr[c >> 2, i, c & 3] *= s[i]
            for c in range(nc, 4 * cb):
                for i in range(w):
                    yr[c >> 2, i, c & 3] = 0.0


def _axis(op, axis) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -4 <= axis < 4:
        raise ValueError(f"{op}: axis must be in [-4, 3] (an axis of the NCHW tensor the image holds), got {axis}")
    return int(axis) % 4


def softmax(x, c, out=None, *, axis=1, rows=None, channels=None) -> np.ndarray:
    """Softmax of an image x (N, H, CB, W, 4) with ``c`` true channels along NCHW ``axis``.

    ``out`` may be ``x`` itself.  Regions as in the module doc.
    """
    x, out, calls, tail = softmax_call(x, c, out, axis, rows, channels)
    for view, box in calls:
        if view is None:
            _channel_softmax(x, out, *box)
        else:
            _softmax.softmax(x, out, view, box)
    if tail is not None:  # padding lanes are exact zeros
        r0, r1, blk, k0 = tail
        out[:, r0:r1, blk, :, k0:] = 0.0
    return out


def softmax_call(x, c, out, axis, rows, channels):
    """The checks of :func:`softmax` -> (x, out, the calls, the padding lanes to zero after them
    (r0, r1, block, first lane) or None).  A call is (5-D view, box) of ``_softmax.softmax``, or
    (None, (c, r0, r1)) of ``_channel_softmax``."""
    op = "softmax"
    x = _common.image(op, "x", x)
    nc = _common.channels_of(op, "c", c, x.shape[2])
    axis = _axis(op, axis)
    nb, h, cb, w, _ = x.shape
    if rows is not None and axis == 2:
        raise ValueError(f"{op}: rows cannot split the softmax axis 2 (H); compute whole rows")
    if channels is not None and axis == 1:
        raise ValueError(f"{op}: channels cannot split the softmax axis 1; compute all channels")
    r0, r1 = _args.region(op, "rows", rows, h)
    b0, b1 = _common.block_region(op, channels, cb, nc)
    out = _args.output(op, out, x.shape, (r0, r1, b0, b1) == (0, h, 0, cb), (x,), in_place=True)
    if r0 >= r1 or b0 >= b1:
        return x, out, [], None
    if axis == 1:
        return x, out, [(None, (nc, r0, r1))], None
    w4 = w * 4
    if axis == 0:
        calls = [((1, 1, 1, nb, h * cb * w4), ((0, 1), (0, 1), ((ih * cb + b0) * w4, (ih * cb + b1) * w4)))
                 for ih in range(r0, r1)]
    elif axis == 2:
        calls = [((nb, 1, 1, h, cb * w4), ((0, 1), (0, 1), (b0 * w4, b1 * w4)))]
    else:
        calls = [((nb, h, cb, w, 4), ((r0, r1), (b0, b1), (0, 4)))]
    return x, out, calls, ((r0, r1, cb - 1, nc % 4) if nc % 4 and b1 == cb else None)
