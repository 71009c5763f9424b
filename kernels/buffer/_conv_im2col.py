"""Convolution as blocked GEMM over packed im2col panels.

For one image and one group, output channel m and output pixel p = oh*OW + ow:

    out[m, p] = bias[m] + sum_k w[m, k] * patch[k, p],  k = (ic, r, s) in OIHW order

The weights are the GEMM's A, read in place (each OIHW row is contiguous).
The patches are B.  The input is first laid out as padded, stride-split
planes (``_conv_planes``), where patch row k over one output row is a
contiguous run.  A block of ``kc`` patch rows by ``nc`` pixels is then packed
into NR-pixel panels by copying those runs, 16 floats at a time, used for
every output channel, and replaced by the next block.  Unlike the plane path,
no junk columns are computed, which suits narrow outputs (13x13, 27x27).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_planes import build_planes, plane_offsets
from ._conv_simd import FASTMATH, vload, vstore
from .gemm import NR, gemm_block


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def block_runs(p0, nc, OW, Wq, r0, run_j, run_q, run_first):
    """Split pixels [p0, p0 + nc) into runs inside one output row and one panel.

    Run e goes to column ``run_j[e]`` of its panel and reads plane offset
    ``run_q[e]`` (row pitch Wq, rows from r0); the runs of panel i are
    ``run_first[i] .. run_first[i + 1]``.
    """
    e = 0
    npanel = (nc + NR - 1) // NR
    for panel in range(npanel):
        run_first[panel] = e
        l = panel * NR
        lend = min(l + NR, nc)
        while l < lend:
            p = p0 + l
            oh = p // OW
            ow = p - oh * OW
            run_j[e] = l - panel * NR
            run_q[e] = (oh - r0) * Wq + ow
            e += 1
            l += min(lend - l, OW - ow)
    run_first[npanel] = e


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def pack_panels(xq, koff, k0, kc, nc, run_j, run_q, run_first, bp):
    """``bp[panel, kk, :]`` = patch row ``k0 + kk`` over the panel's pixels.

    Each run is copied as one or two 16-float vectors; the excess lands on
    slots written later (panels in order, rows in order, runs in order), so
    ``bp`` needs NR floats of slack and the last panel's tail columns hold
    finite junk that the GEMM computes and drops.
    """
    npanel = (nc + NR - 1) // NR
    for panel in range(npanel):
        d_panel = panel * kc * NR
        e0 = run_first[panel]
        e1 = run_first[panel + 1]
        width = min(NR, nc - panel * NR)
        for kk in range(kc):
            src = koff[k0 + kk]
            d = d_panel + kk * NR
            for e in range(e0, e1):
                s = src + run_q[e]
                t = d + run_j[e]
                vstore(bp, t, vload(xq, s))
                end = run_j[e + 1] if e + 1 < e1 else width
                if end - run_j[e] > 16:
                    vstore(bp, t + 16, vload(xq, s + 16))


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_packed(x, w, bias, out, xq, bp, tile,
                N, C, H, W, OC, OH, OW, R, S, sh, sw, dh, dw, pt, pl, groups,
                r0, r1, c0, c1, relu, kc_max, nc_max):
    """Output rows [r0, r1) and channels [c0, c1) of a grouped conv, all images.

    ``x``, ``w``, ``bias``, ``out`` are the flattened NCHW / OIHW / (OC,) / NCHW
    arrays; ``xq`` holds the planes (``_conv_planes``), ``bp``
    ``kc_max * round_up(nc_max, NR) + NR`` floats, ``tile`` MR * NR.
    """
    cg = C // groups
    mg = OC // groups
    K = cg * R * S
    OHW = OH * OW
    Hq = (r1 - r0) + (dh * (R - 1)) // sh
    Wq = OW + (dw * (S - 1)) // sw
    koff = plane_offsets(cg, R, S, sh, sw, dh, dw, Hq, Wq)
    koff_packed = np.empty(kc_max, np.int64)
    for k in range(kc_max):
        koff_packed[k] = k * NR
    run_j = np.empty(nc_max + 2, np.int64)
    run_q = np.empty(nc_max + 2, np.int64)
    run_first = np.empty(nc_max // NR + 2, np.int64)
    pix0 = r0 * OW
    pix1 = r1 * OW
    for n in range(N):
        for g in range(groups):
            m_lo = max(c0, g * mg)
            m_hi = min(c1, g * mg + mg)
            if m_lo >= m_hi:
                continue
            build_planes(x, (n * C + g * cg) * H * W, cg, H, W, sh, sw, pt, pl, r0, Hq, Wq, xq)
            c_off = (n * OC + m_lo) * OHW
            for jc in range(pix0, pix1, nc_max):
                nc = min(nc_max, pix1 - jc)
                block_runs(jc, nc, OW, Wq, r0, run_j, run_q, run_first)
                for pc in range(0, K, kc_max):
                    kc = min(kc_max, K - pc)
                    first = 1 if pc == 0 else 0
                    last_relu = 1 if relu != 0 and pc + kc == K else 0
                    pack_panels(xq, koff, pc, kc, nc, run_j, run_q, run_first, bp)
                    gemm_block(w, m_lo * K + pc, K, m_hi - m_lo, bp, np.int64(0), koff_packed, kc * NR,
                               kc, nc, out, c_off + jc, OHW, bias, m_lo, first, last_relu, tile)
