"""Max, average and global-average pooling on NCHW float32 buffers (ONNX semantics).

Output size per spatial axis with input ``n``, padding ``(pb, pe)``, kernel ``k``
and stride ``s`` (onnxruntime's rule)::

    floor mode: out = (n + pb + pe - k) // s + 1
    ceil mode:  out = ceil((n + pb + pe - k) / s) + 1, minus one if the last
                window would start in the end padding

Padding must be smaller than the kernel, so every window holds at least one
input cell.  Average pooling divides by the input cells in the window, or with
``count_include_pad`` by the cells up to the declared padding's end.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from ..geometry import pool_output_size

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool", "pool_output_size"]

_LOWEST = np.float32(np.finfo(np.float32).min)


@njit(nogil=True, fastmath=True, cache=True)
def _pool(x, out, is_max, kh, kw, sh, sw, pt, pl, pb, pr, include_pad, r0, r1, c0, c1):
    """Max (is_max) or average pooling of the output region, separably per output row.

    Rows pass: the window's input rows are reduced into ``line``, which holds the
    left padding, the input row, then end padding (filled with the reduction's
    identity).  Columns pass: a stride-1 window reduction along ``line`` into
    ``acc``, then every ``sw``-th value is the output.  Both inner loops are
    contiguous.
    """
    nb, _, h, w = x.shape
    ow = out.shape[3]
    span = (ow - 1) * sw + 1  # stride-1 window positions the output samples
    width = max(pl + w, span + kw - 1)
    fill = _LOWEST if is_max else np.float32(0.0)
    line = np.full(width, fill, np.float32)
    acc = np.empty(span, np.float32)
    body = line[pl:pl + w]
    # 1 / (cells counted along W) for each output column (average only).
    inv_w = np.empty(ow, np.float32)
    for i in range(ow):
        s = i * sw - pl
        if include_pad:
            cnt = min(s + kw, w + pr) - s
        else:
            cnt = min(s + kw, w) - max(s, 0)
        inv_w[i] = np.float32(1.0) / np.float32(cnt)
    for n in range(nb):
        for c in range(c0, c1):
            for oh in range(r0, r1):
                hs = oh * sh - pt
                h0 = max(hs, 0)
                h1 = min(hs + kh, h)
                first = x[n, c, h0]
                for i in range(w):
                    body[i] = first[i]
                for ih in range(h0 + 1, h1):
                    xrow = x[n, c, ih]
                    if is_max:
                        for i in range(w):
                            body[i] = max(body[i], xrow[i])
                    else:
                        for i in range(w):
                            body[i] += xrow[i]
                for i in range(span):
                    acc[i] = line[i]
                for j in range(1, kw):
                    shifted = line[j:j + span]
                    if is_max:
                        for i in range(span):
                            acc[i] = max(acc[i], shifted[i])
                    else:
                        for i in range(span):
                            acc[i] += shifted[i]
                orow = out[n, c, oh]
                if is_max:
                    for i in range(ow):
                        orow[i] = acc[i * sw]
                else:
                    if include_pad:
                        cnt_h = min(hs + kh, h + pb) - hs
                    else:
                        cnt_h = h1 - h0
                    inv_h = np.float32(1.0) / np.float32(cnt_h)
                    for i in range(ow):
                        orow[i] = acc[i * sw] * (inv_h * inv_w[i])


@njit(nogil=True, fastmath=True, cache=True)
def _global_avg_pool(x, out, c0, c1):
    """Mean of every (H, W) plane of channels [c0, c1), one contiguous loop per plane."""
    nb, _, hw = x.shape
    inv = 1.0 / hw
    for n in range(nb):
        for c in range(c0, c1):
            plane = x[n, c]
            s = 0.0  # float64 accumulator: whole planes can be large
            for i in range(hw):
                s += plane[i]
            out[n, c] = s * inv


def _flag(op: str, name: str, v) -> bool:
    if not isinstance(v, (bool, np.bool_, int, np.integer)) or v not in (0, 1):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return bool(v)


def _geometry(op, x, kernel, stride, padding, ceil_mode):
    """Checked pool parameters and the output shape."""
    kh, kw = _args.pair(op, "kernel", kernel)
    sh, sw = (kh, kw) if stride is None else _args.pair(op, "stride", stride)
    pt, pl, pb, pr = _args.padding4(op, padding)
    ceil_mode = _flag(op, "ceil_mode", ceil_mode)
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(
            f"{op}: padding must be smaller than kernel {(kh, kw)}, got padding {(pt, pl, pb, pr)}"
        )
    nb, nc, h, w = x.shape
    if min(x.shape) < 1:
        raise ValueError(f"{op}: x must have no empty axis, got shape {x.shape}")
    oh = pool_output_size(h, kh, sh, pt, pb, ceil_mode)
    ow = pool_output_size(w, kw, sw, pl, pr, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{op}: kernel {(kh, kw)} does not fit input {x.shape} with padding {(pt, pl, pb, pr)}"
        )
    return (kh, kw), (sh, sw), (pt, pl, pb, pr), (nb, nc, oh, ow)


def _output(op, x, out, shape, rows, channels):
    """Checked regions and the output array (zeros when new and only a region is computed)."""
    r0, r1 = _args.region(op, "rows", rows, shape[2])
    c0, c1 = _args.region(op, "channels", channels, shape[1])
    whole = (r0, r1, c0, c1) == (0, shape[2], 0, shape[1])
    return _args.output(op, out, shape, whole, (x,), names=("x",)), r0, r1, c0, c1


def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, out=None, rows=None,
               channels=None) -> np.ndarray:
    """ONNX MaxPool on x (N, C, H, W); stride defaults to the kernel.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region.
    """
    op = "max_pool2d"
    x = _args.array(op, "x", x, 4)
    (kh, kw), (sh, sw), (pt, pl, _, _), shape = _geometry(op, x, kernel, stride, padding, ceil_mode)
    out, r0, r1, c0, c1 = _output(op, x, out, shape, rows, channels)
    _pool(x, out, True, kh, kw, sh, sw, pt, pl, 0, 0, False, r0, r1, c0, c1)
    return out


def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False,
               out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX AveragePool on x (N, C, H, W); stride defaults to the kernel.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region.
    """
    op = "avg_pool2d"
    x = _args.array(op, "x", x, 4)
    (kh, kw), (sh, sw), (pt, pl, pb, pr), shape = _geometry(op, x, kernel, stride, padding, ceil_mode)
    include = _flag(op, "count_include_pad", count_include_pad)
    out, r0, r1, c0, c1 = _output(op, x, out, shape, rows, channels)
    _pool(x, out, False, kh, kw, sh, sw, pt, pl, pb, pr, include, r0, r1, c0, c1)
    return out


def global_avg_pool(x, out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX GlobalAveragePool: (N, C, H, W) -> (N, C, 1, 1).

    ``channels=(c0, c1)`` computes only those output channels; ``rows`` is the
    region of the output's single row, (0, 1) or an empty one.
    """
    op = "global_avg_pool"
    x = _args.array(op, "x", x, 4)
    if min(x.shape) < 1:
        raise ValueError(f"{op}: x must have no empty axis, got shape {x.shape}")
    nb, nc, h, w = x.shape
    out, r0, r1, c0, c1 = _output(op, x, out, (nb, nc, 1, 1), rows, channels)
    if r0 < r1:
        _global_avg_pool(x.reshape(nb, nc, h * w), out.reshape(nb, nc), c0, c1)
    return out
