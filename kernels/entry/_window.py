"""Binders of the loops both layouts share: pools, depthwise conv, LRN.

Each ``bind_*`` takes the arguments of the Python bridge of the same name in
``coinfer.kernels._pool`` / ``_depthwise`` / ``_lrn`` (which the public kernels'
``*_call`` checks produce) and binds the ``@njit`` loop that bridge would call,
with the same route, geometry and read-only tables (pools, depthwise:
:func:`~.generic.bind`; LRN: the ``lrn`` entry).
"""
from __future__ import annotations

import numpy as np

from .. import _depthwise, _lrn, _pool
from .._simd import VW
from ._entries import make_lrn, zero_lanes
from .call import Block, NativeCall, sequence
from .generic import bind

#: (flag, r0, r1, block, first lane) of no padding lanes to zero, and the image shape slots.
NO_TAIL = (0, 0, 0, 0, 0)


def tail_words(tail, out) -> tuple:
    """(flag, r0, r1, block, first lane, N, H, CB, W): the padding lanes of image ``out`` to zero
    after the call (``tail`` = (r0, r1, block, first lane) or None)."""
    shape = tuple(out.shape[:4]) if out.ndim == 5 else (0, 0, 0, 0)
    return ((1, *tail) if tail is not None else NO_TAIL) + shape


def bind_pool(x, out, cell, mode, planes, kernel, stride, pads, include_pad, region) -> NativeCall:
    """``_pool.pool`` as a native call: the same route, tables and loop arguments."""
    nb, xs, os_, h, w, oh, ow = planes
    (kh, kw), (sh, sw), r0, r1, c0, c1 = kernel, stride, *region
    name = "max_pool2d" if mode == _pool.MAX else "avg_pool2d"
    if cell == 1 and sh == sw == 1 and ow == w and xs[2] == w and kw <= 3 and pads[1] <= 1 and kw - pads[1] <= 2:
        cmask, inv = _pool._stream_tables(mode, h, w, oh, kh, kw, pads, include_pad)
        return bind(name, _pool._kernel(mode, "stream"), x.reshape(-1), out.reshape(-1), cmask, inv, nb, xs[0],
                    xs[1], os_[0], os_[1], h, w, kh, kw, pads[0], pads[1], r0, r1, c0, c1, mode,
                    tag="coinfer.kernels._pool stream")
    inv_h, inv_w = _pool._divisors(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad)
    return bind(name, _pool._kernel(mode, "pool", cell), x.reshape(-1), out.reshape(-1), inv_h, inv_w, nb, *xs,
                *os_, h, w, ow, kh, kw, sh, sw, pads[0], pads[1], r0, r1, c0, c1,
                tag=f"coinfer.kernels._pool {'max' if mode == _pool.MAX else 'avg'} {cell}")


def bind_global_avg_pool(x, out, cell, planes, region) -> NativeCall:
    """``_pool.global_avg_pool`` as a native call."""
    nb, xs, os_, nrows, rl, cells = planes
    return bind("global_avg_pool", _pool._kernel("global"), x.reshape(-1), out.reshape(-1), cell, nb, *xs, nrows,
                rl, *os_, np.float32(1.0 / cells), *region, tag="coinfer.kernels._pool global")


def pool_binders(pool, noop) -> tuple:
    """``(max_pool2d, avg_pool2d, global_avg_pool)``: one layout's native pool binders, with
    the Python kernels' signatures.  ``pool`` is that layout's pool module, whose
    ``pool_call`` / ``global_avg_pool_call`` check the arguments (raising as the Python
    kernels do) and name the internal call; ``noop`` binds an empty region."""

    def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, out=None, rows=None,
                   channels=None) -> NativeCall:
        out, call = pool.pool_call("max_pool2d", x, kernel, stride, padding, ceil_mode, None, out, rows, channels)
        return noop("max_pool2d") if call is None else bind_pool(*call)

    def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False, out=None,
                   rows=None, channels=None) -> NativeCall:
        out, call = pool.pool_call("avg_pool2d", x, kernel, stride, padding, ceil_mode, count_include_pad, out,
                                   rows, channels)
        return noop("avg_pool2d") if call is None else bind_pool(*call)

    def global_avg_pool(x, out=None, rows=None, channels=None) -> NativeCall:
        out, call = pool.global_avg_pool_call(x, out, rows, channels)
        return noop("global_avg_pool") if call is None else bind_global_avg_pool(*call)

    return max_pool2d, avg_pool2d, global_avg_pool


def bind_zero_lanes(out, tail) -> NativeCall:
    """``out[:, r0:r1, block, :, lane:] = 0`` on an image (its padding lanes), ``tail`` =
    (r0, r1, block, first lane)."""
    return bind("zero lanes", zero_lanes, out, *tail)


def bind_depthwise(x, w, bias, out, cell, mult, planes, kernel, stride, dilation, pads, relu, region,
                   tail=None) -> NativeCall:
    """``_depthwise.depthwise`` as a native call; ``tail`` (r0, r1, block, first lane): the
    padding lanes of the image ``out`` to zero after it."""
    nb, xs, os_, h, wd, oh, ow = planes
    (kh, kw), (sh, sw), (dh, dw), (r0, r1, c0, c1) = kernel, stride, dilation, region
    pt, pl = pads[0], pads[1]
    xf, of, wf = x.reshape(-1), out.reshape(-1), w.reshape(-1)
    way = _depthwise.route(kernel, stride, dilation)
    if way != "scalar":
        call = bind("depthwise conv2d", _depthwise._kernel(way, cell, sw), xf, of, wf, bias, nb, mult, *xs, *os_, h,
                    wd, ow, kh, kw, sh, sw, dh, dw, pt, pl, bool(relu), r0, r1, c0, c1,
                    tag=f"coinfer.kernels._depthwise {way} {cell} {sw}")
    else:
        call = bind("depthwise conv2d", _depthwise._kernel("scalar"), xf, of, wf, bias, cell, nb, mult, *xs, *os_,
                    h, wd, ow, kh, kw, sh, sw, dh, dw, pt, pl, bool(relu), r0, r1, c0, c1)
    return call if tail is None else sequence("depthwise conv2d", (call, bind_zero_lanes(out, tail)))


def bind_lrn_planes(x, out, size, alpha, beta, k, region) -> NativeCall:
    """``_lrn.lrn_planes``'s loop as a native call."""
    nb, nc, h, w = x.shape
    r0, r1, c0, c1 = region
    lo, hi, k32, alpha_n, beta32, mode = _lrn._params(size, alpha, beta, k)
    b = Block().ints(0).array(x).array(out).ints(x.size).array(np.zeros(VW, np.float32))
    b.ints(nb, nc, h * w, lo, hi, mode, r0 * w, r1 * w, c0, c1).floats(k32, alpha_n, beta32)
    return b.call("lrn", make_lrn)


def bind_lrn_texels(x, out, nc, size, alpha, beta, k, region, tail=None) -> NativeCall:
    """``_lrn.lrn_texels``'s loop as a native call; ``tail`` as in :func:`bind_depthwise`."""
    nb, h, cb, w, _ = x.shape
    lo, hi, k32, alpha_n, beta32, mode = _lrn._params(size, alpha, beta, k)
    b = Block().ints(1).array(x).array(out).ints(x.size).array(np.zeros(VW, np.float32))
    b.ints(nb, h, cb, 4 * w, nc, lo, hi, mode, *region, *tail_words(tail, out)[:5])
    return b.floats(k32, alpha_n, beta32).call("lrn", make_lrn)
