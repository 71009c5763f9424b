"""Convolution as pixel-by-channel tiles over padded, stride-split input planes.

The input of one group is copied into planes (``_conv_planes``): filter tap
k = (ic, r, s) reads the planes at ``koff[k] + (oh - r0)*Wq + ow`` for output
pixel (oh, ow).  A 1x1, stride-1, unpadded conv reads the input itself (tap k
is channel k).  The weights are packed per call into groups of 16 output
channels, one 16-float row per tap (:func:`pack_weights`), once per model by
``buffer.prepack_weights`` or else on each call.  A register tile
(``_pixel_tiles``, the same as image conv's) takes MR consecutive output pixels
of the region (row-major, so a tile may wrap to the next row; no junk columns
are computed) by 16 or 32 output channels: each tap broadcasts one input
value per pixel and multiplies it with the tap's filter row.  The MR results
of a channel are contiguous in the NCHW output.

Each output is ``bias + sum_k w[m, k] * patch[k, p]`` by fused multiply-adds
in k order, so every region gives the same bits.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_planes import build_planes, plane_offsets
from ._conv_simd import FASTMATH
from ._pixel_tiles import GROUP, MAX_MR, NARROW_MR, WIDE_LANES, WIDE_MR, tile_narrow, tile_wide


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def pack_weights(w, groups, mg, K, wp):
    """OIHW weights (flat) -> ``wp`` (groups, G, K, 16).

    ``wp[g, j, k, l] = w[g*mg + 16*j + l, k]`` for channels of the group, 0 past it.
    """
    G = wp.shape[1]
    for g in range(groups):
        for j in range(G):
            for l in range(GROUP):
                m = GROUP * j + l
                src = (g * mg + m) * K
                for k in range(K):
                    wp[g, j, k, l] = w[src + k] if m < mg else np.float32(0.0)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _pixel_pass(xq, x0, koff, K, wf, w0, bf, bo, out, o_base, OHW, OW, Wq, pix0, npix, l_lo, l_hi, wide, relu,
                bases, res):
    """Output pixels [pix0, pix0 + npix) of the region, lanes [l_lo, l_hi) of the tile's channels.

    Pixel (row, col) of the region reads ``xq[x0 + row*Wq + col + koff[k]]``.
    ``o_base`` is the output offset of the tile's first channel; lanes past the
    group's channels are computed and dropped.
    """
    mr = WIDE_MR if wide else NARROW_MR
    lanes = 2 * GROUP if wide else GROUP
    row = 0
    col = 0
    for p0 in range(0, npix, mr):
        nv = min(mr, npix - p0)
        for t in range(mr):
            if t < nv:
                bases[t] = x0 + row * Wq + col
                col += 1
                if col == OW:
                    col = 0
                    row += 1
            else:
                bases[t] = bases[nv - 1]  # pixels past the end repeat the last
        if wide:
            tile_wide(xq, bases, koff, K, wf, w0, w0 + K * GROUP, bf, bo, relu, res)
        else:
            tile_narrow(xq, bases, koff, K, wf, w0, w0, bf, bo, relu, res)
        o = o_base + pix0 + p0
        if nv == mr and l_lo == 0 and l_hi == lanes:
            if wide:
                _store_full_wide(res, out, o, OHW)
            else:
                _store_full_narrow(res, out, o, OHW)
        else:
            for l in range(l_lo, l_hi):
                for t in range(nv):
                    out[o + l * OHW + t] = res[t * lanes + l]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _store_full_wide(res, out, o, OHW):
    """out[o + l*OHW + t] = res[t, l] for a whole wide tile (constant bounds: unrolled)."""
    for l in range(WIDE_LANES):
        for t in range(WIDE_MR):
            out[np.uint64(o + l * OHW + t)] = res[t * WIDE_LANES + l]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _store_full_narrow(res, out, o, OHW):
    """out[o + l*OHW + t] = res[t, l] for a whole one-group tile."""
    for l in range(GROUP):
        for t in range(NARROW_MR):
            out[np.uint64(o + l * OHW + t)] = res[t * GROUP + l]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def conv_pixels(x, wp, bp, out, xq, N, C, H, W, OC, OH, OW, R, S, sh, sw, dh, dw, pt, pl, groups,
                r0, r1, c0, c1, relu):
    """Output rows [r0, r1) and channels [c0, c1) of a grouped conv, all images (flattened arrays).

    ``wp`` comes from :func:`pack_weights`, ``bp`` is the bias as (groups, G, 16); ``xq`` holds the planes
    (``cg*sh*sw*Hq*Wq`` floats and the slack of ``build_planes``), except for a
    1x1, stride-1, unpadded conv, which reads ``x`` in place.
    """
    cg = C // groups
    mg = OC // groups
    K = cg * R * S
    OHW = OH * OW
    Hq = (r1 - r0) + (dh * (R - 1)) // sh
    Wq = OW + (dw * (S - 1)) // sw
    # A 1x1, stride-1, unpadded conv reads the input in place: tap k is channel k.
    in_place = R == 1 and S == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 and OW == W and OH == H
    if in_place:
        koff = np.arange(cg) * (H * W)
    else:
        koff = plane_offsets(cg, R, S, sh, sw, dh, dw, Hq, Wq)
    G = wp.shape[1]
    wf = wp.reshape(wp.size)
    bf = bp.reshape(bp.size)
    bases = np.empty(MAX_MR, np.int64)
    res = np.empty(MAX_MR * 2 * GROUP, np.float32)
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
                _pixel_pass(src, x0, koff, K, wf, (g * G + j) * K * GROUP, bf, (g * G + j) * GROUP, out,
                            (n * OC + g * mg + first) * OHW, OHW, OW, Wq, r0 * OW, npix,
                            max(m_lo - first, 0), min(m_hi - first, lanes), wide, relu, bases, res)
                j += 2 if wide else 1
