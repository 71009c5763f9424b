"""Max, average and global-average pooling on image tensors (ONNX semantics).

Images are ``(N, H, CB, W, 4)``; pooling never mixes channels, so it works on
whole texels and needs no true channel count (zero padding lanes pool to
zero).  Output size per spatial axis with input ``n``, padding ``(pb, pe)``,
kernel ``k`` and stride ``s`` (onnxruntime's rule)::

    floor mode: out = (n + pb + pe - k) // s + 1
    ceil mode:  out = ceil((n + pb + pe - k) / s) + 1, minus one if the last
                window would start in the end padding

Padding must be smaller than the kernel, so every window holds an input cell.
Average pooling divides by the input cells in the window, or with
``count_include_pad`` by the cells up to the declared padding's end.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from ..geometry import pool_output_size
from . import _common

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool", "pool_output_size"]

_LOWEST = np.float32(np.finfo(np.float32).min)


@njit(nogil=True, fastmath=True, cache=True)
def _pool_region(x, out, kh, kw, sh, sw, pt, pl, pb, pr, mode, r0, r1, b0, b1):
    """Pool output rows [r0, r1) x blocks [b0, b1).

    mode 0: max; 1: average over input cells; 2: average counting the padding.
    Pooling is separable.  Per output row and block: (1) fold the window's
    input rows into one row of texels; (2) lay that row out by column phase
    (column ``c`` of the padded row goes to phase ``c % sw``, slot ``c // sw``)
    so that (3) each kernel column ``j`` is a contiguous run of texels starting
    at slot ``j // sw`` of phase ``j % sw``, folded into the output row.
    All three steps are whole-row vector loops.
    """
    nb, h, cb, w, _ = x.shape
    ow = out.shape[3]
    is_max = mode == 0
    init = _LOWEST if is_max else np.float32(0.0)
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    span = w * 4
    slots = ow + (kw - 1) // sw  # texels per phase
    row = np.empty(span, np.float32)
    phased = np.empty(sw * slots * 4, np.float32)
    acc = np.empty(ow * 4, np.float32)
    inv_w = np.empty(ow, np.float32)
    for i in range(ow):
        s = i * sw - pl
        cnt = min(s + kw, w + pr) - s if mode == 2 else min(s + kw, w) - max(s, 0)
        inv_w[i] = np.float32(1.0) / np.float32(cnt)
    for n in range(nb):
        for oh in range(r0, r1):
            hs = oh * sh - pt
            h0 = max(hs, 0)
            h1 = min(hs + kh, h)
            cnt_h = min(hs + kh, h + pb) - hs if mode == 2 else h1 - h0
            inv_h = np.float32(1.0) / np.float32(cnt_h)
            for b in range(b0, b1):
                # (1) kernel rows
                first = ((n * h + h0) * cb + b) * span
                for q in range(span):
                    row[q] = xf[np.uint64(first + q)]
                for ih in range(h0 + 1, h1):
                    src = ((n * h + ih) * cb + b) * span
                    if is_max:
                        for q in range(span):
                            row[q] = max(row[q], xf[np.uint64(src + q)])
                    else:
                        for q in range(span):
                            row[q] += xf[np.uint64(src + q)]
                # (2) phases of the padded row; columns outside x hold the fold's identity
                for ph in range(sw):
                    base = ph * slots * 4
                    for m in range(slots):
                        c = m * sw + ph - pl
                        if 0 <= c < w:
                            for k in range(4):
                                phased[base + 4 * m + k] = row[4 * c + k]
                        else:
                            for k in range(4):
                                phased[base + 4 * m + k] = init
                # (3) kernel columns
                for q in range(ow * 4):
                    acc[q] = init
                for j in range(kw):
                    src = ((j % sw) * slots + j // sw) * 4
                    if is_max:
                        for q in range(ow * 4):
                            acc[q] = max(acc[q], phased[np.uint64(src + q)])
                    else:
                        for q in range(ow * 4):
                            acc[q] += phased[np.uint64(src + q)]
                dst = ((n * out.shape[1] + oh) * cb + b) * ow * 4
                if is_max:
                    for q in range(ow * 4):
                        of[np.uint64(dst + q)] = acc[q]
                else:
                    for i in range(ow):
                        f = inv_h * inv_w[i]
                        for k in range(4):
                            of[np.uint64(dst + 4 * i + k)] = acc[4 * i + k] * f


@njit(nogil=True, fastmath=True, cache=True)
def _global_avg_pool(x, out, b0, b1):
    """Mean of every (H, W) plane of channel blocks [b0, b1), four lanes at a time."""
    nb, h, cb, w, _ = x.shape
    inv = 1.0 / (h * w)
    acc = np.zeros(4, np.float64)  # float64: whole planes can be large
    for n in range(nb):
        for b in range(b0, b1):
            acc[:] = 0.0
            for ih in range(h):
                row = x[n, ih, b]
                for i in range(w):
                    for k in range(4):
                        acc[k] += row[i, k]
            for k in range(4):
                out[n, 0, b, 0, k] = acc[k] * inv


def _geometry(op, x, kernel, stride, padding, ceil_mode):
    kh, kw = _args.pair(op, "kernel", kernel)
    sh, sw = (kh, kw) if stride is None else _args.pair(op, "stride", stride)
    pt, pl, pb, pr = _args.padding4(op, padding)
    ceil_mode = _common.flag(op, "ceil_mode", ceil_mode)
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(
            f"{op}: padding must be smaller than kernel {(kh, kw)}, got padding {(pt, pl, pb, pr)}"
        )
    nb, h, cb, w, _ = x.shape
    oh = pool_output_size(h, kh, sh, pt, pb, ceil_mode)
    ow = pool_output_size(w, kw, sw, pl, pr, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{op}: kernel {(kh, kw)} does not fit input {(h, w)} with padding {(pt, pl, pb, pr)}"
        )
    return (kh, kw, sh, sw, pt, pl, pb, pr), (nb, oh, cb, ow, 4)


def _pool(op, x, kernel, stride, padding, ceil_mode, mode_of, out, rows, channels):
    x = _common.image(op, "x", x)
    geo, shape = _geometry(op, x, kernel, stride, padding, ceil_mode)
    mode = mode_of()
    r0, r1 = _args.region(op, "rows", rows, shape[1])
    b0, b1 = _common.block_region(op, channels, shape[2])
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, shape[1], 0, shape[2]))
    if r0 < r1 and b0 < b1:
        _pool_region(x, out, *geo, mode, r0, r1, b0, b1)
    return out


def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, out=None, rows=None,
               channels=None) -> np.ndarray:
    """ONNX MaxPool on an image x (N, H, CB, W, 4); stride defaults to the kernel.

    ``rows=(r0, r1)`` output rows and ``channels=(c0, c1)`` output channels
    (multiples of 4; c1 may end inside the last block) compute only that region.
    """
    return _pool("max_pool2d", x, kernel, stride, padding, ceil_mode, lambda: 0, out, rows, channels)


def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False,
               out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX AveragePool on an image x (N, H, CB, W, 4); stride defaults to the kernel.

    Regions as in ``max_pool2d``.
    """
    op = "avg_pool2d"
    return _pool(op, x, kernel, stride, padding, ceil_mode,
                 lambda: 2 if _common.flag(op, "count_include_pad", count_include_pad) else 1,
                 out, rows, channels)


def global_avg_pool(x, out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX GlobalAveragePool: image (N, H, CB, W, 4) -> (N, 1, CB, 1, 4).

    ``channels=(c0, c1)`` (multiples of 4; c1 may end inside the last block)
    computes only those output channels; ``rows`` is the region of the output's
    single row, (0, 1) or an empty one.  Other cells of ``out`` are untouched.
    """
    op = "global_avg_pool"
    x = _common.image(op, "x", x)
    shape = (x.shape[0], 1, x.shape[2], 1, 4)
    r0, r1 = _args.region(op, "rows", rows, 1)
    b0, b1 = _common.block_region(op, channels, x.shape[2])
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, 1, 0, x.shape[2]))
    if r0 < r1 and b0 < b1:
        _global_avg_pool(x, out, b0, b1)
    return out
