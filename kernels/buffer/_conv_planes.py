"""Padded, stride-split input planes: where every filter tap reads a contiguous run.

The input of one group is copied once into planes with the padding made
explicit and the stride split out: plane (ic, a, b) holds

    planes[ic, a, b][i, j] = x[ic, (r0 + i)*sh + a - pt, j*sw + b - pl]   (0 outside x)

for ``i < Hq``, ``j < Wq``.  Filter tap (ic, r, s), with rr = r*dh and
ss = s*dw, then reads plane (ic, rr % sh, ss % sw) at row ``oh - r0 + rr // sh``
and column ``ow + ss // sw``.  Numbering the output pixels ``q = (oh - r0)*Wq + ow``
(a row pitch of Wq >= OW), tap k over a run of output pixels is the
contiguous run ``planes[koff[k] + q]``: no im2col copy per tap.  The conv
tiles (``_conv_pixels``) and the depthwise loop read their input from these
planes.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._conv_simd import FASTMATH, WIDTH, vload_first, vstore_first, vzero


# Zeroed floats after the planes, which tiles and the depthwise loop may read.
PLANE_SLACK = 32


def plane_geometry(OW, R, S, sh, sw, dh, dw, nrows):
    """(Hq, Wq): plane rows and columns for ``nrows`` output rows."""
    return nrows + (dh * (R - 1)) // sh, OW + (dw * (S - 1)) // sw


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def build_planes(x, x_off, cg, H, W, sh, sw, pt, pl, row0, Hq, Wq, xq):
    """Fill ``xq`` with the cg * sh * sw planes of one group (see the module docstring).

    ``xq`` holds at least ``cg*sh*sw*Hq*Wq + PLANE_SLACK + Wq`` floats; the tail is zeroed
    so a tile may read past the last plane.
    """
    HWq = Hq * Wq
    for ic in range(cg):
        xc = x_off + ic * H * W
        for a in range(sh):
            for b in range(sw):
                base = ((ic * sh + a) * sw + b) * HWq
                # Columns j with 0 <= j*sw + b - pl < W.
                lo = min(max(0, -((b - pl) // sw)), Wq)
                hi = max(min(Wq, -((b - pl - W) // sw)), lo)
                for i in range(Hq):
                    d = base + i * Wq
                    ih = (row0 + i) * sh + a - pt
                    if ih < 0 or ih >= H:
                        _fill_zero(xq, d, Wq)
                        continue
                    src = xc + ih * W + b - pl
                    _fill_zero(xq, d, lo)
                    if sw == 1:
                        for j in range(lo, hi, WIDTH):
                            m = min(WIDTH, hi - j)
                            vstore_first(xq, d + j, vload_first(x, src + j, m), m)
                    else:
                        # Unsigned indices: no negative-index wraparound, so LLVM can gather.
                        for j in range(lo, hi):
                            xq[np.uint64(d + j)] = x[np.uint64(src + j * sw)]
                    _fill_zero(xq, d + hi, Wq - hi)
    _fill_zero(xq, cg * sh * sw * HWq, PLANE_SLACK + Wq)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _fill_zero(a, start, count):
    """a[start:start+count] = 0."""
    zero = vzero()
    for j in range(0, count, WIDTH):
        vstore_first(a, start + j, zero, min(WIDTH, count - j))
