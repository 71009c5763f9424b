"""Depthwise conv on either layout (the loops; ``buffer.conv`` and ``image.conv`` check arguments).

Output plane m reads input plane ``m // multiplier`` (one filter per output
channel).  Per band of output rows the input rows it reads are built
(``_window``: zero padding, split by column phase for stride 2), once per
input plane; then each block of ``VW`` output floats starts from the bias and
takes one fused multiply-add per tap, in (i, j) order.  For 3x3 filters with
stride 1 or 2, four output rows are computed at once with the nine weight
vectors in registers: each input vector loaded feeds every row whose window
holds it, as four independent chains (the grouping changes no value).
Fused ReLU is ``max(y, 0)`` keeping NaN.

Padding is zeros that are multiplied like any input (so a tap weight of inf
over padding gives NaN, as the reference's zero-padded product does); NaN and
inf flow through the multiply-adds as IEEE says.  Each output is computed by
the same sequence of operations in any region, so regions reproduce the
whole output bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._simd import (VW, vevens, vfill_outside, vfma, vload, vload_in, vodds, vrelu, vsplat, vstore, vstore_first,
                    vtexels)
from ._window import row_geometry, scratch, tap_columns

__all__ = ["depthwise"]

#: Floats of built input rows per band: the band stays in L1/L2 while its taps run.
BAND_FLOATS = 12 * 1024


@njit(nogil=True, cache=True, inline="always")
def _row(ih, lo, h, rs, zero_row):
    """Scratch offset of built input row ``ih``: the zero row when it is outside x or
    past the built rows (rows read only by outputs that are not stored)."""
    q = (ih - lo) * rs
    return q if 0 <= ih < h and q < zero_row else zero_row


@njit(nogil=True, cache=True, inline="always")
def _taps3(acc, a, b, c, wa, wb, wc):
    """acc + a*wa + b*wb + c*wc as three fused multiply-adds, in that order."""
    return vfma(c, wc, vfma(b, wb, vfma(a, wa, acc)))


def _make():

    @njit(nogil=True, cache=True)
    def depthwise(xf, of, p, coff, w, bias, wvec, cell, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow,
                  kh, kw, sh, sw, dh, pt, pl, wq, wql, rows, relu, r0, r1, c0, c1):
        """Depthwise conv of output rows [r0, r1) of output planes c0..c1-1 (module doc).

        Output plane m reads input plane ``m // mult``.  Plane (n, c) of x starts at
        float ``n*sxn + c*sxc`` (``h`` rows ``rs_x`` floats apart, ``wc`` cells), of out
        at ``n*son + m*soc`` (rows ``ors`` apart, ``ow`` cells).  ``w`` holds per output
        plane its ``kh*kw`` tap weights (cell 1) or tap texels (cell 4); ``bias`` per
        plane a float (cell 1) or texel (cell 4).  ``p`` is a zero-filled scratch of
        ``rows`` bands plus a zero row (rows outside x read it); ``wvec`` holds the
        taps' weight vectors of one plane.
        """
        owl = ow * cell
        rl = wc * cell
        taps = kh * kw
        rs = sw * wql
        fast = kh == 3 and kw == 3 and dh == 1 and coff[1] >= 0 and (sh == 1 or sh == 2)
        j1 = coff[1] if kw > 1 else 0
        j2 = coff[2] if kw > 2 else 0
        zero_row = (p.size // rs - 1) * rs
        span = min(rl, wq * cell) if sw == 1 else min(rl, 2 * wq * cell)
        da = (pl % 2) * wql + (pl // 2) * cell
        db = ((pl + 1) % 2) * wql + ((pl + 1) // 2) * cell
        for n in range(nb):
            built = -1
            for m in range(c0, c1):
                ic = m // mult
                ob = n * son + m * soc
                for t in range(taps):
                    if cell == 1:
                        vstore(wvec, t * VW, vsplat(w[m * taps + t]))
                    else:
                        vstore(wvec, t * VW, vtexels(w, (m * taps + t) * 4))
                vb = vsplat(bias[m]) if cell == 1 else vtexels(bias, 4 * m)
                # The 3x3 path keeps the nine weight vectors in registers (wvec holds >= 9).
                w00, w01, w02 = vload(wvec, 0), vload(wvec, VW), vload(wvec, 2 * VW)
                w10, w11, w12 = vload(wvec, 3 * VW), vload(wvec, 4 * VW), vload(wvec, 5 * VW)
                w20, w21, w22 = vload(wvec, 6 * VW), vload(wvec, 7 * VW), vload(wvec, 8 * VW)
                for a0 in range(r0, r1, rows):
                    a1 = min(a0 + rows, r1)
                    lo = a0 * sh - pt
                    if ic != built or a0 != r0 or a1 != r1:
                        # Build the input rows of the band (see the module doc).
                        xb = n * sxn + ic * sxc
                        for r in range(max(lo, 0), min((a1 - 1) * sh - pt + dh * (kh - 1) + 1, h)):
                            src = xb + r * rs_x
                            dst = (r - lo) * rs
                            safe_row = src + rl + 2 * VW <= xf.size
                            if sw > 2:
                                for ph in range(sw):
                                    for s in range(wq):
                                        c = s * sw + ph - pl
                                        if 0 <= c < wc:
                                            for q in range(cell):
                                                p[np.uint64(dst + ph * wql + s * cell + q)] = xf[
                                                    np.uint64(src + c * cell + q)]
                                continue
                            step = VW if sw == 1 else 2 * VW
                            for k in range(0, span, step):
                                if k + step <= rl or safe_row:
                                    va = vload(xf, src + k)
                                    vb2 = vload(xf, src + k + VW) if sw == 2 else va
                                    if k + step > rl:
                                        va = vfill_outside(va, k, 0, rl, np.float32(0.0))
                                        vb2 = vfill_outside(vb2, k + VW, 0, rl, np.float32(0.0))
                                else:
                                    va = vload_in(xf, src + k, src, src + rl, np.float32(0.0))
                                    vb2 = vload_in(xf, src + k + VW, src, src + rl, np.float32(0.0))
                                if sw == 1:
                                    vstore(p, dst + pl * cell + k, va)
                                else:
                                    if cell == 1:
                                        ea, eb = vevens(va, vb2, 1), vodds(va, vb2, 1)
                                    else:
                                        ea, eb = vevens(va, vb2, 4), vodds(va, vb2, 4)
                                    vstore(p, dst + da + k // 2, ea)
                                    vstore(p, dst + db + k // 2, eb)
                        built = ic
                    for oh in range(a0, a1, 4):
                        nr = min(4, a1 - oh)
                        hs = oh * sh - pt
                        later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                        if fast:
                            # 3x3 taps of four output rows at once: each input vector loaded feeds
                            # every row whose window holds it, as four independent chains, and
                            # each row still takes its taps in (i, j) order.
                            q0 = _row(hs, lo, h, rs, zero_row)
                            q1 = _row(hs + 1, lo, h, rs, zero_row)
                            q2 = _row(hs + 2, lo, h, rs, zero_row)
                            q3 = _row(hs + 3, lo, h, rs, zero_row)
                            q4 = _row(hs + 4, lo, h, rs, zero_row)
                            q5 = _row(hs + 5, lo, h, rs, zero_row)
                            q6 = _row(hs + 6, lo, h, rs, zero_row)
                            q7 = _row(hs + 7, lo, h, rs, zero_row)
                            q8 = _row(hs + 8, lo, h, rs, zero_row)
                            for e in range(0, owl, VW):
                                t0 = vb
                                t1 = vb
                                t2 = vb
                                t3 = vb
                                x0, x1, x2 = vload(p, q0 + e), vload(p, q0 + e + j1), vload(p, q0 + e + j2)
                                t0 = _taps3(t0, x0, x1, x2, w00, w01, w02)
                                x0, x1, x2 = vload(p, q1 + e), vload(p, q1 + e + j1), vload(p, q1 + e + j2)
                                t0 = _taps3(t0, x0, x1, x2, w10, w11, w12)
                                if sh == 1:
                                    t1 = _taps3(t1, x0, x1, x2, w00, w01, w02)
                                x0, x1, x2 = vload(p, q2 + e), vload(p, q2 + e + j1), vload(p, q2 + e + j2)
                                t0 = _taps3(t0, x0, x1, x2, w20, w21, w22)
                                if sh == 1:
                                    t1 = _taps3(t1, x0, x1, x2, w10, w11, w12)
                                    t2 = _taps3(t2, x0, x1, x2, w00, w01, w02)
                                    x0, x1, x2 = vload(p, q3 + e), vload(p, q3 + e + j1), vload(p, q3 + e + j2)
                                    t1 = _taps3(t1, x0, x1, x2, w20, w21, w22)
                                    t2 = _taps3(t2, x0, x1, x2, w10, w11, w12)
                                    t3 = _taps3(t3, x0, x1, x2, w00, w01, w02)
                                    x0, x1, x2 = vload(p, q4 + e), vload(p, q4 + e + j1), vload(p, q4 + e + j2)
                                    t2 = _taps3(t2, x0, x1, x2, w20, w21, w22)
                                    t3 = _taps3(t3, x0, x1, x2, w10, w11, w12)
                                    x0, x1, x2 = vload(p, q5 + e), vload(p, q5 + e + j1), vload(p, q5 + e + j2)
                                    t3 = _taps3(t3, x0, x1, x2, w20, w21, w22)
                                else:
                                    t1 = _taps3(t1, x0, x1, x2, w00, w01, w02)
                                    x0, x1, x2 = vload(p, q3 + e), vload(p, q3 + e + j1), vload(p, q3 + e + j2)
                                    t1 = _taps3(t1, x0, x1, x2, w10, w11, w12)
                                    x0, x1, x2 = vload(p, q4 + e), vload(p, q4 + e + j1), vload(p, q4 + e + j2)
                                    t1 = _taps3(t1, x0, x1, x2, w20, w21, w22)
                                    t2 = _taps3(t2, x0, x1, x2, w00, w01, w02)
                                    x0, x1, x2 = vload(p, q5 + e), vload(p, q5 + e + j1), vload(p, q5 + e + j2)
                                    t2 = _taps3(t2, x0, x1, x2, w10, w11, w12)
                                    x0, x1, x2 = vload(p, q6 + e), vload(p, q6 + e + j1), vload(p, q6 + e + j2)
                                    t2 = _taps3(t2, x0, x1, x2, w20, w21, w22)
                                    t3 = _taps3(t3, x0, x1, x2, w00, w01, w02)
                                    x0, x1, x2 = vload(p, q7 + e), vload(p, q7 + e + j1), vload(p, q7 + e + j2)
                                    t3 = _taps3(t3, x0, x1, x2, w10, w11, w12)
                                    x0, x1, x2 = vload(p, q8 + e), vload(p, q8 + e + j1), vload(p, q8 + e + j2)
                                    t3 = _taps3(t3, x0, x1, x2, w20, w21, w22)
                                for t in range(nr):
                                    acc = t0 if t == 0 else (t1 if t == 1 else (t2 if t == 2 else t3))
                                    if relu:
                                        acc = vrelu(acc)
                                    o = ob + (oh + t) * ors + e
                                    # A buffer row's spill past its end would land in the next row,
                                    # which is written later only for the group's last row.
                                    if e + VW <= owl or (o + VW <= later and (cell == 4 or t == nr - 1)):
                                        vstore(of, o, acc)
                                    else:
                                        vstore_first(of, o, acc, owl - e)
                            continue
                        for t in range(nr):
                            hs = (oh + t) * sh - pt
                            orow = ob + (oh + t) * ors
                            for e in range(0, owl, VW):
                                acc = vb
                                for i in range(kh):
                                    base = _row(hs + i * dh, lo, h, rs, zero_row) + e
                                    for j in range(kw):
                                        acc = vfma(vload(p, base + coff[j]), vload(wvec, (i * kw + j) * VW), acc)
                                if relu:
                                    acc = vrelu(acc)
                                if e + VW <= owl or (orow + e + VW <= later and (cell == 4 or t == nr - 1)):
                                    vstore(of, orow + e, acc)
                                else:
                                    vstore_first(of, orow + e, acc, owl - e)

    return depthwise


_KERNELS: dict = {}


def _kernel():
    """The compiled kernel (one serves both layouts), made on first use."""
    if not _KERNELS:
        _KERNELS["depthwise"] = _make()
    return _KERNELS["depthwise"]


def depthwise(x, w, bias, out, cell, mult, planes, kernel, stride, dilation, pads, relu, region):
    """Depthwise conv of ``x`` into ``out`` (checked, C-contiguous), output rows [r0, r1) of
    output planes [c0, c1).

    ``w`` holds per output plane its taps' weights (cell 1: ``(OC, KH*KW)``; cell 4:
    texels ``(OCB, KH, KW, 4)``); ``bias`` per plane a float (cell 1) or texel (cell 4).
    ``planes`` is as in ``_pool.pool``.
    """
    nb, xs, os_, h, wd, oh, ow = planes
    (kh, kw), (sh, sw), (dh, dw), r0, r1, c0, c1 = kernel, stride, dilation, *region
    pt, pl = pads[0], pads[1]
    wq, wql = row_geometry(ow, cell, kw, sw, dw, pl)
    rs = sw * wql
    span = dh * (kh - 1) + 1
    rows = max(1, min(r1 - r0, (BAND_FLOATS // rs - span) // sh + 1))
    size = ((rows - 1) * sh + span + 1) * rs
    p = scratch("depthwise", size, 0.0, (cell, sw, wql, pl, wd))
    wvec = scratch("depthwise_w", max(9, kh * kw) * VW, 0.0, None)
    _kernel()(x.reshape(-1), out.reshape(-1), p[:size], tap_columns(kw, sw, dw, wql, cell), w.reshape(-1),
                  bias, wvec, cell, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, pt, pl, wq, wql, rows,
                  bool(relu), r0, r1, c0, c1)
