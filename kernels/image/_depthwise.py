"""Jitted depthwise conv2d kernel on image tensors: one call computes one output region.

Same region contract as ``_conv_tiles``: output rows ``[r0, r1)`` by channel
blocks ``[b0, b1)``, from an input image already padded by the caller.  Each
channel has its own filter, so there is no reduction over channels; the
kernel works on whole output rows of one channel block.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_LOWEST = np.float32(np.finfo(np.float32).min)


@njit(nogil=True, fastmath=True, cache=True)
def _fold_taps(acc, src, s0, sstep, wrow, w0, wstep, taps, n):
    """acc[q] += sum_j src[s0 + j*sstep + q] * wrow[w0 + j*wstep + q] for q < n, j < taps.

    The taps of one kernel row over a row of texels, three per pass so that
    each pass loads and stores the accumulator row once.
    """
    j = 0
    while j + 3 <= taps:
        a = s0 + j * sstep
        b = w0 + j * wstep
        for q in range(n):
            acc[q] += (src[np.uint64(a + q)] * wrow[np.uint64(b + q)]
                       + src[np.uint64(a + sstep + q)] * wrow[np.uint64(b + wstep + q)]
                       + src[np.uint64(a + 2 * sstep + q)] * wrow[np.uint64(b + 2 * wstep + q)])
        j += 3
    while j < taps:
        a = s0 + j * sstep
        b = w0 + j * wstep
        for q in range(n):
            acc[q] += src[np.uint64(a + q)] * wrow[np.uint64(b + q)]
        j += 1


@njit(nogil=True, fastmath=True, cache=True)
def depthwise_region(x, w, bias, out, row0, sh, sw, dh, dw, r0, r1, b0, b1, oc, relu):
    """Depthwise conv (one filter per channel) of the same region; w is (CB, KH, KW, 4).

    Works on whole output rows of one channel block: each tap adds a run of
    input texels times the tap's filter texel, repeated along the row (built
    once per block, like the bias), into a row accumulator.  With a column
    stride > 1 each input row is first split by column phase (column ``c``
    to phase ``c % sw``, slot ``c // sw``) so that a tap's texels are again
    one run.
    """
    nb, xh, cb, xw, _ = x.shape
    _, kh, kw, _ = w.shape
    ow = out.shape[3]
    ow4 = ow * 4
    taps = kh * kw
    xf = x.reshape(x.size)
    wf = w.reshape(w.size)
    of = out.reshape(out.size)
    lo = np.float32(0.0) if relu else _LOWEST
    slots = (xw + sw - 1) // sw  # texels per phase
    phased = np.empty(sw * slots * 4, np.float32)
    wrow = np.empty(taps * ow4, np.float32)
    acc = np.empty(ow4, np.float32)
    brow = np.empty(ow4, np.float32)
    for b in range(b0, b1):
        for tp in range(taps):
            for q in range(ow4):
                wrow[tp * ow4 + q] = wf[(b * taps + tp) * 4 + (q & 3)]
        for q in range(ow4):
            brow[q] = bias[4 * b + (q & 3)]
        for n in range(nb):
            for oh in range(r0, r1):
                for q in range(ow4):
                    acc[q] = 0.0
                for i in range(kh):
                    ih = row0 + (oh - r0) * sh + i * dh
                    row = ((n * xh + ih) * cb + b) * xw * 4
                    if sw > 1:
                        for ph in range(sw):
                            for m in range((xw - ph + sw - 1) // sw):
                                src = np.uint64(row + 4 * (m * sw + ph))
                                d = np.uint64((ph * slots + m) * 4)
                                v0 = xf[src]
                                v1 = xf[src + 1]
                                v2 = xf[src + 2]
                                v3 = xf[src + 3]
                                phased[d] = v0
                                phased[d + 1] = v1
                                phased[d + 2] = v2
                                phased[d + 3] = v3
                    if sw == 1:
                        _fold_taps(acc, xf, row, dw * 4, wrow, i * kw * ow4, ow4, kw, ow4)
                    else:
                        for j in range(kw):
                            col = j * dw
                            start = ((col % sw) * slots + col // sw) * 4
                            _fold_taps(acc, phased, start, 0, wrow, (i * kw + j) * ow4, 0, 1, ow4)
                orow = (((n * out.shape[1] + oh) * out.shape[2] + b) * ow) * 4
                for q in range(ow4):
                    of[np.uint64(orow + q)] = max(acc[q] + brow[q], lo)
    # Padding lanes of the last block are exact zeros.
    last = (oc - 1) // 4
    if oc % 4 and b0 <= last < b1:
        for n in range(nb):
            for oh in range(r0, r1):
                for col in range(ow):
                    for k in range(oc - 4 * last, 4):
                        out[n, oh, last, col, k] = 0.0
