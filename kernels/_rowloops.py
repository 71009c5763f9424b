"""Element-wise loops over 3-D views ``(a, b, e)`` of contiguous tensors.

Both layouts reshape their tensors so that a region is ``b`` in [b0, b1) and
``e`` in [e0, e1) of every ``a``: NCHW buffers as (N, C, H*W) or (N*C, H, W),
images as (N, H, CB*W*4).  The innermost run is contiguous, so it vectorises.

IEEE: ``max(v, lo)`` and ``min(v, hi)`` keep a NaN ``v`` (the comparison is false
for NaN, so the value itself is returned), so ReLU, Clip and a fused ReLU after
Add propagate NaN; no fast-math flag is set.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def clamp_rows(x, out, lo, hi, use_lo, use_hi, b0, b1, e0, e1):
    """out = x clamped below by ``lo`` (if use_lo) and above by ``hi`` (if use_hi), over the region.

    A bound not in use is -inf (below) or +inf (above), which leaves every value as it is,
    NaN and -0.0 included, so one loop serves ReLU, Clip and a copy (it compiles to less
    code than a loop for each case; the extra compare is free in this memory-bound loop).
    """
    if not use_lo:
        lo = np.float32(-np.inf)
    if not use_hi:
        hi = np.float32(np.inf)
    for a in range(x.shape[0]):
        for b in range(b0, b1):
            xr = x[a, b, e0:e1]
            orow = out[a, b, e0:e1]
            for i in range(e1 - e0):
                orow[i] = min(max(xr[i], lo), hi)


@njit(nogil=True, cache=True)
def add_rows(x, y, out, relu, b0, b1, e0, e1):
    """out = x + y (then max(., 0) if relu) over the region."""
    for a in range(x.shape[0]):
        for b in range(b0, b1):
            xr = x[a, b, e0:e1]
            yr = y[a, b, e0:e1]
            orow = out[a, b, e0:e1]
            if relu:
                for i in range(e1 - e0):
                    orow[i] = max(xr[i] + yr[i], np.float32(0.0))
            else:
                for i in range(e1 - e0):
                    orow[i] = xr[i] + yr[i]
