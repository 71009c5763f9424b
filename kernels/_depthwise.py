"""Depthwise conv on either layout (the loops; ``buffer.conv`` and ``image.conv`` check arguments).

Output plane m reads input plane ``m // multiplier`` (one filter per output
channel).  Every output starts from the bias and takes one fused multiply-add
per tap, in (i, j) order.  Column strides 1 and 2: per output row, each block
of ``VW`` output floats reads tap (i, j) straight from input row i, at the
tap's offset (stride 1) or as the even cells of two vectors (stride 2), and
multiplies it with the tap's weight broadcast from the filter.

3x3 filters (no dilation, equal strides 1 or 2) take their own loop, compiled
per stride: two output rows at once, straight-line, each input row's three tap
vectors feeding both rows' multiply-adds, and the nine weights loaded once per
plane.  Every row loads with lane masks (AVX-512: a masked load costs what a
plain one does), or plainly with zeros blended in (AVX2, whose masked loads
are slow) where the loads stay in the array.  (A separate plain-load path for
blocks inside the plane was about 15% faster on wide planes but cost 0.8 s of
cold compile.)  On NCHW
planes with stride 2 and output rows under VW/2 wide (MobileNet's 7x7 layers),
two planes share each vector, so a row's loads and shuffles serve both.  Other
filters take the general loop (masked loads per tap), and column strides over
2 a scalar loop.

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
from ._simd import (VW, vcell, vevens, vfma, vlanes, vload, vload_mask, vodds, vpick, vrelu, vshift_cells, vsplat,
                    vstore, vstore_first, vtexels)

__all__ = ["depthwise"]

#: Masked loads cost what plain loads do with AVX-512 (mask registers); with AVX2 they are
#: far slower, so edge blocks load plainly and blend in zeros where the loads stay in the array.
MASKED_LOADS = isa() == "avx512"


@njit(nogil=True, cache=True, inline="always")
def _fma3(acc, x0, x1, x2, w0, w1, w2):
    """acc + x0*w0 + x1*w1 + x2*w2 as three fused multiply-adds, in that order."""
    return vfma(x2, w2, vfma(x1, w1, vfma(x0, w0, acc)))


@njit(nogil=True, cache=True)
def _store(of, o, v, n, full):
    """``v`` to ``of[o:o+VW]`` (``full``) or its first ``n`` lanes."""
    if full:
        vstore(of, o, v)
    else:
        vstore_first(of, o, v, n)


# One input row's three tap vectors for a block of outputs (``src``: the float under tap 0 of the
# block's lane 0).  Stride 1: the loads at ``src``, ``src+cell``, ``src+2*cell``; stride 2: the even
# and odd cells of ``[src, src+2*VW)`` and the even cells from ``src+2*cell``.  Masked loads
# (``m0..m3`` from ``vlanes``, one per load: lanes outside read nothing and are zero), or plain loads
# with the lanes outside the masks set to zero (AVX2, where masked loads are slow).

@njit(nogil=True, cache=True)
def _s1_masked(xf, src, cell, m0, m1, m2, m3):
    return vload_mask(xf, src, m0), vload_mask(xf, src + cell, m1), vload_mask(xf, src + 2 * cell, m2)


@njit(nogil=True, cache=True)
def _s1_blend(xf, src, cell, m0, m1, m2, m3):
    zero = vsplat(np.float32(0.0))
    return (vpick(m0, vload(xf, src), zero), vpick(m1, vload(xf, src + cell), zero),
            vpick(m2, vload(xf, src + 2 * cell), zero))


@njit(nogil=True, cache=True)
def _s2_masked(xf, src, cell, m0, m1, m2, m3):
    a, b = vload_mask(xf, src, m0), vload_mask(xf, src + VW, m1)
    c, d = vload_mask(xf, src + 2 * cell, m2), vload_mask(xf, src + 2 * cell + VW, m3)
    return vevens(a, b, cell), vodds(a, b, cell), vevens(c, d, cell)


@njit(nogil=True, cache=True)
def _s2_blend(xf, src, cell, m0, m1, m2, m3):
    zero = vsplat(np.float32(0.0))
    a, b = vpick(m0, vload(xf, src), zero), vpick(m1, vload(xf, src + VW), zero)
    c, d = vpick(m2, vload(xf, src + 2 * cell), zero), vpick(m3, vload(xf, src + 2 * cell + VW), zero)
    return vevens(a, b, cell), vodds(a, b, cell), vevens(c, d, cell)


def _edge_row(masked, blend):
    """A row loader: a padding row is zeros; else masked loads (AVX-512), or with AVX2 blended
    plain loads where they stay in the array."""
    if MASKED_LOADS:
        @njit(nogil=True, cache=True)
        def edge_row(xf, src, cell, inside_plane, inside_array, m0, m1, m2, m3):
            if inside_plane:
                return masked(xf, src, cell, m0, m1, m2, m3)
            zero = vsplat(np.float32(0.0))
            return zero, zero, zero
    else:
        @njit(nogil=True, cache=True)
        def edge_row(xf, src, cell, inside_plane, inside_array, m0, m1, m2, m3):
            if not inside_plane:
                zero = vsplat(np.float32(0.0))
                return zero, zero, zero
            if inside_array:
                return blend(xf, src, cell, m0, m1, m2, m3)
            return masked(xf, src, cell, m0, m1, m2, m3)
    return edge_row


@njit(nogil=True, cache=True)
def _plane_pairs_s2(xf, of, w, bias, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, pt, pl, relu, r0, r1, c0,
                    c1):
    """The 3x3 stride-2 route on NCHW planes whose output rows are at most ``VW/2 - 1`` wide:
    two planes per vector (lanes ``[0, VW/2)`` plane m, the rest plane m+1), so a row's four
    loads and three shuffles serve both planes.  Each output still takes the bias and its taps
    in (i, j) order, as on the other routes."""
    lo = vlanes(0, VW // 2)  # the first plane's lanes (VW = 16: the shifts below move 8 lanes)
    zero = vsplat(np.float32(0.0))
    q0 = -pl
    ma, mc = vlanes(q0, wc), vlanes(q0 + 2, wc)
    for n in range(nb):
        for m in range(c0, c1, 2):
            m2 = min(m + 1, c1 - 1)  # an odd last plane pairs with itself
            xa = n * sxn + (m if mult == 1 else m // mult) * sxc + q0
            xc = n * sxn + (m2 if mult == 1 else m2 // mult) * sxc + q0
            oa, oc = n * son + m * soc, n * son + m2 * soc
            vb = vpick(lo, vsplat(bias[m]), vsplat(bias[m2]))
            wa, wc2 = m * 9, m2 * 9
            w0, w1, w2 = (vpick(lo, vsplat(w[wa]), vsplat(w[wc2])), vpick(lo, vsplat(w[wa + 1]), vsplat(w[wc2 + 1])),
                          vpick(lo, vsplat(w[wa + 2]), vsplat(w[wc2 + 2])))
            w3, w4, w5 = (vpick(lo, vsplat(w[wa + 3]), vsplat(w[wc2 + 3])),
                          vpick(lo, vsplat(w[wa + 4]), vsplat(w[wc2 + 4])),
                          vpick(lo, vsplat(w[wa + 5]), vsplat(w[wc2 + 5])))
            w6, w7, w8 = (vpick(lo, vsplat(w[wa + 6]), vsplat(w[wc2 + 6])),
                          vpick(lo, vsplat(w[wa + 7]), vsplat(w[wc2 + 7])),
                          vpick(lo, vsplat(w[wa + 8]), vsplat(w[wc2 + 8])))
            for oh in range(r0, r1, 2):
                hs = oh * 2 - pt
                x0, x1, x2 = _pair_taps(xf, xa, xc, hs, rs_x, h, ma, mc)
                y0, y1, y2 = _pair_taps(xf, xa, xc, hs + 1, rs_x, h, ma, mc)
                z0, z1, z2 = _pair_taps(xf, xa, xc, hs + 2, rs_x, h, ma, mc)
                acc0 = _fma3(_fma3(_fma3(vb, x0, x1, x2, w0, w1, w2), y0, y1, y2, w3, w4, w5), z0, z1, z2, w6, w7, w8)
                if relu:
                    acc0 = vrelu(acc0)
                vstore_first(of, oa + oh * ors, acc0, ow)
                if m2 != m:
                    vstore_first(of, oc + oh * ors, vshift_cells(acc0, zero, 8, 1), ow)
                if oh + 1 < r1:
                    t0, t1, t2 = _pair_taps(xf, xa, xc, hs + 3, rs_x, h, ma, mc)
                    u0, u1, u2 = _pair_taps(xf, xa, xc, hs + 4, rs_x, h, ma, mc)
                    acc1 = _fma3(_fma3(_fma3(vb, z0, z1, z2, w0, w1, w2), t0, t1, t2, w3, w4, w5), u0, u1, u2, w6, w7,
                                 w8)
                    if relu:
                        acc1 = vrelu(acc1)
                    vstore_first(of, oa + (oh + 1) * ors, acc1, ow)
                    if m2 != m:
                        vstore_first(of, oc + (oh + 1) * ors, vshift_cells(acc1, zero, 8, 1), ow)


@njit(nogil=True, cache=True)
def _pair_taps(xf, xa, xc, ih, rs_x, h, ma, mc):
    """Row ``ih``'s three stride-2 tap vectors for two planes (rows from ``xa`` and ``xc``, the
    floats under tap 0 of lane 0): the even, odd and next even columns, plane a in the low lanes.
    A padding row gives zeros.  Masked loads (AVX-512, or at the array's ends), else plain loads
    with zeros blended in."""
    zero = vsplat(np.float32(0.0))
    if ih < 0 or ih >= h:
        return zero, zero, zero
    pa, pc = xa + ih * rs_x, xc + ih * rs_x
    if MASKED_LOADS or min(pa, pc) < 0 or max(pa, pc) + 2 + VW > xf.size:
        a, c = vload_mask(xf, pa, ma), vload_mask(xf, pc, ma)
        a2, c2 = vload_mask(xf, pa + 2, mc), vload_mask(xf, pc + 2, mc)
    else:
        a, c = vpick(ma, vload(xf, pa), zero), vpick(ma, vload(xf, pc), zero)
        a2, c2 = vpick(mc, vload(xf, pa + 2), zero), vpick(mc, vload(xf, pc + 2), zero)
    return vevens(a, c, 1), vodds(a, c, 1), vevens(a2, c2, 1)


def _make_three(cell, stride):
    """The 3x3 route (no dilation, equal strides ``stride``, 1 or 2) on planes of ``cell``-float
    cells (both compile-time constants)."""
    edge_row = _edge_row(_s1_masked, _s1_blend) if stride == 1 else _edge_row(_s2_masked, _s2_blend)

    @njit(nogil=True, cache=True)
    def three(xf, of, w, bias, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, kh, kw, sh, sw, dh, dw, pt, pl,
              relu, r0, r1, c0, c1):
        """Depthwise 3x3 conv of output rows [r0, r1) of output planes c0..c1-1, two output
        rows at a time (arguments as :func:`rows`'s; ``kh = kw = 3``, ``dh = dw = 1``,
        ``sh = sw`` in {1, 2}).

        The two rows read input rows ``hs .. hs+2+sw``; each row's three tap vectors feed both
        rows' multiply-adds, and each output still takes its taps in (i, j) order.  Each row
        loads with lane masks (AVX-512) or blends zeros into plain loads (AVX2, where the
        loads stay in the array), and padding rows are zeros.  The nine weights are loaded once
        per plane.
        """
        sw = stride
        if cell == 1 and sw == 2 and ow < VW // 2:
            _plane_pairs_s2(xf, of, w, bias, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, pt, pl, relu, r0, r1,
                            c0, c1)
            return
        owl = ow * cell
        rl = wc * cell
        rows_in = 3 + sw  # input rows one block reads
        reach = 2 * cell + (VW if sw == 1 else 2 * VW)  # floats a row's loads span
        zero = vsplat(np.float32(0.0))
        # The first block's lane masks (the same in every row of every plane).
        q = -pl * cell
        e0, e1 = vlanes(q, rl), vlanes(q + (cell if sw == 1 else VW), rl)
        e2, e3 = vlanes(q + 2 * cell, rl), vlanes(q + 2 * cell + VW, rl)
        for n in range(nb):
            for m in range(c0, c1):
                xb = n * sxn + (m if mult == 1 else m // mult) * sxc
                ob = n * son + m * soc
                wb = m * 9
                vb = vsplat(bias[m]) if cell == 1 else vtexels(bias, 4 * m)
                w0, w1, w2 = vcell(w, wb, cell), vcell(w, wb + 1, cell), vcell(w, wb + 2, cell)
                w3, w4, w5 = vcell(w, wb + 3, cell), vcell(w, wb + 4, cell), vcell(w, wb + 5, cell)
                w6, w7, w8 = vcell(w, wb + 6, cell), vcell(w, wb + 7, cell), vcell(w, wb + 8, cell)
                for oh in range(r0, r1, 2):
                    hs = oh * sw - pt
                    two = oh + 1 < r1
                    # Whether every row's loads stay inside the array (AVX2 blends only then).
                    first = xb + max(hs, 0) * rs_x
                    last = xb + (min(hs + rows_in, h) - 1) * rs_x
                    # End of the output floats this call still writes after row oh (rows of a
                    # buffer plane follow each other; an image row's blocks follow each other).
                    later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                    for e in range(0, owl, VW):
                        oc0 = e // cell
                        q0 = (sw * oc0 - pl) * cell  # row float of tap column 0's lane 0
                        src = xb + hs * rs_x + q0
                        m0, m1, m2, m3 = e0, e1, e2, e3
                        if e > 0:
                            m0, m1 = vlanes(q0, rl), vlanes(q0 + (cell if sw == 1 else VW), rl)
                            m2, m3 = vlanes(q0 + 2 * cell, rl), vlanes(q0 + 2 * cell + VW, rl)
                        fits = first + q0 >= 0 and last + q0 + reach <= xf.size
                        x0, x1, x2 = edge_row(xf, src, cell, 0 <= hs < h, fits, m0, m1, m2, m3)
                        y0, y1, y2 = edge_row(xf, src + rs_x, cell, 0 <= hs + 1 < h, fits, m0, m1, m2, m3)
                        z0, z1, z2 = edge_row(xf, src + 2 * rs_x, cell, 0 <= hs + 2 < h, fits, m0, m1, m2, m3)
                        t0, t1, t2 = edge_row(xf, src + 3 * rs_x, cell, 0 <= hs + 3 < h, fits, m0, m1, m2, m3)
                        u0, u1, u2 = t0, t1, t2
                        if sw == 2:
                            u0, u1, u2 = edge_row(xf, src + 4 * rs_x, cell, 0 <= hs + 4 < h, fits, m0, m1, m2, m3)
                        acc0 = _fma3(_fma3(_fma3(vb, x0, x1, x2, w0, w1, w2), y0, y1, y2, w3, w4, w5), z0, z1, z2,
                                     w6, w7, w8)
                        if sw == 1:
                            acc1 = _fma3(_fma3(_fma3(vb, y0, y1, y2, w0, w1, w2), z0, z1, z2, w3, w4, w5), t0, t1,
                                         t2, w6, w7, w8)
                        else:
                            acc1 = _fma3(_fma3(_fma3(vb, z0, z1, z2, w0, w1, w2), t0, t1, t2, w3, w4, w5), u0, u1,
                                         u2, w6, w7, w8)
                        if relu:
                            acc0 = vrelu(acc0)
                            acc1 = vrelu(acc1)
                        # A buffer row's spill past its end lands in the next row's first block,
                        # written after this store only when that block is (e == 0) or is in a
                        # later pass.
                        o = ob + oh * ors + e
                        _store(of, o, acc0, owl - e,
                               e + VW <= owl or (o + VW <= later and (cell == 4 or not two or e == 0)))
                        if two:
                            o += ors
                            after = ob + r1 * ors if cell == 1 else later + ors
                            _store(of, o, acc1, owl - e, e + VW <= owl or o + VW <= after)

    return three


def _make_rows(cell):
    """The rows route on planes of ``cell``-float cells (a compile-time constant)."""

    @njit(nogil=True, cache=True)
    def rows(xf, of, w, bias, nb, mult, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, kh, kw, sh, sw, dh, dw, pt, pl,
             relu, r0, r1, c0, c1):
        """Depthwise conv of output rows [r0, r1) of output planes c0..c1-1 (module doc).

        Plane (n, c) of x starts at float ``n*sxn + c*sxc`` (``h`` rows ``rs_x`` floats apart,
        ``wc`` cells), of out at ``n*son + m*soc`` (rows ``ors`` apart, ``ow`` cells).  ``w``
        holds per output plane its ``kh*kw`` tap weights (cell 1) or tap texels (cell 4);
        ``bias`` per plane a float (cell 1) or texel (cell 4).  Rows outside x read zeros;
        every tap loads with lane masks.
        """
        owl = ow * cell
        rl = wc * cell
        taps = kh * kw
        zero = vsplat(np.float32(0.0))
        for n in range(nb):
            for m in range(c0, c1):
                xb = n * sxn + (m // mult) * sxc
                ob = n * son + m * soc
                wb = m * taps
                vb = vsplat(bias[m]) if cell == 1 else vtexels(bias, 4 * m)
                for oh in range(r0, r1):
                    hs = oh * sh - pt
                    # End of the output floats this call still writes after row oh.
                    later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                    for e in range(0, owl, VW):
                        q0 = (sw * (e // cell) - pl) * cell  # row float of tap column 0's lane 0
                        acc = vb
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
                                acc = vfma(v, wv, acc)
                        if relu:
                            acc = vrelu(acc)
                        o = ob + oh * ors + e
                        _store(of, o, acc, owl - e, e + VW <= owl or o + VW <= later)

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


def _kernel(route, cell=1, stride=1):
    """The compiled kernel of ``route``: "three" (per cell size and stride), "rows" (per cell
    size) or "scalar"; made on first use."""
    key = (route, cell, stride if route == "three" else 0)
    if key not in _KERNELS:
        if route == "three":
            _KERNELS[key] = _make_three(cell, stride)
        else:
            _KERNELS[key] = _make_rows(cell) if route == "rows" else _scalar
    return _KERNELS[key]


def route(kernel, stride, dilation) -> str:
    """The loop a depthwise conv takes: "three" (3x3, no dilation, equal strides 1 or 2), "rows"
    (column stride 1 or 2) or "scalar"."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    if kh == kw == 3 and dh == dw == 1 and sh == sw <= 2:
        return "three"
    return "rows" if sw <= 2 else "scalar"


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
    way = route(kernel, stride, dilation)
    if way != "scalar":
        _kernel(way, cell, sw)(xf, of, wf, bias, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, dw, pt, pl,
                           bool(relu), r0, r1, c0, c1)
    else:
        _kernel("scalar")(xf, of, wf, bias, cell, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, dw, pt, pl,
                          bool(relu), r0, r1, c0, c1)
