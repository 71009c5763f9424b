"""Image conv as pixel-by-channel tiles over a padded image: the loop over a region.

The region is output rows ``[r0, r1)`` by output channel blocks ``[b0, b1)``.
The input ``x`` is an image whose row ``row0`` is the first input row of output
row ``r0`` and which needs no bounds checks: the caller pads it with zeros.

A conv works as a GPU work-group would on a tile: ``MR`` output pixels
(consecutive in row-major order over the region, so a tile may wrap to the next
row) by 16 or 32 output channels.  The reduction runs over (kh, kw, ic); each
step broadcasts one input scalar per pixel and multiplies it with the
channels' filter values (one or two 16-float rows of the packed filter,
``coinfer.kernels._tiles.pack_filter_rows``), accumulating from the bias into
vector registers.  The tiles and their pass are ``coinfer.kernels._tiles``,
shared with buffer conv: 8 pixels x 32 channels plus 12 x 16 on AVX-512, 6 x 16
on AVX2.  Grouped convs run the same pass per group, with the group's input
channels in the tap offsets and its output channels' first texel lane.

Every output lane is the same sequence of multiply-adds (from the bias, over
(kh, kw, ic) in order) whichever tile computes it, so regions tile the output
bit for bit on each path.  ReLU is ``max(y, 0)`` with NaN kept.

Depthwise conv is in ``_depthwise``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._conv_simd import FASTMATH
from .._tiles import GROUP, WIDE_LANES, pixel_pass


def tap_offsets(kh, kw, icg, groups, dh, dw, row_stride, xw) -> np.ndarray:
    """``offs[g, r]``: where reduction step r = (kh, kw, ic) of group g reads, from a window's
    first texel (int64, (groups, kh*kw*icg))."""
    i, j, c = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(icg), indexing="ij")
    cc = np.arange(groups)[:, None] * icg + c.reshape(1, -1)
    return (i.reshape(1, -1) * dh * row_stride + j.reshape(1, -1) * dw * 4 + (cc >> 2) * xw * 4
            + (cc & 3)).astype(np.int64)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_region(x, wp, offs, bias, out, row0, sh, sw, r0, r1, c0, c1, og, relu, lay, bases, obases, res):
    """out[:, r0:r1] channels [c0, c1) = conv(x, packed filter wp) + bias, then max(., 0) if ``relu``.

    ``wp`` is ``_tiles.pack_filter_rows``'s (groups, G, red, 16), ``offs`` (groups, red) from
    :func:`tap_offsets`, ``bias`` (groups, G*16) per group's channels; each group has ``og`` output
    channels.  Channels outside [c0, c1) are left untouched.
    """
    nb, xh, cb, xw, _ = x.shape
    _, oh_all, ocb_all, ow, _ = out.shape
    groups, G, red, _ = wp.shape
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    wf = wp.reshape(wp.size)
    bf = bias.reshape(bias.size)
    o_row = ocb_all * ow * 4
    npix = (r1 - r0) * ow
    for n in range(nb):
        x0 = (n * xh + row0) * cb * xw * 4
        for g in range(groups):
            m_lo = max(c0, g * og) - g * og  # the group's channels in the region
            m_hi = min(c1, g * og + og) - g * og
            if m_lo >= m_hi:
                continue
            j = m_lo // GROUP
            j_end = (m_hi + GROUP - 1) // GROUP
            while j < j_end:
                wide = WIDE_LANES == 2 * GROUP and j + 1 < j_end
                first = g * og + GROUP * j  # the tile's first output channel
                lanes = 2 * GROUP if wide else GROUP
                lay[0], lay[1], lay[2] = x0, sh * cb * xw * 4, sw * 4
                lay[3], lay[4], lay[5], lay[6] = (n * oh_all + r0) * o_row + (first >> 2) * ow * 4, o_row, 4, ow * 4
                lay[7], lay[8] = 1, first & 3  # texel lanes, from lane first % 4
                pixel_pass(xf, offs[g], red, wf, (g * G + j) * red * GROUP, bf, (g * G + j) * GROUP, of, npix, ow, lay,
                           max(m_lo - GROUP * j, 0), min(m_hi - GROUP * j, lanes), wide, relu, bases, obases, res)
                j += 2 if wide else 1
