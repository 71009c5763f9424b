"""Max and average pooling on either layout (the loops; ``buffer.pool`` and ``image.pool`` check arguments).

Windows up to 3 cells wide at column stride 1 or 2 (every pool of the zoo's
models) are folded in registers: per output row, each step loads one vector
(stride 1) or two (stride 2) of each of the window's input rows and folds them
vertically; the taps along the row then come from this step's fold and the
previous one (even and odd cells for stride 2, shifted cells for stride 1), so
each input vector is loaded once per output row.  Steps that would read only
past the row's end load nothing.  Other windows take a scalar loop.  NCHW planes whose output rows are
as wide as the input's at stride 1 (the 3x3/1 pad-1 pools of Inception and
GoogLeNet) take the *stream* route: the whole plane is one run of vectors,
output float u reading input u + (i - pt)*W + (j - pl), with no per-row work;
a column mask keeps taps from reaching into the neighbouring rows.

NaN and infinities follow IEEE.  Max pooling propagates NaN: a window holding
a NaN gives NaN.  onnxruntime's MaxPool differs: it skips NaN (max of
{1, NaN, 5, 6} is 6 there, NaN here).  Padding is -inf and never wins, so a
window of -inf gives -inf.  Average pooling sums the window's input cells
and multiplies by 1/count, so NaN and inf flow through as IEEE says.  Each
output cell is computed by the same operations in the same order in any
region, so regions reproduce the whole output bit for bit.

Cost of the NaN rule: a max keeps a NaN already in its accumulator, so only
the inputs need checking, and one unordered compare checks two of them; the
check and its blend are about half the operations of a 3x3 max pool.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from ._simd import (VW, vadd, vevens, vfill_outside, vfold_lanes, vload, vload_in, vmax_nan, vmax_num, vmul, vnan_if, vodds, vpick,
                    vshift_cells, vsplat, vstore, vstore_first, vsum_first)

__all__ = ["MAX", "AVG", "pool", "global_avg_pool"]

#: Pool modes: max; average (the divisors are given per output row and column).
MAX, AVG = 0, 1
_LAST = VW - 1  # a literal for vshift_cells


@njit(nogil=True, cache=True, inline="always")
def _fold(acc, v, is_max):
    """Fold input vector ``v`` into ``acc``: max (NaN if either is NaN) or sum."""
    if is_max:
        return vmax_nan(acc, v)
    return vadd(acc, v)


@njit(nogil=True, cache=True, inline="always")
def _fold2(acc, v, w, is_max):
    """Fold ``v`` then ``w`` into ``acc``.  Max: NaN in ``acc`` stays (``vmax_num``), and one
    compare finds a NaN in ``v`` or ``w``: four operations for two inputs."""
    if is_max:
        return vnan_if(vmax_num(vmax_num(acc, v), w), v, w)
    return vadd(vadd(acc, v), w)


def _make_pool(cell, pool_mode):
    """The folded pool loop on cells of ``cell`` floats for ``pool_mode`` (both compile-time
    constants: the other layout's and mode's branches fold away)."""
    is_max = pool_mode == MAX

    @njit(nogil=True, cache=True)
    def pool(xf, of, inv_h, inv_w, nb, sxn, sxc, rs_x, son, soc, ors, h, wc, ow, kh, kw, sh, sw, pt, pl, r0, r1,
             c0, c1):
        """Pool output rows [r0, r1) of planes c0..c1-1 of ``nb`` images (module doc).

        Plane (n, c) of x starts at float ``n*sxn + c*sxc`` (``h`` rows ``rs_x`` floats
        apart, ``wc`` cells of ``cell`` floats), of out at ``n*son + c*soc`` (rows ``ors``
        apart, ``ow`` cells).  Windows up to 3 cells wide at column stride 1 or 2 fold
        their taps in registers; other windows take a scalar loop.  ``inv_h`` / ``inv_w``
        (averages): the divisors' inverses per output row / output float.
        """
        owl = ow * cell
        rl = wc * cell
        fill = np.float32(-np.inf) if is_max else np.float32(0.0)
        # Windows up to 3 cells wide at stride 1 or 2 fold their taps in registers, one step
        # behind the vertical fold, with no built row.
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
                            src = first + q
                            if q >= rl:
                                pass  # the step reads past the row: padding only
                            elif first + q >= 0 and last + q + sw * VW <= xf.size:
                                # The window's rows, two at a time after the first; past the row
                                # the loads read the next row, and those lanes become fill.
                                a = vload(xf, src)
                                if sw == 2:
                                    b = vload(xf, src + VW)
                                for i in range(i0 + 1, i1 - 1, 2):
                                    src += rs_x
                                    a = _fold2(a, vload(xf, src), vload(xf, src + rs_x), is_max)
                                    if sw == 2:
                                        b = _fold2(b, vload(xf, src + VW), vload(xf, src + rs_x + VW), is_max)
                                    src += rs_x
                                if (i1 - i0) % 2 == 0:
                                    src += rs_x
                                    a = _fold(a, vload(xf, src), is_max)
                                    if sw == 2:
                                        b = _fold(b, vload(xf, src + VW), is_max)
                                if q < 0 or q + VW > rl:
                                    a = vfill_outside(a, q, 0, rl, fill)
                                if sw == 2 and q + 2 * VW > rl:
                                    b = vfill_outside(b, q + VW, 0, rl, fill)
                            else:
                                for i in range(i0, i1):
                                    lo = src - q
                                    a = _fold(a, vload_in(xf, src, lo, lo + rl, fill), is_max)
                                    if sw == 2:
                                        b = _fold(b, vload_in(xf, src + VW, lo, lo + rl, fill), is_max)
                                    src += rs_x
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
                                if kw > 1:
                                    if sw == 2:
                                        v = prev_o
                                    elif cell == 1:
                                        v = vshift_cells(prev_e, cur_e, 1, 1)
                                    else:
                                        v = vshift_cells(prev_e, cur_e, 1, 4)
                                    if kw == 2:
                                        acc = _fold(acc, v, is_max)
                                    else:  # padded cell 2 of the window: even cell 1 (sw 2), cell 2 (sw 1)
                                        if sw == 2:
                                            w2 = vshift_cells(prev_e, cur_e, 1, 1) if cell == 1 else vshift_cells(
                                                prev_e, cur_e, 1, 4)
                                        else:
                                            w2 = vshift_cells(prev_e, cur_e, 2, 1) if cell == 1 else vshift_cells(
                                                prev_e, cur_e, 2, 4)
                                        acc = _fold2(acc, v, w2, is_max)
                                if not is_max:
                                    acc = vmul(acc, vmul(vsplat(inv_h[oh]), vload(inv_w, e)))
                                if e + VW <= owl or orow + e + VW <= later:
                                    vstore(of, orow + e, acc)
                                else:
                                    vstore_first(of, orow + e, acc, owl - e)
                            prev_e, prev_o = cur_e, cur_o
                    continue
                for oh in range(r0, r1):  # any other window: one float at a time
                    hs = oh * sh - pt
                    i0, i1 = max(0, -hs), min(kh, h - hs)
                    for o in range(ow):
                        ws = o * sw - pl
                        j0, j1 = max(0, -ws), min(kw, wc - ws)
                        for k in range(cell):
                            sacc = fill
                            for i in range(i0, i1):
                                row = xb + (hs + i) * rs_x + k
                                for j in range(j0, j1):
                                    sv = xf[np.uint64(row + (ws + j) * cell)]
                                    if is_max:
                                        sacc = sv if (sv > sacc or sv != sv) and sacc == sacc else sacc
                                    else:
                                        sacc += sv
                            if not is_max:
                                sacc = sacc * (inv_h[oh] * inv_w[o * cell + k])
                            of[np.uint64(ob + oh * ors + o * cell + k)] = sacc

    return pool


def _make_stream():
    """The stream loop (max or average: its last argument)."""

    @njit(nogil=True, cache=True)
    def stream(xf, of, cmask, inv, nb, sxn, sxc, son, soc, h, w, kh, kw, pt, pl, r0, r1, c0, c1, mode):
        """Pool output rows [r0, r1) of NCHW planes c0..c1-1 at stride 1 whose output rows are as
        wide as the input's (``w``), windows up to 3 columns wide reaching one column left and
        right at most: output float u of a plane reads input u + (i - pt)*w + (j - pl).

        Vector by vector along the plane, the window's rows fold into V (lanes of rows outside
        the plane read as the identity); V one float left and right of each lane comes from
        the neighbouring vectors, masked by ``cmask[j*(w + VW) + r]`` (1 where column r % w
        plus tap j's offset stays in the row).  ``inv`` (averages): the divisors' inverses
        per output float of a plane.
        """
        is_max = mode == MAX
        hw = h * w
        mw = w + VW
        fill = np.float32(-np.inf) if is_max else np.float32(0.0)
        fv = vsplat(fill)
        for n in range(nb):
            for c in range(c0, c1):
                p = n * sxn + c * sxc
                o = n * son + c * soc
                u0 = r0 * w
                u_end = r1 * w
                v_prev = fv
                v_cur = fv
                col = -VW  # (u - VW) % w, kept in [0, w) once u >= u0
                for u in range(u0 - VW, u_end, VW):
                    # V of the block after u: its rows' vectors at u + VW + (i - pt)*w.
                    a = u + VW - pt * w
                    v_next = fv
                    if a >= 0 and a + (kh - 1) * w + VW <= hw and p + a + (kh - 1) * w + VW <= xf.size:
                        src = p + a
                        v_next = vload(xf, src)
                        for i in range(1, kh - 1, 2):
                            src += w
                            v_next = _fold2(v_next, vload(xf, src), vload(xf, src + w), is_max)
                            src += w
                        if kh % 2 == 0:
                            v_next = _fold(v_next, vload(xf, src + w), is_max)
                    else:
                        for i in range(kh):
                            if a + i * w + VW > 0 and a + i * w < hw:
                                v_next = _fold(v_next, vload_in(xf, p + a + i * w, p, p + hw, fill), is_max)
                    if u >= u0:
                        acc = v_cur
                        if pl == 1:  # the column left of each lane
                            left = vpick(vload(cmask, col), vshift_cells(v_prev, v_cur, _LAST, 1), fv)
                            if kw - pl == 2:  # and right
                                acc = _fold2(acc, left, vpick(vload(cmask, (kw - 1) * mw + col),
                                                              vshift_cells(v_cur, v_next, 1, 1), fv), is_max)
                            else:
                                acc = _fold(acc, left, is_max)
                        elif kw - pl == 2:
                            acc = _fold(acc, vpick(vload(cmask, (kw - 1) * mw + col), vshift_cells(v_cur, v_next, 1, 1),
                                                   fv), is_max)
                        if not is_max:
                            acc = vmul(acc, vload(inv, u))
                        if u + VW <= u_end:
                            vstore(of, o + u, acc)
                        else:
                            vstore_first(of, o + u, acc, u_end - u)
                    v_prev = v_cur
                    v_cur = v_next
                    col += VW
                    while col >= w:
                        col -= w

    return stream


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


def _kernel(mode, route="pool", cell=0):
    """The compiled kernel for ``mode`` (MAX, AVG or "global") and ``route`` ("pool", which serves
    both layouts, or "stream" for NCHW planes), made on first use.  The pool route is compiled
    per cell size and mode: with the cell size a run-time value the loop spilled, and with the
    mode a run-time value buffer max pools ran 7-12% slower (one variant per column stride too
    gained a few percent for about 1 s of compile each).  The stream route takes the mode as its
    last argument (one compile for both)."""
    key = ("global",) if mode == "global" else ("pool", mode, cell) if route == "pool" else ("stream",)
    if key not in _KERNELS:
        if mode == "global":
            _KERNELS[key] = _make_global()
        else:
            _KERNELS[key] = _make_pool(cell, mode) if route == "pool" else _make_stream()
    return _KERNELS[key]


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
def _divisors(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad):
    """The divisors' inverses (averages; ones for max) per output row and output float (read-only)."""
    pt, pl, pb, pr = pads
    inv_h = np.ones(oh, np.float32)
    inv_w = np.ones(-(-ow * cell // VW) * VW, np.float32)
    if mode == AVG:
        inv_h = _inverse_counts(oh, kh, sh, pt, h, pb, include_pad)
        inv_w[:ow * cell] = np.repeat(_inverse_counts(ow, kw, sw, pl, w, pr, include_pad), cell)
    for a in (inv_h, inv_w):
        a.flags.writeable = False
    return inv_h, inv_w


@lru_cache(maxsize=64)
def _stream_tables(mode, h, w, oh, kh, kw, pads, include_pad):
    """(column masks, divisors' inverses per output float of a plane) of the stream route
    (read-only arrays)."""
    pl = pads[1]
    col = np.arange(w + VW) % w
    cmask = np.stack([(col + j - pl >= 0) & (col + j - pl < w) for j in range(kw)]).astype(np.float32)
    inv_h, inv_w = _divisors(1, mode, h, w, oh, w, kh, kw, 1, 1, pads, include_pad)
    inv = np.zeros(oh * w + VW, np.float32)
    inv[:oh * w] = (inv_h[:, None] * inv_w[None, :w]).reshape(-1)
    cmask = cmask.reshape(-1)
    for a in (cmask, inv):
        a.flags.writeable = False
    return cmask, inv


def pool(x, out, cell, mode, planes, kernel, stride, pads, include_pad, region):
    """Pool ``x`` into ``out`` (checked, C-contiguous) over output rows [r0, r1) of planes [c0, c1).

    ``planes`` is ``(nb, (sxn, sxc, rs_x), (son, soc, ors), h, w, oh, ow)``: the number
    of images, the float strides of x's and out's planes and rows, and the sizes.
    """
    nb, xs, os_, h, w, oh, ow = planes
    (kh, kw), (sh, sw), r0, r1, c0, c1 = kernel, stride, *region
    if cell == 1 and sh == sw == 1 and ow == w and xs[2] == w and kw <= 3 and pads[1] <= 1 and kw - pads[1] <= 2:
        # NCHW planes whose output rows are as wide as the input's: one run per plane.
        cmask, inv = _stream_tables(mode, h, w, oh, kh, kw, pads, include_pad)
        _kernel(mode, "stream")(x.reshape(-1), out.reshape(-1), cmask, inv, nb, xs[0], xs[1], os_[0], os_[1], h,
                                w, kh, kw, pads[0], pads[1], r0, r1, c0, c1, mode)
        return
    inv_h, inv_w = _divisors(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad)
    _kernel(mode, "pool", cell)(x.reshape(-1), out.reshape(-1), inv_h, inv_w, nb, *xs, *os_, h, w, ow, kh, kw, sh,
                                sw, pads[0], pads[1], r0, r1, c0, c1)


def global_avg_pool(x, out, cell, planes, region):
    """Mean of every plane of ``x`` into ``out`` (checked, C-contiguous), planes [c0, c1).

    ``planes`` is ``(nb, (sxn, sxc, rs_x), (son, soc), rows, row_floats, cells)``: a buffer
    plane is one row of H*W floats, an image plane H rows of W texels.
    """
    nb, xs, os_, nrows, rl, cells = planes
    _kernel("global")(x.reshape(-1), out.reshape(-1), cell, nb, *xs, nrows, rl, *os_,
                      np.float32(1.0 / cells), *region)
