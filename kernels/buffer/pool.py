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

from .. import _pool
from .. import args as _args
from ..geometry import pool_output_size

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool", "pool_output_size"]

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


def planes(x, out) -> tuple:
    """``_pool``'s plane description of NCHW ``x`` and ``out``: plane (n, c), rows W floats apart."""
    nb, nc, h, w = x.shape
    _, _, oh, ow = out.shape
    return (nb, (nc * h * w, h * w, w), (nc * oh * ow, oh * ow, ow), h, w, oh, ow)


def _output(op, x, out, shape, rows, channels):
    """Checked regions and the output array (zeros when new and only a region is computed)."""
    r0, r1 = _args.region(op, "rows", rows, shape[2])
    c0, c1 = _args.region(op, "channels", channels, shape[1])
    whole = (r0, r1, c0, c1) == (0, shape[2], 0, shape[1])
    return _args.output(op, out, shape, whole, (x,), names=("x",)), r0, r1, c0, c1


def pool_call(op, x, kernel, stride, padding, ceil_mode, count_include_pad, out, rows, channels):
    """The checks of :func:`max_pool2d` (``count_include_pad=None``) and :func:`avg_pool2d` ->
    (out, the arguments of ``_pool.pool``, or None when the region is empty)."""
    x = _args.array(op, "x", x, 4)
    (kh, kw), (sh, sw), pads, shape = _geometry(op, x, kernel, stride, padding, ceil_mode)
    mode, include = (_pool.MAX, False) if count_include_pad is None else (
        _pool.AVG, _flag(op, "count_include_pad", count_include_pad))
    out, r0, r1, c0, c1 = _output(op, x, out, shape, rows, channels)
    if r0 >= r1 or c0 >= c1:
        return out, None
    return out, (x, out, 1, mode, planes(x, out), (kh, kw), (sh, sw), pads, include, (r0, r1, c0, c1))


def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, out=None, rows=None,
               channels=None) -> np.ndarray:
    """ONNX MaxPool on x (N, C, H, W); stride defaults to the kernel.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region.
    """
    out, call = pool_call("max_pool2d", x, kernel, stride, padding, ceil_mode, None, out, rows, channels)
    if call is not None:
        _pool.pool(*call)
    return out


def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False,
               out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX AveragePool on x (N, C, H, W); stride defaults to the kernel.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region.
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
    x = _args.array(op, "x", x, 4)
    if min(x.shape) < 1:
        raise ValueError(f"{op}: x must have no empty axis, got shape {x.shape}")
    nb, nc, h, w = x.shape
    out, r0, r1, c0, c1 = _output(op, x, out, (nb, nc, 1, 1), rows, channels)
    if r0 >= r1 or c0 >= c1:
        return out, None
    return out, (x, out, 1, (nb, (nc * h * w, h * w, 0), (nc, 1), 1, h * w, h * w), (c0, c1))


def global_avg_pool(x, out=None, rows=None, channels=None) -> np.ndarray:
    """ONNX GlobalAveragePool: (N, C, H, W) -> (N, C, 1, 1).

    ``channels=(c0, c1)`` computes only those output channels; ``rows`` is the
    region of the output's single row, (0, 1) or an empty one.
    """
    out, call = global_avg_pool_call(x, out, rows, channels)
    if call is not None:
        _pool.global_avg_pool(*call)
    return out
