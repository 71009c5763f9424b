"""Pixel-by-channel register tiles: the conv micro-kernels of image conv and of
buffer conv's pixel path.

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

Every output lane is the same sequence of multiply-adds whichever tile
computes it, so regions tile the output bit for bit on each path.
"""
from __future__ import annotations

from numba import njit

from ..target import conv_tiles, isa
from ._conv_simd import FASTMATH, vbroadcast, vfma, vload, vmax0, vstore

GROUP = 16  # output channels per packed filter group


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
WIDE_MR, WIDE_LANES, NARROW_MR = conv_tiles()
if isa() == "avx512":
    tile_wide, tile_narrow = tile_8x32, tile_12x16
else:
    tile_wide = tile_narrow = tile_6x16
MAX_MR = max(WIDE_MR, NARROW_MR)
