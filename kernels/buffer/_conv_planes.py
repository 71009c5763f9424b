"""Convolution as GEMM over shifted windows of padded, stride-split input planes.

The input of one group is copied once into planes with the padding made
explicit and the stride split out: plane (ic, a, b) holds

    planes[ic, a, b][i, j] = x[ic, (r0 + i)*sh + a - pt, j*sw + b - pl]   (0 outside x)

for ``i < Hq``, ``j < Wq``.  Filter tap (ic, r, s), with rr = r*dh and
ss = s*dw, then reads plane (ic, rr % sh, ss % sw) at row ``oh - r0 + rr // sh``
and column ``ow + ss // sw``.  Numbering the output pixels ``q = (oh - r0)*Wq + ow``
(a row pitch of Wq >= OW), row k of the GEMM's B is the contiguous run
``planes[koff[k] + q]``: no im2col copy per tap.  Columns ``ow >= OW`` of that
numbering are junk, computed and dropped when a tile is written out, so this
path suits wide outputs where Wq - OW is small next to Wq.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_simd import FASTMATH, WIDTH, vload_first, vstore_first, vzero
from .gemm import MR, NR, tile_full


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


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def plane_offsets(cg, R, S, sh, sw, dh, dw, Hq, Wq):
    """``koff[k]``: where filter tap k = (ic, r, s) starts reading the planes."""
    HWq = Hq * Wq
    koff = np.empty(cg * R * S, np.int64)
    for ic in range(cg):
        for r in range(R):
            rr = r * dh
            for s in range(S):
                ss = s * dw
                plane = (ic * sh + rr % sh) * sw + ss % sw
                koff[(ic * R + r) * S + s] = plane * HWq + (rr // sh) * Wq + ss // sw
    return koff


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def panel_runs(j0, ncols, Wq, OW, r0, run_t, run_o, run_n):
    """Runs of panel columns ``[j0, j0 + NR)`` that are output pixels; returns their count.

    Run e is columns ``run_t[e] .. + run_n[e]`` of the panel, which are output
    pixels ``run_o[e] ..`` (offsets in one output channel).
    """
    count = 0
    t = 0
    tend = min(NR, ncols - j0)
    while t < tend:
        q = j0 + t
        ohr = q // Wq
        ow = q - ohr * Wq
        length = min(tend - t, Wq - ow)
        if ow < OW:
            run_t[count] = t
            run_o[count] = (r0 + ohr) * OW + ow
            run_n[count] = min(length, OW - ow)
            count += 1
        t += length
    return count


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def copy_runs(acc, a_off, out, o_off, rows, ldo, nrun, run_t, run_o, run_n):
    """Rows ``acc[a_off + i*NR + run_t[e] ...]`` -> ``out[o_off + i*ldo + run_o[e] ...]``, i < rows."""
    for i in range(rows):
        for e in range(nrun):
            o = o_off + i * ldo + run_o[e]
            a = a_off + i * NR + run_t[e]
            for h in range(0, run_n[e], WIDTH):
                m = min(WIDTH, run_n[e] - h)
                vstore_first(out, o + h, vload_first(acc, a + h, m), m)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_planes(x, w, bias, out, xq, acc,
                N, C, H, W, OC, OH, OW, R, S, sh, sw, dh, dw, pt, pl, groups,
                r0, r1, c0, c1, relu, kc_max):
    """Output rows [r0, r1) and channels [c0, c1) of a grouped conv, all images (flattened arrays).

    ``xq`` holds ``cg*sh*sw*Hq*Wq + PLANE_SLACK + Wq`` floats; ``acc`` holds NR columns
    for each output channel of the region rounded up to MR rows.

    One NR-column panel at a time, over k blocks of ``kc_max`` taps, tiles of MR
    channels accumulate into ``out`` directly where the panel is NR pixels of
    one output row and the tile has MR channels, else into ``acc``, whose
    pixel runs are copied out at the end.
    """
    cg = C // groups
    mg = OC // groups
    K = cg * R * S
    OHW = OH * OW
    Hq = (r1 - r0) + (dh * (R - 1)) // sh
    Wq = OW + (dw * (S - 1)) // sw
    koff = plane_offsets(cg, R, S, sh, sw, dh, dw, Hq, Wq)
    ncols = (r1 - r0) * Wq
    nr = np.int64(NR)
    run_t = np.empty(NR + 2, np.int64)
    run_o = np.empty(NR + 2, np.int64)
    run_n = np.empty(NR + 2, np.int64)
    for n in range(N):
        for g in range(groups):
            m_lo = max(c0, g * mg)
            m_hi = min(c1, g * mg + mg)
            if m_lo >= m_hi:
                continue
            build_planes(x, (n * C + g * cg) * H * W, cg, H, W, sh, sw, pt, pl, r0, Hq, Wq, xq)
            for j0 in range(0, ncols, NR):
                nrun = panel_runs(j0, ncols, Wq, OW, r0, run_t, run_o, run_n)
                whole = nrun == 1 and run_n[0] == NR
                for pc in range(0, K, kc_max):
                    kc = min(kc_max, K - pc)
                    first = 1 if pc == 0 else 0
                    last_relu = 1 if relu != 0 and pc + kc == K else 0
                    for m0 in range(m_lo, m_hi, MR):
                        mv = min(MR, m_hi - m0)
                        if whole and mv == MR:
                            tile_full(w, m0 * K + pc, K, mv, xq, j0, koff[pc:], kc, out,
                                      (n * OC + m0) * OHW + run_o[0], OHW, bias, m0, first, last_relu)
                        else:
                            tile_full(w, m0 * K + pc, K, mv, xq, j0, koff[pc:], kc, acc,
                                      (m0 - m_lo) * NR, nr, bias, m0, first, last_relu)
                for m0 in range(m_lo, m_hi, MR):
                    mv = min(MR, m_hi - m0)
                    if not (whole and mv == MR):
                        copy_runs(acc, (m0 - m_lo) * NR, out, (n * OC + m0) * OHW, mv, OHW,
                                  nrun, run_t, run_o, run_n)
