"""Image resize on NCHW float32 buffers: bilinear and area (box filter).

- ``bilinear``: ONNX Resize mode=linear, coordinate_transformation_mode=half_pixel,
  no antialias; source coordinates are clamped to the edge.
- ``area``: each output cell is the mean of the input area it covers, cells at
  the box edges weighted by the fraction covered.  It is separable: per output
  row, the covered input rows are summed with their weights into one row
  (contiguous, vectorised), then that row is reduced along W.  This is the
  photo-shrinking step of the mobile benchmark (a 4K frame to 224x224).

Per-axis index and weight tables are computed once per (input, output) length.
NaN and inf flow through the weighted sums as IEEE says (a tap of weight 0 on a
NaN still gives NaN, as in the reference's matrix product).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from .. import args as _args

__all__ = ["resize"]

MODES = ("bilinear", "area")


@lru_cache(maxsize=64)
def _linear_table(n_in: int, n_out: int):
    """Half-pixel source positions -> (first index, second index, weight of the second)."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


@lru_cache(maxsize=64)
def _area_table(n_in: int, n_out: int):
    """Box-filter taps per output cell, CSR-like: (first input index, tap offsets, tap weights).

    Output cell i covers input [i*n_in/n_out, (i+1)*n_in/n_out).  Positions are
    kept in units of 1/n_out, so the coverage is exact integer arithmetic.
    """
    i = np.arange(n_out, dtype=np.int64)
    lo, hi = i * n_in, (i + 1) * n_in
    first = lo // n_out
    last = -(-hi // n_out)  # exclusive
    taps = last - first
    ptr = np.zeros(n_out + 1, np.int64)
    np.cumsum(taps, out=ptr[1:])
    owner = np.repeat(i, taps)
    j = first[owner] + (np.arange(ptr[-1]) - ptr[owner])
    cover = np.minimum(hi[owner], (j + 1) * n_out) - np.maximum(lo[owner], j * n_out)
    return first, ptr, (cover / n_in).astype(np.float32)


@njit(nogil=True, cache=True)
def _bilinear(x, out, h0, h1, fh, w0, w1, fw):
    nb, nc, oh, ow = out.shape
    for n in range(nb):
        for c in range(nc):
            for r in range(oh):
                top = x[n, c, h0[r]]
                bot = x[n, c, h1[r]]
                b = fh[r]
                a = np.float32(1.0) - b
                orow = out[n, c, r]
                for i in range(ow):
                    q = fw[i]
                    p = np.float32(1.0) - q
                    t = top[w0[i]] * p + top[w1[i]] * q
                    u = bot[w0[i]] * p + bot[w1[i]] * q
                    orow[i] = t * a + u * b


@njit(nogil=True, cache=True)
def _area(x, out, hfirst, hptr, hwt, wfirst, wptr, wwt):
    nb, nc, oh, ow = out.shape
    w = x.shape[3]
    row = np.empty(w, np.float32)
    for n in range(nb):
        for c in range(nc):
            for r in range(oh):
                # Rows pass: weighted sum of the covered input rows.
                for i in range(w):
                    row[i] = 0.0
                for t in range(hptr[r], hptr[r + 1]):
                    wt = hwt[t]
                    xrow = x[n, c, hfirst[r] + t - hptr[r]]
                    for i in range(w):
                        row[i] += wt * xrow[i]
                # Columns pass on that one row.
                orow = out[n, c, r]
                for i in range(ow):
                    taps = wptr[i + 1] - wptr[i]
                    seg = row[wfirst[i]:wfirst[i] + taps]
                    wts = wwt[wptr[i]:wptr[i + 1]]
                    s = np.float32(0.0)
                    for t in range(taps):
                        s += wts[t] * seg[t]
                    orow[i] = s


def resize(x, size, *, mode="bilinear", out=None) -> np.ndarray:
    """Resize x (N, C, H, W) to ``size=(out_h, out_w)`` with ``mode`` 'bilinear' or 'area'."""
    op = "resize"
    x = _args.array(op, "x", x, 4)
    oh, ow = _args.pair(op, "size", size)
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    nb, nc, h, w = x.shape
    if min(x.shape) < 1:
        raise ValueError(f"{op}: x must have no empty axis, got shape {x.shape}")
    shape = (nb, nc, oh, ow)
    out = np.empty(shape, np.float32) if out is None else _args.out_array(op, out, shape)
    if np.may_share_memory(out, x):
        raise ValueError(f"{op}: out must not overlap x")
    if mode == "bilinear":
        _bilinear(x, out, *_linear_table(h, oh), *_linear_table(w, ow))
    else:
        _area(x, out, *_area_table(h, oh), *_area_table(w, ow))
    return out
