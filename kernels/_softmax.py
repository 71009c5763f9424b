"""Softmax along one axis on either layout (the loop; ``buffer.softmax`` and ``image.softmax``
check arguments and pick the view).

A tensor is seen as a 5-D view ``(P, Q, R, L, B)`` with the softmax axis as L,
so that an output region is a box over (q, r, b) with the whole of L: per
(p, q, r) the loops run along the contiguous B axis.  Numerically stable
(the maximum is subtracted before exponentiating).

IEEE: the maximum propagates NaN, so a NaN anywhere along the axis makes that
whole softmax NaN, as in the float64 reference (``x - max(x)``); so does an
inf (inf - inf); -inf entries get 0 and an all -inf axis gives NaN.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["softmax"]


@njit(nogil=True, cache=True)
def _softmax(x, out, q0, q1, r0, r1, b0, b1):
    """out[p, q, r, :, b] = softmax of x[p, q, r, :, b] over L, for q, r, b in the given ranges."""
    npp, _, _, length, _ = x.shape
    nb = b1 - b0
    if nb == 1:  # one softmax per (p, q, r): scalar loops along L, no per-step slices
        for p in range(npp):
            for q in range(q0, q1):
                for r in range(r0, r1):
                    _softmax_line(x[p, q, r, :, b0], out[p, q, r, :, b0])
        return
    m = np.empty(nb, np.float32)
    s = np.empty(nb, np.float32)
    for p in range(npp):
        for q in range(q0, q1):
            for r in range(r0, r1):
                xo = x[p, q, r]
                yo = out[p, q, r]
                first = xo[0, b0:b1]
                for i in range(nb):
                    m[i] = first[i]
                    s[i] = 0.0
                for j in range(1, length):
                    xr = xo[j, b0:b1]
                    for i in range(nb):
                        v = xr[i]
                        m[i] = v if (v > m[i] or v != v) else m[i]
                for j in range(length):
                    xr = xo[j, b0:b1]
                    yr = yo[j, b0:b1]
                    for i in range(nb):
                        e = np.exp(xr[i] - m[i])
                        yr[i] = e
                        s[i] += e
                for i in range(nb):
                    s[i] = np.float32(1.0) / s[i]
                for j in range(length):
                    yr = yo[j, b0:b1]
                    for i in range(nb):
                        yr[i] *= s[i]


@njit(nogil=True, cache=True)
def _softmax_line(xl, yl):
    """yl = softmax of the 1-D xl, in the same operations and order as :func:`_softmax`'s lanes."""
    m = xl[0]
    for j in range(1, xl.size):
        v = xl[j]
        m = v if (v > m or v != v) else m
    s = np.float32(0.0)
    for j in range(xl.size):
        e = np.exp(xl[j] - m)
        yl[j] = e
        s += e
    s = np.float32(1.0) / s
    for j in range(xl.size):
        yl[j] *= s


def softmax(x, out, view, box) -> None:
    """Softmax of ``x`` into ``out`` (both C-contiguous) seen as the 5-D ``view``, over the
    box ``((q0, q1), (r0, r1), (b0, b1))`` of it."""
    (q0, q1), (r0, r1), (b0, b1) = box
    if q0 < q1 and r0 < r1 and b0 < b1:
        _softmax(x.reshape(view), out.reshape(view), q0, q1, r0, r1, b0, b1)
