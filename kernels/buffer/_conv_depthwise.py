"""Depthwise convolution (one input channel per group): a direct loop over output rows.

Output channel m reads input channel ``m // multiplier``.  That channel is
first copied into padded, stride-split planes (``_conv_planes``), where the
input under filter tap (r, s) for 32 consecutive output pixels of a row is
one contiguous run.  Sixteen outputs of each of four rows then keep one
vector accumulator each, starting from the bias, and add ``w[m, 0, r, s]``
times the run for every tap: kh*kw fused multiply-adds per vector, four
independent chains, no bounds checks.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_planes import build_planes, plane_offsets
from ._conv_simd import WIDTH, vbroadcast, vfma, vload, vmax0, vstore_first


@njit(nogil=True, fastmath=True, cache=True)
def conv_depthwise(x, w, bias, out, xq, N, C, H, W, OC, OH, OW, R, S, sh, sw, dh, dw, pt, pl,
                   r0, r1, c0, c1, relu):
    """Output rows [r0, r1) and channels [c0, c1) of a depthwise conv (flattened arrays).

    ``xq`` holds the planes of one channel: ``sh*sw*Hq*Wq + 32 + Wq`` floats.
    """
    mult = OC // C
    RS = R * S
    Hq = (r1 - r0) + (dh * (R - 1)) // sh
    Wq = OW + (dw * (S - 1)) // sw
    one = np.int64(1)  # not a literal: keeps build_planes and plane_offsets to one signature
    koff = plane_offsets(one, R, S, sh, sw, dh, dw, Hq, Wq)
    for n in range(N):
        built = -1
        for m in range(c0, c1):
            ic = m // mult
            if ic != built:
                build_planes(x, (n * C + ic) * H * W, one, H, W, sh, sw, pt, pl, r0, Hq, Wq, xq)
                built = ic
            wm = m * RS
            o = (n * OC + m) * OH * OW
            for oh in range(r0, r1, 4):
                # Four output rows at once (the last ones repeat row r1 - 1 when
                # fewer are left): four independent chains of multiply-adds.
                q0 = (oh - r0) * Wq
                q1 = (min(oh + 1, r1 - 1) - r0) * Wq
                q2 = (min(oh + 2, r1 - 1) - r0) * Wq
                q3 = (min(oh + 3, r1 - 1) - r0) * Wq
                for ow in range(0, OW, WIDTH):
                    a0 = vbroadcast(bias, m)
                    a1 = a0
                    a2 = a0
                    a3 = a0
                    for t in range(RS):
                        wt = vbroadcast(w, wm + t)
                        src = koff[t] + ow
                        a0 = vfma(wt, vload(xq, src + q0), a0)
                        a1 = vfma(wt, vload(xq, src + q1), a1)
                        a2 = vfma(wt, vload(xq, src + q2), a2)
                        a3 = vfma(wt, vload(xq, src + q3), a3)
                    if relu:
                        a0 = vmax0(a0)
                        a1 = vmax0(a1)
                        a2 = vmax0(a2)
                        a3 = vmax0(a3)
                    nv = min(WIDTH, OW - ow)
                    vstore_first(out, o + oh * OW + ow, a0, nv)
                    vstore_first(out, o + min(oh + 1, r1 - 1) * OW + ow, a1, nv)
                    vstore_first(out, o + min(oh + 2, r1 - 1) * OW + ow, a2, nv)
                    vstore_first(out, o + min(oh + 3, r1 - 1) * OW + ow, a3, nv)
