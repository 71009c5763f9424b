"""Depthwise conv on either layout (the loops; ``buffer.conv`` and ``image.conv`` check arguments).

Output plane m reads input plane ``m // multiplier`` (one filter per output
channel).  Every output starts from the bias and takes one fused multiply-add
per tap, in (i, j) order.  Column strides 1 and 2: per output row, each block
of ``VW`` output floats reads tap (i, j) straight from input row i, at the
tap's offset (stride 1) or as the even cells of two vectors (stride 2), and
multiplies it with the tap's weight broadcast from the filter.  3x3 filters
(no dilation, equal strides) compute two output rows at once, unrolled: each
input row's three tap vectors feed both rows' multiply-adds.  Blocks whose
taps reach the row's padding load with lane masks (AVX-512), or plainly and
blend in zeros (AVX2, whose masked loads are slow) where the loads stay in the
array.  Larger column strides take a scalar loop.

The kernels are compiled per cell size (1 float for NCHW planes, 4 for image
texels): tap offsets are then constant displacements.  Padding is zeros that
are multiplied like any input (so a tap weight of inf over padding gives NaN,
as the reference's zero-padded product does); NaN and inf flow through the
multiply-adds as IEEE says.  Fused ReLU is ``max(y, 0)`` keeping NaN.  Each
output is computed by the same sequence of operations in any region, so
regions reproduce the whole output bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .target import isa
from ._simd import (VW, vcell, vevens, vfma, vlanes, vload, vload_mask, vodds, vpick, vrelu, vsplat, vstore, vstore_first,
                    vtexels)

__all__ = ["depthwise"]

#: Masked loads cost what plain loads do with AVX-512 (mask registers); with AVX2 they are
#: far slower, so edge blocks load plainly and blend in zeros where the loads stay in the array.
MASKED_LOADS = isa() == "avx512"


@njit(nogil=True, cache=True, inline="always")
def _fma3(acc, x0, x1, x2, w0, w1, w2):
    """acc + x0*w0 + x1*w1 + x2*w2 as three fused multiply-adds, in that order."""
    return vfma(x2, w2, vfma(x1, w1, vfma(x0, w0, acc)))


def _make_rows(cell):
    """The rows route on planes of ``cell``-float cells (a compile-time constant)."""

    @njit(nogil=True, cache=True)
    def rows(xf, of, w, bias, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, kh, kw, sh, sw, dh, dw, pt, pl,
             relu, r0, r1, c0, c1):
        """Depthwise conv of output rows [r0, r1) of output planes c0..c1-1 (module doc).

        Plane (n, c) of x starts at float ``n*sxn + c*sxc`` (``h`` rows ``rs_x`` floats apart,
        ``wc`` cells), of out at ``n*son + m*soc`` (rows ``ors`` apart, ``ow`` cells).  ``w``
        holds per output plane its ``kh*kw`` tap weights (cell 1) or tap texels (cell 4);
        ``bias`` per plane a float (cell 1) or texel (cell 4).  Rows outside x read zeros.
        3x3 filters without dilation compute two output rows at once: each input row's three
        tap vectors feed both rows' multiply-adds (each row still takes its taps in (i, j)
        order).
        """
        owl = ow * cell
        rl = wc * cell
        taps = kh * kw
        zero = vsplat(np.float32(0.0))
        three = kh == 3 and kw == 3 and dh == 1 and dw == 1 and sh == sw
        # The first block's lane masks (every row's first block reads the same columns).
        q = -pl * cell
        e0, e1, e2 = vlanes(q, rl), vlanes(q + cell, rl), vlanes(q + 2 * cell, rl)
        f0, f1 = vlanes(q + VW, rl), vlanes(q + 2 * cell + VW, rl)
        for n in range(nb):
            for m in range(c0, c1):
                xb = n * sxn + (m // mult) * sxc
                ob = n * son + m * soc
                wb = m * taps
                vb = vsplat(bias[m]) if cell == 1 else vtexels(bias, 4 * m)
                for oh in range(r0, r1, 2 if three else 1):
                    hs = oh * sh - pt
                    two = three and oh + 1 < r1
                    oc0 = 0
                    for e in range(0, owl, VW):
                        q0 = (sw * oc0 - pl) * cell  # row float of tap column 0's lane 0
                        # Plain loads unless a lane in use reads padding (or past the array).
                        # Else, with AVX2 (whose masked loads are slow), plain loads and blends
                        # where every load stays inside the array.
                        inside = xb + max(hs, 0) * rs_x + q0 >= 0 and (
                            xb + (min(hs + kh + sh, h) - 1) * rs_x + q0 + (kw - 1) * dw * cell + sw * VW <= xf.size)
                        plain = inside and q0 >= 0 and sw * (min(oc0 + VW // cell, ow) - 1) + (kw - 1) * dw - pl < wc
                        blend = inside and not MASKED_LOADS

                        acc0 = vb
                        acc1 = vb
                        if three and sw == 1:
                            m0, m1, m2 = e0, e1, e2
                            if e > 0:
                                m0, m1, m2 = vlanes(q0, rl), vlanes(q0 + cell, rl), vlanes(q0 + 2 * cell, rl)
                            for k in range(4):  # input rows hs .. hs+3 (unrolled: constant trip count)
                                ih = hs + k
                                src = xb + ih * rs_x + q0
                                if 0 <= ih < h and plain:
                                    x0, x1, x2 = vload(xf, src), vload(xf, src + cell), vload(xf, src + 2 * cell)
                                elif 0 <= ih < h and blend:
                                    x0 = vpick(m0, vload(xf, src), zero)
                                    x1 = vpick(m1, vload(xf, src + cell), zero)
                                    x2 = vpick(m2, vload(xf, src + 2 * cell), zero)
                                elif 0 <= ih < h:
                                    x0, x1, x2 = vload_mask(xf, src, m0), vload_mask(xf, src + cell, m1), vload_mask(
                                        xf, src + 2 * cell, m2)
                                else:
                                    x0, x1, x2 = zero, zero, zero
                                if k == 0:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 0, cell), vcell(w, wb + 1, cell),
                                        vcell(w, wb + 2, cell))
                                elif k == 1:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 3, cell), vcell(w, wb + 4, cell),
                                        vcell(w, wb + 5, cell))
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 0, cell), vcell(w, wb + 1, cell),
                                        vcell(w, wb + 2, cell))
                                elif k == 2:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 6, cell), vcell(w, wb + 7, cell),
                                        vcell(w, wb + 8, cell))
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 3, cell), vcell(w, wb + 4, cell),
                                        vcell(w, wb + 5, cell))
                                else:
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 6, cell), vcell(w, wb + 7, cell),
                                        vcell(w, wb + 8, cell))
                        elif three:
                            ma, mb, mc, md = e0, f0, e2, f1
                            if e > 0:
                                ma, mb = vlanes(q0, rl), vlanes(q0 + VW, rl)
                                mc, md = vlanes(q0 + 2 * cell, rl), vlanes(q0 + 2 * cell + VW, rl)
                            for k in range(5):  # input rows hs .. hs+4
                                ih = hs + k
                                src = xb + ih * rs_x + q0
                                if 0 <= ih < h and plain:
                                    a, b = vload(xf, src), vload(xf, src + VW)
                                    x0, x1 = vevens(a, b, cell), vodds(a, b, cell)
                                    x2 = vevens(vload(xf, src + 2 * cell), vload(xf, src + 2 * cell + VW), cell)
                                elif 0 <= ih < h and blend:
                                    a, b = vpick(ma, vload(xf, src), zero), vpick(mb, vload(xf, src + VW), zero)
                                    x0, x1 = vevens(a, b, cell), vodds(a, b, cell)
                                    x2 = vevens(vpick(mc, vload(xf, src + 2 * cell), zero),
                                                vpick(md, vload(xf, src + 2 * cell + VW), zero), cell)
                                elif 0 <= ih < h:
                                    a, b = vload_mask(xf, src, ma), vload_mask(xf, src + VW, mb)
                                    x0, x1 = vevens(a, b, cell), vodds(a, b, cell)
                                    x2 = vevens(vload_mask(xf, src + 2 * cell, mc),
                                                vload_mask(xf, src + 2 * cell + VW, md), cell)
                                else:
                                    x0, x1, x2 = zero, zero, zero
                                if k == 0:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 0, cell), vcell(w, wb + 1, cell),
                                        vcell(w, wb + 2, cell))
                                elif k == 1:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 3, cell), vcell(w, wb + 4, cell),
                                        vcell(w, wb + 5, cell))
                                elif k == 2:
                                    acc0 = _fma3(acc0, x0, x1, x2, vcell(w, wb + 6, cell), vcell(w, wb + 7, cell),
                                        vcell(w, wb + 8, cell))
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 0, cell), vcell(w, wb + 1, cell),
                                        vcell(w, wb + 2, cell))
                                elif k == 3:
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 3, cell), vcell(w, wb + 4, cell),
                                        vcell(w, wb + 5, cell))
                                else:
                                    acc1 = _fma3(acc1, x0, x1, x2, vcell(w, wb + 6, cell), vcell(w, wb + 7, cell),
                                        vcell(w, wb + 8, cell))
                        else:
                            for i in range(kh):
                                ih = hs + i * dh
                                for j in range(kw):
                                    t = wb + i * kw + j
                                    wv = vsplat(w[t]) if cell == 1 else vtexels(w, 4 * t)
                                    q = q0 + j * dw * cell
                                    src = xb + ih * rs_x + q
                                    if ih < 0 or ih >= h:  # a padding row: zeros times the weights
                                        v = zero
                                    elif sw == 1:
                                        v = vload_mask(xf, src, vlanes(q, rl))
                                    else:
                                        v = vevens(vload_mask(xf, src, vlanes(q, rl)),
                                                   vload_mask(xf, src + VW, vlanes(q + VW, rl)), cell)
                                    acc0 = vfma(v, wv, acc0)
                        if relu:
                            acc0 = vrelu(acc0)
                            acc1 = vrelu(acc1)
                        # End of the output floats this call still writes after row oh (rows of a
                        # buffer plane follow each other; an image row's blocks follow each other).
                        # A buffer row's spill past its end lands in the next row's first block,
                        # written after this store only when that block is (e == 0) or is in a
                        # later pass.
                        o = ob + oh * ors + e
                        later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                        if e + VW <= owl or (o + VW <= later and (cell == 4 or not two or e == 0)):
                            vstore(of, o, acc0)
                        else:
                            vstore_first(of, o, acc0, owl - e)
                        if two:
                            o += ors
                            later = ob + r1 * ors if cell == 1 else later + ors
                            if e + VW <= owl or o + VW <= later:
                                vstore(of, o, acc1)
                            else:
                                vstore_first(of, o, acc1, owl - e)
                        oc0 += VW // cell

    return rows


@njit(nogil=True, cache=True)
def _scalar(xf, of, w, bias, cell, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, kh, kw, sh, sw, dh, dw, pt,
            pl, relu, r0, r1, c0, c1):
    """The rows route's depthwise conv for any column stride, one float at a time (cell 1 or 4)."""
    for n in range(nb):
        for m in range(c0, c1):
            xb = n * sxn + (m // mult) * sxc
            ob = n * son + m * soc
            for oh in range(r0, r1):
                for o in range(ow):
                    for k in range(cell):
                        acc = bias[m * cell + k]
                        for i in range(kh):
                            ih = oh * sh - pt + i * dh
                            for j in range(kw):
                                iw = o * sw - pl + j * dw
                                v = np.float32(0.0)
                                if 0 <= ih < h and 0 <= iw < wc:
                                    v = xf[np.uint64(xb + ih * rs_x + iw * cell + k)]
                                acc = v * w[((m * kh + i) * kw + j) * cell + k] + acc
                        if relu and acc < 0:
                            acc = np.float32(0.0)
                        of[np.uint64(ob + oh * ors + o * cell + k)] = acc


_KERNELS: dict = {}


def _kernel(route, cell=1):
    """The compiled kernel of ``route`` ("rows", per cell size, or "scalar"), made on first use."""
    if (route, cell) not in _KERNELS:
        made = _make_rows(cell) if route == "rows" else _scalar
        _KERNELS[(route, cell)] = made
    return _KERNELS[(route, cell)]


def depthwise(x, w, bias, out, cell, mult, planes, kernel, stride, dilation, pads, relu, region):
    """Depthwise conv of ``x`` into ``out`` (checked, C-contiguous), output rows [r0, r1) of
    output planes [c0, c1).

    ``w`` holds per output plane its taps' weights (cell 1: ``(OC, KH*KW)``; cell 4:
    texels ``(OCB, KH, KW, 4)``); ``bias`` per plane a float (cell 1) or texel (cell 4).
    ``planes`` is as in ``_pool.pool``.
    """
    nb, xs, os_, h, wd, oh, ow = planes
    (kh, kw), (sh, sw), (dh, dw), (r0, r1, c0, c1) = kernel, stride, dilation, region
    pt, pl = pads[0], pads[1]
    xf, of, wf = x.reshape(-1), out.reshape(-1), w.reshape(-1)
    if sw <= 2:
        _kernel("rows", cell)(xf, of, wf, bias, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, dw, pt, pl,
                              bool(relu), r0, r1, c0, c1)
    else:
        _kernel("scalar")(xf, of, wf, bias, cell, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, dw, pt, pl,
                          bool(relu), r0, r1, c0, c1)
