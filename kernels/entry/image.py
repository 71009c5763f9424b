"""Native calls of the image kernels: ``coinfer.kernels.image``'s functions, bound instead of run.

As :mod:`coinfer.kernels.entry.buffer`, for images.  Raises
:class:`~.call.NoEntry` for the instances whose Python kernel does numpy work on
its inputs at run time: depthwise convs with a channel multiplier, and concats
along N, H or W.  ``copy(x, out)`` is dropout's
data movement, ``reshape(x, shape, out, out_shape)`` flatten's and reshape's.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..image import _common
from ..image import _depthwise as _dw
from ..image import conv as _conv
from ..image import elementwise as _ew
from ..image import fc as _fc
from ..image.lrn import lrn_call
from ..image import pool as _pool
from ..image.softmax import softmax_call
from .._tiles import tile_scratch
from ..image._conv_tiles import conv_region as _conv_region_py
from . import _window
from ._entries import SUBCALL, make_concat, make_elementwise, make_fc, pad_rows
from .buffer import bind_add, bind_clamp, bind_softmax, copy, noop
from .call import Block, NativeCall, NoEntry, sequence
from .generic import Scratch, bind

#: The loop over images and groups, compiled for the native call (see ``entry.buffer.conv_pixels``).
conv_region = njit(nogil=True, cache=True)(_conv_region_py)

__all__ = ["conv2d", "fully_connected", "max_pool2d", "avg_pool2d", "global_avg_pool", "relu", "clip", "add",
           "concat", "lrn", "softmax", "copy", "reshape", "noop"]


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=None, relu=False, out=None, rows=None,
           channels=None, out_channels=None) -> NativeCall:
    x = _common.image("conv2d", "x", x)
    if isinstance(w, np.ndarray) and w.ndim == 4:
        return _depthwise(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels)
    c = _conv.checked_dense(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels,
                            out_channels)
    if c.r0 >= c.r1 or c.c0 >= c.c1:
        return noop("conv2d")
    calls = []
    xin = c.x
    if c.padded:  # the input rows the region reads, zero-padded (image.conv._input_rows)
        sh, _, _, pt, pl, _ = c.rows_read
        xin = Scratch("padded", c.xin_shape)
        calls.append(bind("conv2d input rows", pad_rows, c.x, xin, c.r0 * sh - pt, pl))
    calls.append(bind("conv2d", conv_region, xin, c.wp, c.offs, c.bias16, c.out, c.row0, c.sh, c.sw, c.r0, c.r1,
                      c.c0, c.c1, c.og, c.relu, *tile_scratch()))
    if c.tail is not None:
        calls.append(_window.bind_zero_lanes(c.out, (c.r0, c.r1, *c.tail)))
    return sequence("conv2d", calls)


def _depthwise(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels):
    x, w, bias_p, out, c, oc, mult, relu, stride, dilation, pads, region, oh, ow = _dw.checked(
        x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels)
    r0, r1, b0, b1 = region
    if r0 == r1 or b0 == b1:
        return noop("conv2d")
    if mult > 1:
        raise NoEntry("image conv2d: a depthwise conv with a channel multiplier gathers its input channels")
    ocb = w.shape[0]
    tail = (r0, r1, ocb - 1, oc % 4) if oc % 4 and b1 == ocb else None
    call = _dw.depthwise_call(x, w, bias_p, out, pads, x.shape[1], relu, stride, dilation, region, oh, ow)
    return _window.bind_depthwise(*call, tail=tail)


def fully_connected(x, w, bias=None, *, relu=False, out=None, channels=None, out_channels=None) -> NativeCall:
    x, w, bias_p, out, b0, b1, m, relu = _fc.checked(x, w, bias, relu, out, channels, out_channels)
    if b0 >= b1:
        return noop("fully_connected")
    blk = Block().ints(1).array(x).ints(x.shape[0], x.shape[2]).array(w).ints(*w.shape[:2]).flat(bias_p)
    return blk.array(out).ints(b0, b1, m, relu).call("fully_connected", make_fc)


#: The pool binders, shared with the other layout (see ``_window.pool_binders``).
max_pool2d, avg_pool2d, global_avg_pool = _window.pool_binders(_pool, noop)


def relu(x, out=None, rows=None, channels=None) -> NativeCall:
    out, call = _ew.relu_call(x, out, rows, channels)
    return noop("relu") if call is None else bind_clamp("relu", *call)


def clip(x, *, min=-np.inf, max=np.inf, out=None, rows=None, channels=None, c=None) -> NativeCall:  # noqa: A002
    out, call, tail = _ew.clip_call(x, min, max, out, rows, channels, c)
    return noop("clip") if call is None else bind_clamp("clip", *call, tail=tail, image=out)


def add(a, b, *, relu=False, out=None, rows=None, channels=None) -> NativeCall:
    out, call = _ew.add_call(a, b, relu, out, rows, channels)
    return noop("add") if call is None else bind_add("add", *call)


def concat(xs, channels, out=None, *, axis=1, rows=None, out_region=None) -> NativeCall:
    out, calls, tail = _ew.concat_call(xs, channels, out, axis, rows, out_region)
    if calls is None:
        raise NoEntry("image concat: only along channels (axis 1)")
    b = Block().array(out).ints(len(calls))
    for x, s0, d0, cnt, r0, r1 in calls:
        start = len(b)
        b.ints(1).array(x).ints(*x.shape[:4], out.shape[2], s0, d0, cnt, r0, r1).pad(start + SUBCALL)
    return b.ints(*_window.tail_words(tail, out)).call("concat", make_concat)


def lrn(x, c, *, size=5, alpha=1e-4, beta=0.75, k=1.0, out=None, rows=None, channels=None) -> NativeCall:
    out, call, tail = lrn_call(x, c, size, alpha, beta, k, out, rows, channels)
    return noop("lrn") if call is None else _window.bind_lrn_texels(*call, tail=tail)


def softmax(x, c, out=None, *, axis=1, rows=None, channels=None) -> NativeCall:
    x, out, calls, tail = softmax_call(x, c, out, axis, rows, channels)
    return bind_softmax(x, out, calls, tail)


def reshape(x, shape, out, out_shape) -> NativeCall:
    """The image of an (N, C, H, W) or (N, K) tensor ``x`` of ``shape`` -> the image ``out`` of its
    reshape to the 2-D ``out_shape`` (flatten), as a native call."""
    op = "reshape"
    x = _common.image(op, "x", x)
    shape = tuple(shape) if len(shape) == 4 else (shape[0], shape[1], 1, 1)
    if len(out_shape) != 2 or int(np.prod(shape)) != int(np.prod(out_shape)):
        raise ValueError(f"{op}: cannot reshape {shape} to {tuple(out_shape)} (a 2-D shape of as many elements)")
    n, c, h, w = shape
    if x.shape != (n, h, -(-c // 4), w, 4):
        raise ValueError(f"{op}: x must be the image {(n, h, -(-c // 4), w, 4)} of {shape}, got {x.shape}")
    a, bb = out_shape
    want = (a, 1, -(-bb // 4), 1, 4)
    out = _common.image(op, "out", out)
    if out.shape != want:
        raise ValueError(f"{op}: out must be the image {want} of {tuple(out_shape)}, got {out.shape}")
    blk = Block().ints(2).array(x).ints(*x.shape[:4], c).array(out).ints(a, want[2], bb)
    return blk.call("reshape", make_elementwise)

