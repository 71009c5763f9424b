"""Convolution as pixel-by-channel tiles over padded, stride-split input planes.

The input of one group is copied into planes (``_conv_planes``): filter tap
k = (ic, r, s) reads the planes at ``koff[k] + (oh - r0)*Wq + ow`` for output
pixel (oh, ow).  A 1x1, stride-1, unpadded conv reads the input itself (tap k
is channel k).  The weights are packed into groups of 16 output channels, one
16-float row per tap (``coinfer.kernels._tiles.pack_filter_rows``), once per
model by ``buffer.prepack_weights`` or else on each call.  The register tiles
and their pass (``coinfer.kernels._tiles``, shared with image conv) take MR
consecutive output pixels of the region (row-major, so a tile may wrap to the
next row; no junk columns are computed) by 16 or 32 output channels: each tap
broadcasts one input value per pixel and multiplies it with the tap's filter
row.  The MR results of a channel are contiguous in the NCHW output.

Each output is ``bias + sum_k w[m, k] * patch[k, p]`` by fused multiply-adds
in k order, so every region gives the same bits.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._conv_simd import FASTMATH
from .._tiles import GROUP, WIDE_LANES, pixel_pass
from ._conv_planes import build_planes


def plane_offsets(cg, R, S, sh, sw, dh, dw, Hq, Wq) -> np.ndarray:
    """``koff[k]``: where filter tap k = (ic, r, s) starts reading the planes (int64)."""
    ic, r, s = np.meshgrid(np.arange(cg), np.arange(R) * dh, np.arange(S) * dw, indexing="ij")
    plane = (ic * sh + r % sh) * sw + s % sw
    return (plane * (Hq * Wq) + (r // sh) * Wq + s // sw).reshape(-1).astype(np.int64)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_pixels(x, wp, bp, out, xq, koff, in_place, lay, bases, obases, res, N, C, H, W, OC, OH, OW, sh, sw, pt, pl,
                Hq, Wq, groups, r0, r1, c0, c1, relu):
    """Output rows [r0, r1) and channels [c0, c1) of a grouped conv, all images (flattened arrays).

    ``wp`` is ``_tiles.pack_filter_rows``'s (groups, G, K, 16) flat, ``bp`` the bias as
    (groups, G, 16) flat; ``koff`` the taps' offsets.  ``xq`` holds the planes (``cg*sh*sw*Hq*Wq``
    floats and the slack of ``build_planes``), except with ``in_place`` (a 1x1, stride-1,
    unpadded conv), which reads ``x`` itself.
    """
    cg = C // groups
    mg = OC // groups
    K = koff.size
    OHW = OH * OW
    G = -(-mg // GROUP)
    npix = (r1 - r0) * OW
    for n in range(N):
        for g in range(groups):
            m_lo = max(c0, g * mg) - g * mg
            m_hi = min(c1, g * mg + mg) - g * mg
            if m_lo >= m_hi:
                continue
            if in_place:
                src = x
                x0 = (n * C + g * cg) * H * W + r0 * W
            else:
                build_planes(x, (n * C + g * cg) * H * W, cg, H, W, sh, sw, pt, pl, r0, Hq, Wq, xq)
                src = xq
                x0 = 0
            j = m_lo // GROUP
            j_end = (m_hi + GROUP - 1) // GROUP
            while j < j_end:
                wide = WIDE_LANES == 2 * GROUP and j + 1 < j_end
                first = GROUP * j
                lanes = 2 * GROUP if wide else GROUP
                lay[0], lay[1], lay[2] = x0, Wq, 1  # input: planes, or x in place
                lay[3], lay[4], lay[5], lay[6] = (n * OC + g * mg + first) * OHW + r0 * OW, OW, 1, OHW
                lay[7], lay[8] = 0, 0  # NCHW lanes
                pixel_pass(src, koff, K, wp, (g * G + j) * K * GROUP, bp, (g * G + j) * GROUP, out, npix, OW, lay,
                           max(m_lo - first, 0), min(m_hi - first, lanes), wide, relu, bases, obases, res)
                j += 2 if wide else 1
