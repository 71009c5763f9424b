"""Max and average pooling on either layout (the loops; ``buffer.pool`` and ``image.pool`` check arguments).

Per output row, the window's input rows are folded column by column into a
built row (``_window``), vertically; the taps along the row are then folded
per block of ``VW`` output floats, horizontally.  Each input vector is read by
a plain load: past a row's end it reads the next row and those lanes are
replaced by the identity (masked loads only at the array's end).  The next
output row's vertical fold runs before this row's taps are read, so the built
row's stores have landed by then (two built rows are used in turn).

NaN and infinities follow IEEE.  Max pooling propagates NaN: a window holding
a NaN gives NaN.  onnxruntime's MaxPool differs: it skips NaN (max of
{1, NaN, 5, 6} is 6 there, NaN here).  Padding is -inf and never wins, so a
window of -inf gives -inf.  Average pooling sums the window's input cells
and multiplies by 1/count, so NaN and inf flow through as IEEE says.  Each
output cell is computed by the same operations in the same order in any
region, so regions reproduce the whole output bit for bit.

Cost of the NaN rule: folding a NaN check into the max (one compare and one
blend per input vector) costs about 12% of max-pool time with AVX-512 and
17-30% with AVX2 on AlexNet pool1 (2-core Zen 4 test machine).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from ._simd import (VW, vadd, vevens, vfill_outside, vfold_lanes, vkeep_nan, vload, vload_in, vmax_num, vmul, vodds,
                    vshift_cells, vsplat, vstore, vstore_first, vsum_first)
from ._window import row_geometry, scratch, tap_columns

__all__ = ["MAX", "AVG", "pool", "global_avg_pool"]

#: Pool modes: max; average (the divisors are given per output row and column).
MAX, AVG = 0, 1


def _make(mode):
    is_max = mode == MAX

    @njit(nogil=True, cache=True, inline="always")
    def fold(acc, bad, v):
        """Fold input vector ``v`` into (acc, bad): max (NaN remembered in bad) or sum."""
        if is_max:
            return vmax_num(acc, v), vkeep_nan(bad, v)
        return vadd(acc, v), bad

    @njit(nogil=True, cache=True)
    def pool(xf, of, p, coff, inv_h, inv_w, cell, nb, sxn, sxc, rs_x, son, soc, ors, h, wc, ow,
             kh, kw, sh, sw, pt, pl, wq, wql, r0, r1, c0, c1):
        """Pool output rows [r0, r1) of planes c0..c1-1 of ``nb`` images (module doc).

        Plane (n, c) of x starts at float ``n*sxn + c*sxc`` (``h`` rows ``rs_x`` floats
        apart, ``wc`` cells of ``cell`` floats), of out at ``n*son + c*soc`` (rows ``ors``
        apart, ``ow`` cells).  Per output row the window's input rows are folded column
        by column into a built row (``sw`` phase rows of ``wql`` floats; ``p`` holds two,
        used in turn, pre-filled with the identity by the caller), whose taps
        ``coff[j]`` are then folded along the row.  The next row is folded before this
        row's taps are read, so the built row's stores have landed by then.  ``inv_h`` /
        ``inv_w`` (averages): the divisors' inverses per output row / output float.
        """
        owl = ow * cell
        rl = wc * cell
        ps = sw * wql
        fill = np.float32(-np.inf) if is_max else np.float32(0.0)
        span = min(rl, wq * cell) if sw == 1 else min(rl, 2 * wq * cell)  # input floats folded
        da = (pl % 2) * wql + (pl // 2) * cell  # where the stride-2 phases of a step go
        db = ((pl + 1) % 2) * wql + ((pl + 1) // 2) * cell
        # Windows up to 3 cells wide at stride 1 or 2 fold their taps in registers, one step
        # behind the vertical fold, with no built row (the same operations in the same order).
        fused = kw <= 3 and sw <= 2
        nsteps = -(-owl // VW) + 1
        for n in range(nb):
            for c in range(c0, c1):
                xb = n * sxn + c * sxc
                ob = n * son + c * soc
                if fused:
                    for oh in range(r0, r1):
                        hs = oh * sh - pt
                        i0, i1 = max(0, -hs), min(kh, h - hs)
                        first = xb + (hs + i0) * rs_x
                        last = xb + (hs + i1 - 1) * rs_x
                        orow = ob + oh * ors
                        later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                        prev_e = vsplat(fill)
                        prev_o = prev_e
                        for t in range(nsteps):
                            q = t * sw * VW - pl * cell  # input float of the step's first lane
                            a = vsplat(fill)
                            b = a
                            bad_a = a
                            bad_b = a
                            src = first + q
                            if first + q >= 0 and last + q + sw * VW <= xf.size:
                                for i in range(i0, i1):
                                    a, bad_a = fold(a, bad_a, vload(xf, src))
                                    if sw == 2:
                                        b, bad_b = fold(b, bad_b, vload(xf, src + VW))
                                    src += rs_x
                                if q < 0 or q + sw * VW > rl:
                                    a = vfill_outside(a, q, 0, rl, fill)
                                    bad_a = vfill_outside(bad_a, q, 0, rl, fill)
                                    b = vfill_outside(b, q + VW, 0, rl, fill)
                                    bad_b = vfill_outside(bad_b, q + VW, 0, rl, fill)
                            else:
                                for i in range(i0, i1):
                                    lo = src - q
                                    a, bad_a = fold(a, bad_a, vload_in(xf, src, lo, lo + rl, fill))
                                    if sw == 2:
                                        b, bad_b = fold(b, bad_b, vload_in(xf, src + VW, lo, lo + rl, fill))
                                    src += rs_x
                            if is_max:
                                a = vkeep_nan(a, bad_a)
                                b = vkeep_nan(b, bad_b)
                            if sw == 1:
                                cur_e = a
                                cur_o = a
                            elif cell == 1:
                                cur_e, cur_o = vevens(a, b, 1), vodds(a, b, 1)
                            else:
                                cur_e, cur_o = vevens(a, b, 4), vodds(a, b, 4)
                            if t > 0:
                                e = (t - 1) * VW  # the previous step's output block
                                acc = prev_e
                                bad = acc
                                if kw > 1:
                                    if sw == 2:
                                        v = prev_o
                                    elif cell == 1:
                                        v = vshift_cells(prev_e, cur_e, 1, 1)
                                    else:
                                        v = vshift_cells(prev_e, cur_e, 1, 4)
                                    acc, bad = fold(acc, bad, v)
                                if kw > 2:  # padded cell 2 of the window: even cell 1 (sw 2), cell 2 (sw 1)
                                    if sw == 2:
                                        v = vshift_cells(prev_e, cur_e, 1, 1) if cell == 1 else vshift_cells(
                                            prev_e, cur_e, 1, 4)
                                    else:
                                        v = vshift_cells(prev_e, cur_e, 2, 1) if cell == 1 else vshift_cells(
                                            prev_e, cur_e, 2, 4)
                                    acc, bad = fold(acc, bad, v)
                                if is_max:
                                    acc = vkeep_nan(acc, bad)
                                else:
                                    acc = vmul(acc, vmul(vsplat(inv_h[oh]), vload(inv_w, e)))
                                if e + VW <= owl or orow + e + VW <= later:
                                    vstore(of, orow + e, acc)
                                else:
                                    vstore_first(of, orow + e, acc, owl - e)
                            prev_e, prev_o = cur_e, cur_o
                    continue
                for oh in range(r0 - 1, r1):
                    nxt = oh + 1
                    if nxt < r1:
                        # Fold the window rows of output row nxt into built row nxt % 2.  Past
                        # the row the loads read the next row (those lanes are then replaced by
                        # fill), except at the array's end, where they are masked.
                        hs = nxt * sh - pt
                        i0, i1 = max(0, -hs), min(kh, h - hs)
                        pb = (nxt % 2) * ps
                        first = xb + (hs + i0) * rs_x  # the window's first row in x
                        last = xb + (hs + i1 - 1) * rs_x
                        if sw == 1:
                            for k in range(0, span, VW):
                                a = vsplat(fill)
                                bad = a
                                src = first + k
                                if k + VW <= rl or last + k + VW <= xf.size:
                                    for i in range(i0, i1):
                                        a, bad = fold(a, bad, vload(xf, src))
                                        src += rs_x
                                    if k + VW > rl:
                                        a = vfill_outside(a, k, 0, rl, fill)
                                        bad = vfill_outside(bad, k, 0, rl, fill)
                                else:
                                    for i in range(i0, i1):
                                        a, bad = fold(a, bad, vload_in(xf, src, src - k, src - k + rl, fill))
                                        src += rs_x
                                if is_max:
                                    a = vkeep_nan(a, bad)
                                vstore(p, pb + pl * cell + k, a)
                        elif sw == 2:
                            for k in range(0, span, 2 * VW):
                                a = vsplat(fill)
                                b = a
                                bad_a = a
                                bad_b = a
                                src = first + k
                                if k + 2 * VW <= rl or last + k + 2 * VW <= xf.size:
                                    for i in range(i0, i1):
                                        a, bad_a = fold(a, bad_a, vload(xf, src))
                                        b, bad_b = fold(b, bad_b, vload(xf, src + VW))
                                        src += rs_x
                                    if k + 2 * VW > rl:
                                        a = vfill_outside(a, k, 0, rl, fill)
                                        bad_a = vfill_outside(bad_a, k, 0, rl, fill)
                                        b = vfill_outside(b, k + VW, 0, rl, fill)
                                        bad_b = vfill_outside(bad_b, k + VW, 0, rl, fill)
                                else:
                                    for i in range(i0, i1):
                                        lo = src - k
                                        a, bad_a = fold(a, bad_a, vload_in(xf, src, lo, lo + rl, fill))
                                        b, bad_b = fold(b, bad_b, vload_in(xf, src + VW, lo, lo + rl, fill))
                                        src += rs_x
                                if is_max:
                                    a = vkeep_nan(a, bad_a)
                                    b = vkeep_nan(b, bad_b)
                                if cell == 1:
                                    ea, eb = vevens(a, b, 1), vodds(a, b, 1)
                                else:
                                    ea, eb = vevens(a, b, 4), vodds(a, b, 4)
                                vstore(p, pb + da + k // 2, ea)
                                vstore(p, pb + db + k // 2, eb)
                        else:  # strides of 3 and more: a scalar loop
                            for q in range(min(rl, (sw * wq - pl) * cell)):
                                sacc = fill
                                sbad = np.float32(0.0)
                                for i in range(i0, i1):
                                    sv = xf[np.uint64(first + (i - i0) * rs_x + q)]
                                    if is_max:
                                        sacc = sv if sv > sacc else sacc
                                        sbad = sv if sv != sv else sbad
                                    else:
                                        sacc += sv
                                cidx = q // cell + pl
                                p[np.uint64(pb + (cidx % sw) * wql + (cidx // sw) * cell + q % cell)] = (
                                    sbad if sbad != sbad else sacc)
                    if oh < r0:
                        continue
                    # Fold the taps of each block of output floats of row oh.
                    pb = (oh % 2) * ps
                    orow = ob + oh * ors
                    # End of the output floats this call still writes after row oh (rows of a
                    # buffer plane follow each other; an image row's blocks follow each other).
                    later = ob + r1 * ors if cell == 1 else n * son + oh * ors + c1 * soc
                    for e in range(0, owl, VW):
                        acc = vload(p, pb + coff[0] + e)
                        bad = acc
                        for j in range(1, kw):
                            acc, bad = fold(acc, bad, vload(p, pb + coff[j] + e))
                        if is_max:
                            acc = vkeep_nan(acc, bad)
                        else:
                            acc = vmul(acc, vmul(vsplat(inv_h[oh]), vload(inv_w, e)))
                        if e + VW <= owl or orow + e + VW <= later:
                            # The floats past the row are in rows this call writes later.
                            vstore(of, orow + e, acc)
                        else:
                            vstore_first(of, orow + e, acc, owl - e)

    return pool


def _make_global():
    @njit(nogil=True, cache=True)
    def global_avg(xf, of, cell, nb, sxn, sxc, rs_x, nrows, rl, son, soc, inv, c0, c1):
        """Mean of planes c0..c1-1 of ``nb`` images: ``nrows`` rows of ``rl`` floats,
        ``rs_x`` apart (a buffer plane is one row).  Lane k of a vector sums cells
        k % cell; four vector sums per plane, then a fixed tree over its lanes.  Out (n, c) is
        one float (cell 1) or one texel (cell 4) at ``n*son + c*soc``."""
        zero = np.float32(0.0)
        for n in range(nb):
            for c in range(c0, c1):
                s0 = vsplat(zero)
                s1 = s0
                s2 = s0
                s3 = s0
                for r in range(nrows):
                    src = n * sxn + c * sxc + r * rs_x
                    safe = src + rl + 4 * VW <= xf.size
                    for k in range(0, rl, 4 * VW):
                        if k + 4 * VW <= rl or safe:
                            v0 = vload(xf, src + k)
                            v1 = vload(xf, src + k + VW)
                            v2 = vload(xf, src + k + 2 * VW)
                            v3 = vload(xf, src + k + 3 * VW)
                            if k + 4 * VW > rl:  # past the row: zero the lanes
                                v0 = vfill_outside(v0, k, 0, rl, zero)
                                v1 = vfill_outside(v1, k + VW, 0, rl, zero)
                                v2 = vfill_outside(v2, k + 2 * VW, 0, rl, zero)
                                v3 = vfill_outside(v3, k + 3 * VW, 0, rl, zero)
                        else:
                            v0 = vload_in(xf, src + k, src, src + rl, zero)
                            v1 = vload_in(xf, src + k + VW, src, src + rl, zero)
                            v2 = vload_in(xf, src + k + 2 * VW, src, src + rl, zero)
                            v3 = vload_in(xf, src + k + 3 * VW, src, src + rl, zero)
                        s0 = vadd(s0, v0)
                        s1 = vadd(s1, v1)
                        s2 = vadd(s2, v2)
                        s3 = vadd(s3, v3)
                total = vadd(vadd(s0, s1), vadd(s2, s3))
                o = n * son + c * soc
                if cell == 1:
                    of[np.uint64(o)] = vsum_first(vfold_lanes(total, 1)) * inv
                else:
                    vstore_first(of, o, vmul(vfold_lanes(total, 4), vsplat(inv)), 4)

    return global_avg


_KERNELS: dict = {}


def _kernel(mode):
    """The compiled kernel for ``mode`` (MAX, AVG or "global"), made on first use; each serves both
    layouts."""
    if mode not in _KERNELS:
        _KERNELS[mode] = _make_global() if mode == "global" else _make(mode)
    return _KERNELS[mode]


def _inverse_counts(n_out, k, s, pb, n, pe, include_pad) -> np.ndarray:
    """1 / (cells of each output position's window along one axis), float32.

    With ``include_pad`` the declared padding counts, but not the cells a ceil-mode
    window reaches past it (onnxruntime's rule).
    """
    start = np.arange(n_out) * s - pb
    end = start + k
    cnt = (np.minimum(end, n + pe) - start) if include_pad else (np.minimum(end, n) - np.maximum(start, 0))
    return np.float32(1.0) / cnt.astype(np.float32)


@lru_cache(maxsize=128)
def _geometry(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad):
    """Built-row geometry, tap offsets and (averages) the divisors' inverses; read-only arrays."""
    pt, pl, pb, pr = pads
    wq, wql = row_geometry(ow, cell, kw, sw, 1, pl)
    inv_h = np.ones(oh, np.float32)
    inv_w = np.ones(-(-ow * cell // VW) * VW, np.float32)
    if mode == AVG:
        inv_h = _inverse_counts(oh, kh, sh, pt, h, pb, include_pad)
        inv_w[:ow * cell] = np.repeat(_inverse_counts(ow, kw, sw, pl, w, pr, include_pad), cell)
    for a in (inv_h, inv_w):
        a.flags.writeable = False
    return wq, wql, tap_columns(kw, sw, 1, wql, cell), inv_h, inv_w


def pool(x, out, cell, mode, planes, kernel, stride, pads, include_pad, region):
    """Pool ``x`` into ``out`` (checked, C-contiguous) over output rows [r0, r1) of planes [c0, c1).

    ``planes`` is ``(nb, (sxn, sxc, rs_x), (son, soc, ors), h, w, oh, ow)``: the number
    of images, the float strides of x's and out's planes and rows, and the sizes.
    """
    nb, xs, os_, h, w, oh, ow = planes
    (kh, kw), (sh, sw), r0, r1, c0, c1 = kernel, stride, *region
    wq, wql, coff, inv_h, inv_w = _geometry(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad)
    size = 2 * sw * wql
    p = scratch("pool", size, -np.inf if mode == MAX else 0.0, (cell, sw, wql, pads[1], w))
    _kernel(mode)(x.reshape(-1), out.reshape(-1), p, coff, inv_h, inv_w, cell, nb, *xs, *os_, h, w, ow,
                        kh, kw, sh, sw, pads[0], pads[1], wq, wql, r0, r1, c0, c1)


def global_avg_pool(x, out, cell, planes, region):
    """Mean of every plane of ``x`` into ``out`` (checked, C-contiguous), planes [c0, c1).

    ``planes`` is ``(nb, (sxn, sxc, rs_x), (son, soc), rows, row_floats, cells)``: a buffer
    plane is one row of H*W floats, an image plane H rows of W texels.
    """
    nb, xs, os_, nrows, rl, cells = planes
    _kernel("global")(x.reshape(-1), out.reshape(-1), cell, nb, *xs, nrows, rl, *os_,
                      np.float32(1.0 / cells), *region)
