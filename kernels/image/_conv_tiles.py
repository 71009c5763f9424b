"""Jitted conv2d kernels on image tensors: one call computes one output region.

The region is output rows ``[r0, r1)`` by output channel blocks ``[b0, b1)``.
The input ``x`` is an image whose row ``row0`` is the first input row of output
row ``r0`` and which needs no bounds checks: the caller pads it with zeros.

Ordinary conv works as a GPU work-group would on a tile: ``tile`` output
pixels (consecutive in row-major order over the region, so a tile may wrap to
the next row) by ``lanes`` output channels (``lanes // 4`` channel blocks).
The reduction runs over (kh, kw, ic); each step broadcasts one input scalar
per pixel and multiplies it with ``lanes`` filter values, accumulating into a
tile of registers.  Each group's filter blocks are repacked to
``(kh*kw*ic, lanes)`` before its tiles run, so those values are contiguous
(and stay in L2 across the tiles).

Two tile shapes are compiled: ``conv_wide`` (8 pixels x 32 channels) for the
bulk of the channels, and ``conv_narrow`` (12 pixels x 16 channels) for up to
4 leftover blocks.  Every output lane is computed by the same sequence of
fused multiply-adds in either, so regions tile the output bit for bit.

Depthwise conv is in ``_depthwise``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._stack import carray, stack_f32, stack_i64

WIDE = (8, 32)     # (pixels, channels) per tile
NARROW = (12, 16)
_LOWEST = np.float32(np.finfo(np.float32).min)


@njit(nogil=True, fastmath=True, cache=True)
def _pack_group(w, gb, nblk, oc, wp, lanes):
    """Filter image blocks [gb, gb + nblk) -> wp, flat (kh*kw*ic, lanes).

    Lanes of missing blocks and lanes >= oc are zero.
    """
    _, kh, kw, ic, _ = w.shape
    red = kh * kw * ic
    wf = w.reshape(w.size)
    blk = red * 4  # floats per filter block
    for r in range(red):
        dst = r * lanes
        for jb in range(nblk):
            src = np.uint64((gb + jb) * blk + 4 * r)
            d = np.uint64(dst + 4 * jb)
            # Four loads then four stores: one texel move.
            v0 = wf[src]
            v1 = wf[src + 1]
            v2 = wf[src + 2]
            v3 = wf[src + 3]
            wp[d] = v0
            wp[d + 1] = v1
            wp[d + 2] = v2
            wp[d + 3] = v3
        for q in range(4 * nblk, lanes):
            wp[np.uint64(dst + q)] = 0.0
    last = (oc - 1) // 4
    if oc % 4 and gb <= last < gb + nblk:
        for r in range(red):
            for k in range(oc - 4 * last, 4):
                wp[r * lanes + 4 * (last - gb) + k] = 0.0


def _make_conv(tile, lanes):
    blocks = lanes // 4
    acc_size = tile * lanes

    @njit(nogil=True, fastmath=True, cache=True)
    def conv_region(x, w, bias, out, row0, sh, sw, dh, dw, r0, r1, b0, b1, oc, relu):
        """out[:, r0:r1, b0:b1] = conv(x, w) + bias (then ReLU if ``relu``); lanes >= oc get 0."""
        nb, xh, cb, xw, _ = x.shape
        _, kh, kw, ic, _ = w.shape
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
        wp = np.empty(red * lanes, np.float32)
        xf = x.reshape(x.size)
        of = out.reshape(out.size)
        nr = r1 - r0
        npos = nb * nr * ow
        groups = (b1 - b0 + blocks - 1) // blocks
        lo = np.float32(0.0) if relu else _LOWEST
        ob_stride = ow * 4  # distance between channel blocks of one output pixel
        acc = carray(stack_f32(acc_size), (acc_size,))
        res = carray(stack_f32(acc_size), (acc_size,))
        xs = carray(stack_f32(tile), (tile,))
        bases = carray(stack_i64(tile), (tile,))
        obases = carray(stack_i64(tile), (tile,))
        for g in range(groups):
            gb = b0 + g * blocks
            nblk = min(blocks, b1 - gb)
            _pack_group(w, gb, nblk, oc, wp, lanes)
            pn = 0  # (batch, row in region, column) of the tile's first pixel
            prow = 0
            pcol = 0
            for p0 in range(0, npos, tile):
                # Window origin and output texel of each pixel; pixels past the end repeat the last.
                for t in range(tile):
                    bases[t] = ((pn * xh + row0 + prow * sh) * cb * xw + pcol * sw) * 4
                    obases[t] = (((pn * oh_all + r0 + prow) * ocb_all + gb) * ow + pcol) * 4
                    if p0 + t + 1 < npos:
                        pcol += 1
                        if pcol == ow:
                            pcol = 0
                            prow += 1
                            if prow == nr:
                                prow = 0
                                pn += 1
                for a in range(acc_size):
                    acc[a] = 0.0
                wo = 0
                for r in range(red):
                    xoff = offs[r]
                    for t in range(tile):
                        xs[t] = xf[np.uint64(bases[t] + xoff)]
                    for lane in range(lanes):
                        wv = wp[np.uint64(wo + lane)]
                        for t in range(tile):
                            acc[t * lanes + lane] += xs[t] * wv
                    wo += lanes
                # Copy out so that every access to acc has a constant index (keeps it in registers).
                for a in range(acc_size):
                    res[a] = acc[a]
                for t in range(min(tile, npos - p0)):
                    for jb in range(nblk):
                        o = np.uint64(obases[t] + jb * ob_stride)
                        a = t * lanes + 4 * jb
                        c = np.uint64(4 * (gb + jb))
                        # Four loads then four stores: one texel written.
                        v0 = max(res[a] + bias[c], lo)
                        v1 = max(res[a + 1] + bias[c + 1], lo)
                        v2 = max(res[a + 2] + bias[c + 2], lo)
                        v3 = max(res[a + 3] + bias[c + 3], lo)
                        of[o] = v0
                        of[o + 1] = v1
                        of[o + 2] = v2
                        of[o + 3] = v3
        # Padding lanes of the last block are exact zeros.
        last = (oc - 1) // 4
        if oc % 4 and b0 <= last < b1:
            for n in range(nb):
                for oh in range(r0, r1):
                    for c in range(ow):
                        for k in range(oc - 4 * last, 4):
                            out[n, oh, last, c, k] = 0.0

    return conv_region


conv_wide = _make_conv(*WIDE)
conv_narrow = _make_conv(*NARROW)
