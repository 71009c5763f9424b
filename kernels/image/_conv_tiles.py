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

The tiles are chosen for the instruction set the module is compiled for
(``coinfer.kernels.target.isa``):

- AVX-512 (32 zmm): 8 pixels x 32 channels (16 accumulators) for pairs of
  16-channel groups, 12 pixels x 16 channels (12 accumulators) for a last
  single group;
- AVX2 and generic (16 ymm): 6 pixels x 16 channels, 12 ymm accumulators,
  two for the filter row and one for the broadcast (BLIS's Haswell shape).

Every output lane is the same sequence of multiply-adds (from the bias, over
(kh, kw, ic) in order) whichever tile computes it, so regions tile the output
bit for bit on each path.  ReLU is ``max(y, 0)`` with NaN kept.

Depthwise conv is in ``_depthwise``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..buffer._conv_simd import FASTMATH, vbroadcast, vfma, vload, vmax0, vstore
from ..target import isa

GROUP = 16  # output channels per packed filter group (4 channel blocks)


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
def tile_8x32(xf, bases, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:32] = bias[bo:bo+32] + sum_r x[bases[t] + offs[r]] * filter rows r of groups at w0, w1."""
    x0 = bases[0]; x1 = bases[1]; x2 = bases[2]; x3 = bases[3]
    x4 = bases[4]; x5 = bases[5]; x6 = bases[6]; x7 = bases[7]
    ba = vload(bias, bo); bb = vload(bias, bo + 16)
    c0a = ba; c0b = bb; c1a = ba; c1b = bb; c2a = ba; c2b = bb; c3a = ba; c3b = bb
    c4a = ba; c4b = bb; c5a = ba; c5b = bb; c6a = ba; c6b = bb; c7a = ba; c7b = bb
    for r in range(red):
        o = offs[r]
        fa = vload(wp, w0 + 16 * r)
        fb = vload(wp, w1 + 16 * r)
        t = vbroadcast(xf, x0 + o)
        c0a = vfma(t, fa, c0a); c0b = vfma(t, fb, c0b)
        t = vbroadcast(xf, x1 + o)
        c1a = vfma(t, fa, c1a); c1b = vfma(t, fb, c1b)
        t = vbroadcast(xf, x2 + o)
        c2a = vfma(t, fa, c2a); c2b = vfma(t, fb, c2b)
        t = vbroadcast(xf, x3 + o)
        c3a = vfma(t, fa, c3a); c3b = vfma(t, fb, c3b)
        t = vbroadcast(xf, x4 + o)
        c4a = vfma(t, fa, c4a); c4b = vfma(t, fb, c4b)
        t = vbroadcast(xf, x5 + o)
        c5a = vfma(t, fa, c5a); c5b = vfma(t, fb, c5b)
        t = vbroadcast(xf, x6 + o)
        c6a = vfma(t, fa, c6a); c6b = vfma(t, fb, c6b)
        t = vbroadcast(xf, x7 + o)
        c7a = vfma(t, fa, c7a); c7b = vfma(t, fb, c7b)
    if relu:
        c0a = vmax0(c0a); c0b = vmax0(c0b); c1a = vmax0(c1a); c1b = vmax0(c1b)
        c2a = vmax0(c2a); c2b = vmax0(c2b); c3a = vmax0(c3a); c3b = vmax0(c3b)
        c4a = vmax0(c4a); c4b = vmax0(c4b); c5a = vmax0(c5a); c5b = vmax0(c5b)
        c6a = vmax0(c6a); c6b = vmax0(c6b); c7a = vmax0(c7a); c7b = vmax0(c7b)
    vstore(res, 0, c0a); vstore(res, 16, c0b); vstore(res, 32, c1a); vstore(res, 48, c1b)
    vstore(res, 64, c2a); vstore(res, 80, c2b); vstore(res, 96, c3a); vstore(res, 112, c3b)
    vstore(res, 128, c4a); vstore(res, 144, c4b); vstore(res, 160, c5a); vstore(res, 176, c5b)
    vstore(res, 192, c6a); vstore(res, 208, c6b); vstore(res, 224, c7a); vstore(res, 240, c7b)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def tile_12x16(xf, bases, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:16] for 12 pixels and the group at w0 (w1 unused)."""
    x0 = bases[0]; x1 = bases[1]; x2 = bases[2]; x3 = bases[3]; x4 = bases[4]; x5 = bases[5]
    x6 = bases[6]; x7 = bases[7]; x8 = bases[8]; x9 = bases[9]; x10 = bases[10]; x11 = bases[11]
    b = vload(bias, bo)
    c0 = b; c1 = b; c2 = b; c3 = b; c4 = b; c5 = b; c6 = b; c7 = b; c8 = b; c9 = b; c10 = b; c11 = b
    for r in range(red):
        o = offs[r]
        f = vload(wp, w0 + 16 * r)
        c0 = vfma(vbroadcast(xf, x0 + o), f, c0)
        c1 = vfma(vbroadcast(xf, x1 + o), f, c1)
        c2 = vfma(vbroadcast(xf, x2 + o), f, c2)
        c3 = vfma(vbroadcast(xf, x3 + o), f, c3)
        c4 = vfma(vbroadcast(xf, x4 + o), f, c4)
        c5 = vfma(vbroadcast(xf, x5 + o), f, c5)
        c6 = vfma(vbroadcast(xf, x6 + o), f, c6)
        c7 = vfma(vbroadcast(xf, x7 + o), f, c7)
        c8 = vfma(vbroadcast(xf, x8 + o), f, c8)
        c9 = vfma(vbroadcast(xf, x9 + o), f, c9)
        c10 = vfma(vbroadcast(xf, x10 + o), f, c10)
        c11 = vfma(vbroadcast(xf, x11 + o), f, c11)
    if relu:
        c0 = vmax0(c0); c1 = vmax0(c1); c2 = vmax0(c2); c3 = vmax0(c3); c4 = vmax0(c4); c5 = vmax0(c5)
        c6 = vmax0(c6); c7 = vmax0(c7); c8 = vmax0(c8); c9 = vmax0(c9); c10 = vmax0(c10); c11 = vmax0(c11)
    vstore(res, 0, c0); vstore(res, 16, c1); vstore(res, 32, c2); vstore(res, 48, c3)
    vstore(res, 64, c4); vstore(res, 80, c5); vstore(res, 96, c6); vstore(res, 112, c7)
    vstore(res, 128, c8); vstore(res, 144, c9); vstore(res, 160, c10); vstore(res, 176, c11)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def tile_6x16(xf, bases, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:16] for 6 pixels and the group at w0 (w1 unused): the AVX2 tile."""
    x0 = bases[0]; x1 = bases[1]; x2 = bases[2]; x3 = bases[3]; x4 = bases[4]; x5 = bases[5]
    b = vload(bias, bo)
    c0 = b; c1 = b; c2 = b; c3 = b; c4 = b; c5 = b
    for r in range(red):
        o = offs[r]
        f = vload(wp, w0 + 16 * r)
        c0 = vfma(vbroadcast(xf, x0 + o), f, c0)
        c1 = vfma(vbroadcast(xf, x1 + o), f, c1)
        c2 = vfma(vbroadcast(xf, x2 + o), f, c2)
        c3 = vfma(vbroadcast(xf, x3 + o), f, c3)
        c4 = vfma(vbroadcast(xf, x4 + o), f, c4)
        c5 = vfma(vbroadcast(xf, x5 + o), f, c5)
    if relu:
        c0 = vmax0(c0); c1 = vmax0(c1); c2 = vmax0(c2); c3 = vmax0(c3); c4 = vmax0(c4); c5 = vmax0(c5)
    vstore(res, 0, c0); vstore(res, 16, c1); vstore(res, 32, c2)
    vstore(res, 48, c3); vstore(res, 64, c4); vstore(res, 80, c5)


# Tiles of this instruction set: (pixels, lanes) of the wide tile and pixels of the
# one-group tile.  Only the chosen ones get compiled.
if isa() == "avx512":
    WIDE_MR, WIDE_LANES, NARROW_MR = 8, 32, 12
    tile_wide, tile_narrow = tile_8x32, tile_12x16
else:
    WIDE_MR, WIDE_LANES, NARROW_MR = 6, 16, 6
    tile_wide = tile_narrow = tile_6x16
_MAX_MR = max(WIDE_MR, NARROW_MR)


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
    bases = np.empty(_MAX_MR, np.int64)
    obases = np.empty(_MAX_MR, np.int64)
    res = np.empty(_MAX_MR * 2 * GROUP, np.float32)
    geo = (nb, xh, cb, xw, row0, sh, sw, oh_all, ocb_all, ow, r0, r1 - r0, red)
    g = b0 // 4
    g_end = (b1 + 3) // 4
    while g < g_end:
        wide = WIDE_LANES == 2 * GROUP and g + 1 < g_end
        _pixel_pass(xf, wf, bias, of, offs, bases, obases, res, geo, g, wide, b0, b1, oc, relu)
        g += 2 if wide else 1
