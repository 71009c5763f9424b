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

from .. import _pool
from .. import args as _args
from ..geometry import pool_output_size
from . import _common

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool", "pool_output_size"]

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
    return ((kh, kw), (sh, sw), (pt, pl, pb, pr)), (nb, oh, cb, ow, 4)


def pool_call(op, x, kernel, stride, padding, ceil_mode, count_include_pad, out, rows, channels):
    """The checks of :func:`max_pool2d` (``count_include_pad=None``) and :func:`avg_pool2d` ->
    (out, the arguments of ``_pool.pool``, or None when the region is empty)."""
    x = _common.image(op, "x", x)
    (kernel, stride, pads), shape = _geometry(op, x, kernel, stride, padding, ceil_mode)
    mode, include = (_pool.MAX, False) if count_include_pad is None else (
        _pool.AVG, _common.flag(op, "count_include_pad", count_include_pad))
    r0, r1 = _args.region(op, "rows", rows, shape[1])
    b0, b1 = _common.block_region(op, channels, shape[2])
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, shape[1], 0, shape[2]))
    if r0 >= r1 or b0 >= b1:
        return out, None
    nb, h, cb, w, _ = x.shape
    _, oh, _, ow, _ = shape
    planes = (nb, (h * cb * w * 4, w * 4, cb * w * 4), (oh * cb * ow * 4, ow * 4, cb * ow * 4), h, w, oh, ow)
    return out, (x, out, 4, mode, planes, kernel, stride, pads, include, (r0, r1, b0, b1))


def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, out=None, rows=None,
               channels=None) -> np.ndarray:
    """ONNX MaxPool on an image x (N, H, CB, W, 4); stride defaults to the kernel.

    ``rows=(r0, r1)`` output rows and ``channels=(c0, c1)`` output channels
    (multiples of 4; c1 may end inside the last block) compute only that region.
    """
    out, call = pool_call("max_pool2d", x, kernel, stride, padding, ceil_mode, None, out, rows, channels)
    if call is not None:
        _pool.pool(*call)
    return out


def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False,
               out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX AveragePool on an image x (N, H, CB, W, 4); stride defaults to the kernel.

    Regions as in ``max_pool2d``.
    """
    out, call = pool_call("avg_pool2d", x, kernel, stride, padding, ceil_mode, count_include_pad, out, rows,
                          channels)
    if call is not None:
        _pool.pool(*call)
    return out


def global_avg_pool_call(x, out, rows, channels):
    """The checks of :func:`global_avg_pool` -> (out, the arguments of ``_pool.global_avg_pool``
    or None when the region is empty)."""
    op = "global_avg_pool"
    x = _common.image(op, "x", x)
    shape = (x.shape[0], 1, x.shape[2], 1, 4)
    r0, r1 = _args.region(op, "rows", rows, 1)
    b0, b1 = _common.block_region(op, channels, x.shape[2])
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, 1, 0, x.shape[2]))
    if r0 >= r1 or b0 >= b1:
        return out, None
    nb, h, cb, w, _ = x.shape
    return out, (x, out, 4, (nb, (h * cb * w * 4, w * 4, cb * w * 4), (cb * 4, 4), h, w * 4, h * w), (b0, b1))


def global_avg_pool(x, out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX GlobalAveragePool: image (N, H, CB, W, 4) -> (N, 1, CB, 1, 4).

    ``channels=(c0, c1)`` (multiples of 4; c1 may end inside the last block)
    computes only those output channels; ``rows`` is the region of the output's
    single row, (0, 1) or an empty one.  Other cells of ``out`` are untouched.
    """
    out, call = global_avg_pool_call(x, out, rows, channels)
    if call is not None:
        _pool.global_avg_pool(*call)
    return out
