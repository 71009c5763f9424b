"""1x1, stride-1, unpadded convolution: a GEMM whose B is the NCHW input itself.

``out[m, p] = bias[m] + sum_ic w[m, ic] * x[ic, p]``: row ic of B is channel
ic of the input, so full NR-pixel panels are read in place and only the last,
partial panel of a block is copied (with zero fill) so that no read leaves
``x``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_simd import FASTMATH
from .gemm import NR, gemm_block


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def pack_tail(x, x_off, HW, k0, kc, p0, nv, bp):
    """``bp[kk, j] = x[x_off + (k0 + kk) * HW + p0 + j]`` for j < nv, else 0 (one panel)."""
    for kk in range(kc):
        s = x_off + (k0 + kk) * HW + p0
        d = kk * NR
        for j in range(nv):
            bp[d + j] = x[s + j]
        for j in range(nv, NR):
            bp[d + j] = 0.0


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_1x1(x, w, bias, out, bp, tile, N, C, HW, OC, groups, p0, p1, c0, c1, relu, kc_max, nc_max):
    """Output pixels [p0, p1) and channels [c0, c1) of a grouped 1x1 conv (flattened arrays).

    ``bp`` holds ``kc_max * NR`` floats, ``tile`` MR * NR.
    """
    cg = C // groups
    mg = OC // groups
    koff_x = np.empty(kc_max, np.int64)
    koff_packed = np.empty(kc_max, np.int64)
    for k in range(kc_max):
        koff_x[k] = k * HW
        koff_packed[k] = k * NR
    for n in range(N):
        for g in range(groups):
            m_lo = max(c0, g * mg)
            m_hi = min(c1, g * mg + mg)
            if m_lo >= m_hi:
                continue
            x_off = (n * C + g * cg) * HW
            c_off = (n * OC + m_lo) * HW
            for jc in range(p0, p1, nc_max):
                nc = min(nc_max, p1 - jc)
                full = nc // NR * NR
                for pc in range(0, cg, kc_max):
                    kc = min(kc_max, cg - pc)
                    first = 1 if pc == 0 else 0
                    last_relu = 1 if relu != 0 and pc + kc == cg else 0
                    a_off = m_lo * cg + pc
                    if full > 0:
                        gemm_block(w, a_off, cg, m_hi - m_lo, x, x_off + pc * HW + jc, koff_x, np.int64(NR),
                                   kc, full, out, c_off + jc, HW, bias, m_lo, first, last_relu, tile)
                    if full < nc:
                        pack_tail(x, x_off, HW, pc, kc, jc + full, nc - full, bp)
                        gemm_block(w, a_off, cg, m_hi - m_lo, bp, np.int64(0), koff_packed, kc * NR,
                                   kc, nc - full, out, c_off + jc + full, HW, bias, m_lo,
                                   first, last_relu, tile)
