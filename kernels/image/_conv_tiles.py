"""Jitted conv2d kernels on image tensors: register tiles and the loop over a region.

The region is output rows ``[r0, r1)`` by output channel blocks ``[b0, b1)``.
The input ``x`` is an image whose row ``row0`` is the first input row of output
row ``r0`` and which needs no bounds checks: the caller pads it with zeros.

Ordinary conv works as a GPU work-group would on a tile: ``MR`` output pixels
(consecutive in row-major order over the region, so a tile may wrap to the next
row) by 16 or 32 output channels.  The reduction runs over (kh, kw, ic); each
step broadcasts one input scalar per pixel and multiplies it with the
channels' filter values (one or two 16-float vectors of the packed filter,
see :func:`pack_filter`), accumulating from the bias into vector registers.

The tiles (``buffer._pixel_tiles``, shared with buffer conv) are chosen for
the instruction set the module is compiled for: 8 pixels x 32 channels plus 12
x 16 on AVX-512, 6 x 16 on AVX2.

Every output lane is the same sequence of multiply-adds (from the bias, over
(kh, kw, ic) in order) whichever tile computes it, so regions tile the output
bit for bit on each path.  ReLU is ``max(y, 0)`` with NaN kept.

Depthwise conv is in ``_depthwise``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..buffer._conv_simd import FASTMATH
from ..buffer._pixel_tiles import GROUP, MAX_MR, NARROW_MR, WIDE_LANES, WIDE_MR, tile_narrow, tile_wide


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def pack_filter(w, wp):
    """Filter image ``w`` (OCB, KH, KW, IC, 4) -> ``wp`` (ceil(OCB/4), KH*KW*IC, 16).

    Group g holds output channels ``16g .. 16g+15``: row r = (kh, kw, ic) is
    their 16 filter values for input channel ic at tap (kh, kw).  Channels past
    the filter's blocks are zero.
    """
    ocb, kh, kw, ic, _ = w.shape
    red = kh * kw * ic
    for g in range(wp.shape[0]):
        for r in range(red):
            i = r // (kw * ic)
            j = (r // ic) % kw
            c = r % ic
            for q in range(4):
                blk = 4 * g + q
                for k in range(4):
                    wp[g, r, 4 * q + k] = w[blk, i, j, c, k] if blk < ocb else np.float32(0.0)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _pixel_pass(xf, wp, bias, of, offs, bases, obases, res, geo, g, wide, blk_lo, blk_hi, oc, relu):
    """Output channel groups g (and g+1 when ``wide``) of every pixel of the region,
    stored for channel blocks [blk_lo, blk_hi)."""
    nb, xh, cb, xw, row0, sh, sw, oh_all, ocb_all, ow, r0, nr, red = geo
    mr = WIDE_MR if wide else NARROW_MR
    lanes = 2 * GROUP if wide else GROUP
    w0 = g * red * GROUP
    w1 = w0 + red * GROUP
    bo = g * GROUP
    q_lo = max(blk_lo, 4 * g)
    q_hi = min(blk_hi, 4 * g + lanes // 4)
    last = (oc - 1) // 4  # the block whose lanes >= oc are padding
    npos = nb * nr * ow
    ob_stride = ow * 4  # distance between channel blocks of one output pixel
    n = 0  # (image, row in region, column) of the next pixel
    rr = 0
    col = 0
    for p0 in range(0, npos, mr):
        nv = min(mr, npos - p0)
        for t in range(mr):
            if t < nv:
                bases[t] = ((n * xh + row0 + rr * sh) * cb * xw + col * sw) * 4
                obases[t] = ((n * oh_all + r0 + rr) * ocb_all * ow + col) * 4
                col += 1
                if col == ow:
                    col = 0
                    rr += 1
                    if rr == nr:
                        rr = 0
                        n += 1
            else:
                bases[t] = bases[nv - 1]  # pixels past the end repeat the last
        if wide:
            tile_wide(xf, bases, offs, red, wp, w0, w1, bias, bo, relu, res)
        else:
            tile_narrow(xf, bases, offs, red, wp, w0, w1, bias, bo, relu, res)
        if nv == mr and q_lo == 4 * g and q_hi == 4 * g + lanes // 4 and not (q_lo <= last < q_hi and oc % 4):
            if wide:
                _store_full_wide(res, of, obases, (4 * g) * ob_stride, ob_stride)
            else:
                _store_full_narrow(res, of, obases, (4 * g) * ob_stride, ob_stride)
            continue
        for t in range(nv):
            for q in range(q_lo, q_hi):
                o = np.uint64(obases[t] + q * ob_stride)
                a = t * lanes + 4 * (q - 4 * g)
                v0 = res[a]; v1 = res[a + 1]; v2 = res[a + 2]; v3 = res[a + 3]
                if q == last and oc % 4:
                    # Padding lanes are exact zeros, whatever NaN or inf the input holds.
                    m = oc % 4
                    v1 = v1 if m > 1 else np.float32(0.0)
                    v2 = v2 if m > 2 else np.float32(0.0)
                    v3 = np.float32(0.0)
                of[o] = v0
                of[o + 1] = v1
                of[o + 2] = v2
                of[o + 3] = v3


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _store_full_wide(res, of, obases, q0, ob_stride):
    """The 8 texels of each pixel of a whole wide tile (constant bounds: unrolled)."""
    for t in range(WIDE_MR):
        for q in range(WIDE_LANES // 4):
            o = np.uint64(obases[t] + q0 + q * ob_stride)
            for k in range(4):
                of[o + k] = res[t * WIDE_LANES + 4 * q + k]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _store_full_narrow(res, of, obases, q0, ob_stride):
    """The 4 texels of each pixel of a whole one-group tile."""
    for t in range(NARROW_MR):
        for q in range(GROUP // 4):
            o = np.uint64(obases[t] + q0 + q * ob_stride)
            for k in range(4):
                of[o + k] = res[t * GROUP + 4 * q + k]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_region(x, wp, kh, kw, ic, bias, out, row0, sh, sw, dh, dw, r0, r1, b0, b1, oc, relu):
    """out[:, r0:r1, b0:b1] = conv(x, packed filter wp) + bias, then max(., 0) if ``relu``.

    ``wp`` is (groups, kh*kw*ic, 16) from :func:`pack_filter`; ``bias`` is
    padded to 16 per group.  Lanes >= oc are written as zeros.
    """
    nb, xh, cb, xw, _ = x.shape
    _, oh_all, ocb_all, ow, _ = out.shape
    red = kh * kw * ic
    # Offset of every reduction step (kh, kw, ic) from a window's first texel.
    offs = np.empty(red, np.int64)
    row_stride = cb * xw * 4
    r = 0
    for i in range(kh):
        for j in range(kw):
            for c in range(ic):
                offs[r] = i * dh * row_stride + j * dw * 4 + (c >> 2) * xw * 4 + (c & 3)
                r += 1
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    wf = wp.reshape(wp.size)
    bases = np.empty(MAX_MR, np.int64)
    obases = np.empty(MAX_MR, np.int64)
    res = np.empty(MAX_MR * 2 * GROUP, np.float32)
    geo = (nb, xh, cb, xw, row0, sh, sw, oh_all, ocb_all, ow, r0, r1 - r0, red)
    g = b0 // 4
    g_end = (b1 + 3) // 4
    while g < g_end:
        wide = WIDE_LANES == 2 * GROUP and g + 1 < g_end
        _pixel_pass(xf, wf, bias, of, offs, bases, obases, res, geo, g, wide, b0, b1, oc, relu)
        g += 2 if wide else 1
