"""Binders of the loops both layouts share: pools, depthwise conv, LRN.

Each ``bind_*`` takes the arguments of the Python bridge of the same name in
``coinfer.kernels._pool`` / ``_depthwise`` / ``_lrn`` (which the public kernels'
``*_call`` checks produce) and packs the arguments that bridge would pass to its
``@njit`` loop, with the same geometry and read-only tables, into a
:class:`~.call.NativeCall` of the ``window`` or ``lrn`` entry.  Scratch rows that
the Python bridges keep per thread (and refill when the geometry changes) are
owned by the call, filled once.
"""
from __future__ import annotations

import numpy as np

from .. import _lrn, _pool
from .._depthwise import BAND_FLOATS
from .._simd import VW
from .._window import row_geometry, tap_columns
from ._entries import make_lrn, make_window
from .call import Block, NativeCall

#: (flag, r0, r1, block, first lane) of no padding lanes to zero, and the image shape slots.
NO_TAIL = (0, 0, 0, 0, 0)


def tail_words(tail, out) -> tuple:
    """(flag, r0, r1, block, first lane, N, H, CB, W): the padding lanes of image ``out`` to zero
    after the call (``tail`` = (r0, r1, block, first lane) or None)."""
    shape = tuple(out.shape[:4]) if out.ndim == 5 else (0, 0, 0, 0)
    return ((1, *tail) if tail is not None else NO_TAIL) + shape


def bind_pool(x, out, cell, mode, planes, kernel, stride, pads, include_pad, region) -> NativeCall:
    """``_pool.pool``'s loop as a native call."""
    nb, xs, os_, h, w, oh, ow = planes
    (kh, kw), (sh, sw), (r0, r1, c0, c1) = kernel, stride, region
    wq, wql, coff, inv_h, inv_w = _pool._geometry(cell, mode, h, w, oh, ow, kh, kw, sh, sw, pads, include_pad)
    p = np.full(max(2 * sw * wql, VW), -np.inf if mode == _pool.MAX else 0.0, np.float32)
    b = Block().ints(0 if mode == _pool.MAX else 1).flat(x).flat(out).flat(p).array(coff, np.int64).ints(coff.size)
    b.flat(inv_h).flat(inv_w).ints(cell, nb, *xs, *os_, h, w, ow, kh, kw, sh, sw, pads[0], pads[1], wq, wql,
                                   r0, r1, c0, c1)
    return b.call("max_pool2d" if mode == _pool.MAX else "avg_pool2d", make_window)


def bind_global_avg_pool(x, out, cell, planes, region) -> NativeCall:
    """``_pool.global_avg_pool``'s loop as a native call."""
    nb, xs, os_, nrows, rl, cells = planes
    b = Block().ints(2).flat(x).flat(out).ints(cell, nb, *xs, nrows, rl, *os_, *region)
    return b.floats(np.float32(1.0 / cells)).call("global_avg_pool", make_window)


def bind_depthwise(x, w, bias, out, cell, mult, planes, kernel, stride, dilation, pads, relu, region,
                   tail=None) -> NativeCall:
    """``_depthwise.depthwise``'s loop as a native call; ``tail`` (r0, r1, block, first lane): the
    padding lanes of the image ``out`` to zero after it."""
    nb, xs, os_, h, wd, oh, ow = planes
    (kh, kw), (sh, sw), (dh, dw), (r0, r1, c0, c1) = kernel, stride, dilation, region
    pt, pl = pads[0], pads[1]
    wq, wql = row_geometry(ow, cell, kw, sw, dw, pl)
    rs = sw * wql
    span = dh * (kh - 1) + 1
    rows = max(1, min(r1 - r0, (BAND_FLOATS // rs - span) // sh + 1))
    p = np.zeros(((rows - 1) * sh + span + 1) * rs, np.float32)
    wvec = np.zeros(max(9, kh * kw) * VW, np.float32)
    coff = tap_columns(kw, sw, dw, wql, cell)
    b = Block().ints(3).flat(x.reshape(-1)).flat(out.reshape(-1)).flat(p).array(coff, np.int64).ints(coff.size)
    b.flat(w.reshape(-1)).flat(bias).flat(wvec)
    b.ints(cell, nb, mult, *xs, *os_, h, wd, ow, kh, kw, sh, sw, dh, pt, pl, wq, wql, rows, bool(relu),
           r0, r1, c0, c1, *tail_words(tail, out))
    return b.call("depthwise conv2d", make_window)


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
