"""Pixel-by-channel register tiles and the pass that runs them: the conv micro-kernels
of both layouts (``buffer.conv`` on padded NCHW planes, ``image.conv`` on padded
images), and the packing of their filters.

A tile computes ``MR`` output pixels by 16 or 32 output channels:

    res[t, j] = bias[bo + j] + sum_r x[bases[t] + offs[r]] * wp[w(j) + 16*r + j % 16]

starting from the bias and adding one fused multiply-add per reduction step r
in order.  Pixel t's input window starts at ``bases[t]`` and step r reads
``offs[r]`` past it (an image texel or a padded buffer plane); the filter is
packed in groups of 16 output channels, one 16-float row per step (group at
``w0``, and ``w1`` for the second group of a 32-channel tile).  Each step
broadcasts one input value per pixel and multiplies it with one or two
filter vectors.  ``relu`` applies max(., 0), keeping NaN.  ``res`` gets the
tile row-major, MR x lanes.

The tiles are chosen for the instruction set the module is compiled for
(``coinfer.kernels.target.isa``):

- AVX-512 (32 zmm): 8 pixels x 32 channels (16 accumulators) for pairs of
  16-channel groups, 12 pixels x 16 channels (12 accumulators) for one group;
- AVX2 and generic (16 ymm): 6 pixels x 16 channels, 12 ymm accumulators, two
  for the filter row and one for the broadcast (BLIS's Haswell shape).

:func:`pixel_pass` runs the tiles over blocks of ``PIXEL_BLOCK`` output pixels,
every channel tile of a block before the next block, so the block's input
stays in cache while the filter groups stream past it; a pass over all the
pixels per filter group would reread the whole input for every 16 or 32
channels, from memory once the input outgrows L2.

Every output lane is the same sequence of multiply-adds whichever tile
computes it, so regions tile the output bit for bit on each path.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .target import conv_tiles, isa
from ._conv_simd import FASTMATH, aligned_empty, vbroadcast, vfma, vload, vmax0, vstore

GROUP = 16  # output channels per packed filter group


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def tile_8x32(xf, bases, b0, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:32] = bias[bo:bo+32] + sum_r x[bases[b0+t] + offs[r]] * filter rows r of groups at w0, w1."""
    x0 = bases[b0]; x1 = bases[b0 + 1]; x2 = bases[b0 + 2]; x3 = bases[b0 + 3]
    x4 = bases[b0 + 4]; x5 = bases[b0 + 5]; x6 = bases[b0 + 6]; x7 = bases[b0 + 7]
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
def tile_12x16(xf, bases, b0, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:16] for the 12 pixels at bases[b0:] and the group at w0 (w1 unused)."""
    x0 = bases[b0]; x1 = bases[b0 + 1]; x2 = bases[b0 + 2]; x3 = bases[b0 + 3]
    x4 = bases[b0 + 4]; x5 = bases[b0 + 5]; x6 = bases[b0 + 6]; x7 = bases[b0 + 7]
    x8 = bases[b0 + 8]; x9 = bases[b0 + 9]; x10 = bases[b0 + 10]; x11 = bases[b0 + 11]
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
def tile_6x16(xf, bases, b0, offs, red, wp, w0, w1, bias, bo, relu, res):
    """res[t, 0:16] for the 6 pixels at bases[b0:] and the group at w0 (w1 unused): the AVX2 tile."""
    x0 = bases[b0]; x1 = bases[b0 + 1]; x2 = bases[b0 + 2]; x3 = bases[b0 + 3]; x4 = bases[b0 + 4]; x5 = bases[b0 + 5]
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
WIDE_MR, WIDE_LANES, NARROW_MR = conv_tiles()
if isa() == "avx512":
    tile_wide, tile_narrow = tile_8x32, tile_12x16
else:
    tile_wide = tile_narrow = tile_6x16
MAX_MR = max(WIDE_MR, NARROW_MR)
#: Whether the wide tile has two filter groups (AVX-512).  Branches test ``WIDE and ...`` so that
#: Numba drops the wide tile's code where it has none (a global constant prunes the branch).
WIDE = WIDE_LANES == 2 * GROUP
#: Output pixels per block of :func:`pixel_pass`: a multiple of both tiles' pixels.
PIXEL_BLOCK = 192


def pack_filter_rows(rows: np.ndarray, groups: int) -> np.ndarray:
    """Filter rows packed for the tiles: ``rows`` is (OC, K), output channel by reduction
    step, OC = ``groups`` * OC/groups.  Returns float32 ``(groups, G, K, 16)``, 64-byte
    aligned, G = ceil(OC/groups/16): ``packed[g, j, k, l] = rows[g*OC/groups + 16*j + l, k]``,
    zero past the group's channels.  Done once per model (numpy; nothing to compile)."""
    oc, k = rows.shape
    mg = oc // groups
    g16 = -(-mg // GROUP)
    packed = aligned_empty((groups, g16, k, GROUP))
    padded = np.zeros((groups, g16 * GROUP, k), np.float32)
    padded[:, :mg] = rows.reshape(groups, mg, k)
    packed[:] = padded.reshape(groups, g16, GROUP, k).transpose(0, 1, 3, 2)
    return packed


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def pixel_pass(xf, offs, red, wf, w0, bf, bo, of, npix, ow, lay, m_lo, m_hi, relu, bases, obases, res):
    """Output pixels [0, npix) of a region ``ow`` pixels wide, channels [m_lo, m_hi) of one filter group.

    ``lay`` (int64) is ``(x0, x_row, x_col, o0, o_row, o_col, o_lane, texels, ch0)``, an array
    so that both layouts' callers share one compiled pass (constants would be typed apart).
    Pixel (row, col) of the region reads ``xf[x0 + row*x_row + col*x_col + offs[r]]`` at reduction
    step r (``red`` steps) and writes channel c to ``of[o0 + row*o_row + col*o_col + lane(c)]``:
    ``lane(c) = c*o_lane`` in NCHW planes, ``((c + ch0) // 4)*o_lane + (c + ch0) % 4`` in images
    (``texels``; ``ch0`` is the group's first channel within its texel).  The group's packed
    filter (``pack_filter_rows``: G x red x 16) starts at ``wf[w0]``, its bias (G*16) at ``bf[bo]``.
    Lanes past [m_lo, m_hi) are computed and dropped.  ``bases``/``obases`` hold PIXEL_BLOCK
    entries, ``res`` one tile (MAX_MR * 32 floats).
    """
    x0, x_row, x_col, o0, o_row, o_col, o_lane, texels, ch0 = (lay[0], lay[1], lay[2], lay[3], lay[4], lay[5],
                                                                lay[6], lay[7] != 0, lay[8])
    j_first = m_lo // GROUP
    j_end = (m_hi + GROUP - 1) // GROUP
    for p0 in range(0, npix, PIXEL_BLOCK):
        pn = min(PIXEL_BLOCK, npix - p0)
        row = p0 // ow
        col = p0 - row * ow
        for t in range(PIXEL_BLOCK):
            if t < pn:
                bases[t] = x0 + row * x_row + col * x_col
                obases[t] = o0 + row * o_row + col * o_col
                col += 1
                if col == ow:
                    col = 0
                    row += 1
            else:
                bases[t] = bases[pn - 1]  # pixels past the end repeat the last
        j = j_first
        while j < j_end:
            wide = WIDE and j + 1 < j_end
            mr = WIDE_MR if wide else NARROW_MR
            wj = w0 + j * red * GROUP
            for t in range(0, pn, mr):
                if WIDE and wide:
                    tile_wide(xf, bases, t, offs, red, wf, wj, wj + red * GROUP, bf, bo + j * GROUP, relu, res)
                else:
                    tile_narrow(xf, bases, t, offs, red, wf, wj, wj, bf, bo + j * GROUP, relu, res)
                _store_tile(res, wide, min(mr, pn - t), of, obases, t, o_lane, texels, GROUP * j + ch0,
                            max(m_lo - GROUP * j, 0), min(m_hi - GROUP * j, 2 * GROUP if wide else GROUP))
            j += 2 if wide else 1


@njit(nogil=True, fastmath=FASTMATH, cache=True, inline="always")
def _store_tile(res, wide, nv, of, obases, t0, o_lane, texels, c0, l_lo, l_hi):
    """Lanes [l_lo, l_hi) of the tile in ``res`` (block pixels t0 .. t0+nv) into the output: lane l
    is channel c = c0 + l, at ``obases[t] + c*o_lane`` in NCHW planes or in its texel
    ``obases[t] + (c // 4)*o_lane + c % 4``.  Whole tiles take copies with constant bounds
    (unrolled): consecutive NCHW pixels per channel plane, or a pixel's 8 (wide) or 4 texels."""
    mr = WIDE_MR if wide else NARROW_MR
    lanes = 2 * GROUP if wide else GROUP
    if nv == mr and l_lo == 0 and l_hi == lanes:
        if not texels:
            o = obases[t0] + c0 * o_lane
            if WIDE and wide:
                for l in range(WIDE_LANES):
                    for t in range(WIDE_MR):
                        of[np.uint64(o + l * o_lane + t)] = res[t * WIDE_LANES + l]
            else:
                for l in range(GROUP):
                    for t in range(NARROW_MR):
                        of[np.uint64(o + l * o_lane + t)] = res[t * GROUP + l]
            return
        if c0 & 3 == 0:
            for t in range(mr):
                o = obases[t0 + t] + (c0 >> 2) * o_lane
                a = t * lanes
                if WIDE and wide:
                    for q in range(WIDE_LANES // 4):
                        for k in range(4):
                            of[np.uint64(o + q * o_lane + k)] = res[a + 4 * q + k]
                else:
                    for q in range(GROUP // 4):
                        for k in range(4):
                            of[np.uint64(o + q * o_lane + k)] = res[a + 4 * q + k]
            return
    for t in range(nv):
        ob = obases[t0 + t]
        for l in range(l_lo, l_hi):
            c = c0 + l
            o = ob + ((c >> 2) * o_lane + (c & 3) if texels else c * o_lane)
            of[np.uint64(o)] = res[t * lanes + l]


def tile_scratch() -> tuple:
    """(lay, bases, obases, res): the per-thread scratch of :func:`pixel_pass`."""
    return (np.empty(9, np.int64), np.empty(PIXEL_BLOCK, np.int64), np.empty(PIXEL_BLOCK, np.int64),
            np.empty(MAX_MR * 2 * GROUP, np.float32))
