"""Native calls of the buffer kernels: ``coinfer.kernels.buffer``'s functions, bound instead of run.

Each function takes the arguments of the kernel of the same name, runs its
checks (the kernel's own ``*_call`` / ``checked`` function: the same errors), and
returns a :class:`~.call.NativeCall` that computes, from C, exactly what the
kernel would compute on those arrays (the same ``@njit`` loop with the same
arguments).  The call reads and writes the arrays given, whenever it runs.
``copy(x, out)`` is the data movement of dropout, flatten and reshape.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..buffer import conv as _conv
from ..buffer import elementwise as _ew
from ..buffer import fc as _fc
from ..buffer.lrn import lrn_call
from ..buffer import pool as _pool
from ..buffer.softmax import softmax_call
from ..buffer._conv_depthwise import depthwise_call
from .._tiles import GROUP, tile_scratch
from ..buffer._conv_pixels import conv_pixels as _conv_pixels_py
from ..buffer._conv_planes import PLANE_SLACK, plane_geometry
from . import _window
from ._entries import SUBCALL, make_concat, make_elementwise, make_fc, make_softmax
from .call import Block, NativeCall
from .generic import Scratch, bind

#: The Python path runs its loop over images and groups in Python around the compiled plane copy
#: and tile pass; a native call has no interpreter, so the same loop is compiled here (it calls
#: the same compiled pass, so the outputs are the same bits).
conv_pixels = njit(nogil=True, cache=True)(_conv_pixels_py)

__all__ = ["conv2d", "fully_connected", "max_pool2d", "avg_pool2d", "global_avg_pool", "relu", "clip", "add",
           "concat", "lrn", "softmax", "copy", "noop"]


def noop(name: str = "nothing") -> NativeCall:
    """A call that computes nothing (an empty region)."""
    z = np.zeros(1, np.float32)
    return Block().ints(0).array(z).array(z).ints(1, 1, 1, 0, 0, 0, 0, 0, 0).pad(21).floats(0, 0).call(
        name, make_elementwise)


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, relu=False, out=None, rows=None,
           channels=None) -> NativeCall:
    c = _conv.checked(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels)
    r0, r1, c0, c1 = c.region
    if r0 >= r1 or c0 >= c1:
        return noop("conv2d")
    n, ch, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = c.geometry
    cg = ch // c.groups
    if cg == 1 and c.groups == ch:
        return _window.bind_depthwise(*depthwise_call(c.x.reshape(-1), c.w.reshape(-1), c.bias, c.out.reshape(-1),
                                                      c.geometry, c.region, c.relu))
    hq, wq = plane_geometry(ow, kh, kw, sh, sw, dh, dw, r1 - r0)
    # as buffer.conv._compute: a 1x1, stride-1, unpadded conv reads the input in place
    in_place = kh == kw == 1 and sh == sw == 1 and pt == pl == 0 and c.no_far_padding
    planes = Scratch("planes", (1 if in_place else cg * sh * sw * hq * wq + PLANE_SLACK + wq,))
    mg = oc // c.groups
    g16 = -(-mg // GROUP)
    wp = (c.packed if c.packed is not None else _conv.prepack_weights(c.w, c.groups)).data
    bp = np.zeros((c.groups, g16 * GROUP), np.float32)
    bp[:, :mg] = c.bias.reshape(c.groups, mg)
    offs = _conv._offsets(cg, kh, kw, sh, sw, dh, dw, hq, wq, h * wd, in_place)
    return bind("conv2d", conv_pixels, c.x.reshape(-1), wp.reshape(-1), bp.reshape(-1), c.out.reshape(-1), planes,
                offs, in_place, *tile_scratch(), n, ch, h, wd, oc, oh, ow, sh, sw, pt, pl, hq, wq, c.groups,
                r0, r1, c0, c1, c.relu)


def fully_connected(x, w, bias=None, *, relu=False, out=None, channels=None) -> NativeCall:
    x, w, b, out, n, k, m, c0, c1, relu = _fc.checked(x, w, bias, relu, out, channels)
    blk = Block().ints(0).flat(x).flat(w).flat(b).flat(out).ints(n, k, m, c0, c1, relu)
    return blk.call("fully_connected", make_fc)


#: The pool binders, shared with the other layout (see ``_window.pool_binders``).
max_pool2d, avg_pool2d, global_avg_pool = _window.pool_binders(_pool, noop)


def bind_clamp(name, x3, out3, lo, hi, use_lo, use_hi, b0, b1, e0, e1, tail=None, image=None) -> NativeCall:
    """``_rowloops.clamp_rows`` on 3-D views as a native call; ``tail``: padding lanes of the
    image ``image`` to zero after it (see ``_window.tail_words``)."""
    b = Block().ints(0).array(x3).array(out3).ints(*x3.shape, use_lo, use_hi, b0, b1, e0, e1)
    b.ints(*_window.tail_words(tail, image if image is not None else out3))
    return b.floats(lo, hi).call(name, make_elementwise)


def bind_add(name, a3, b3, out3, relu, b0, b1, e0, e1) -> NativeCall:
    """``_rowloops.add_rows`` on 3-D views as a native call."""
    b = Block().ints(1).array(a3).array(b3).array(out3).ints(*a3.shape, relu, b0, b1, e0, e1)
    return b.call(name, make_elementwise)


def relu(x, out=None, rows=None, channels=None) -> NativeCall:
    out, call = _ew.clamp_call("relu", x, 0.0, np.inf, out, rows, channels)
    return bind_clamp("relu", *call)


def clip(x, *, min=-np.inf, max=np.inf, out=None, rows=None, channels=None) -> NativeCall:  # noqa: A002
    lo, hi = _ew.clip_bounds(min, max)
    out, call = _ew.clamp_call("clip", x, lo, hi, out, rows, channels)
    return bind_clamp("clip", *call)


def add(a, b, *, relu=False, out=None, rows=None, channels=None) -> NativeCall:
    out, call = _ew.add_call(a, b, relu, out, rows, channels)
    return bind_add("add", *call)


def copy(x, out) -> NativeCall:
    """``out[...] = x`` for float32 arrays of one size (dropout, flatten, reshape)."""
    if not (isinstance(x, np.ndarray) and isinstance(out, np.ndarray)) or x.size != out.size:
        raise ValueError(f"copy: x and out must be arrays of one size, got {getattr(x, 'shape', x)} and "
                         f"{getattr(out, 'shape', out)}")
    x3, out3 = x.reshape(1, 1, x.size), out.reshape(1, 1, out.size)
    return bind_clamp("copy", x3, out3, 0.0, 0.0, False, False, 0, 1, 0, x.size)


def concat(xs, axis=1, out=None, rows=None, channels=None) -> NativeCall:
    out, blocks = _ew.concat_call(xs, axis, out, rows, channels)
    b = Block().array(out).ints(len(blocks))
    for v, dst, idx in blocks:
        start = len(b)
        b.ints(0).array(v).ints(*v.shape, *dst.shape, *idx.reshape(-1)).pad(start + SUBCALL)
    return b.ints(*_window.NO_TAIL, 0, 0, 0, 0).call("concat", make_concat)


def lrn(x, *, size=5, alpha=1e-4, beta=0.75, k=1.0, out=None, rows=None, channels=None) -> NativeCall:
    out, call = lrn_call(x, size, alpha, beta, k, out, rows, channels)
    return noop("lrn") if call is None else _window.bind_lrn_planes(*call)


def bind_softmax(x, out, calls, tail=None) -> NativeCall:
    """Softmax calls on ``x`` / ``out`` as one native call: (5-D view, box) of ``_softmax.softmax``,
    or (None, (c, r0, r1)) of ``image.softmax``'s channel softmax; ``tail`` as in ``bind_clamp``."""
    b = Block().array(x).array(out)
    calls = [(v, box) for v, box in calls if v is None or all(lo < hi for lo, hi in box)]
    b.ints(len(calls))
    for view, box in calls:
        start = len(b)
        if view is None:
            b.ints(1, *x.shape[:4], *box)
        else:
            b.ints(0, *view, *(e for r in box for e in r))
        b.pad(start + SUBCALL)
    return b.ints(*_window.tail_words(tail, out)).call("softmax", make_softmax)


def softmax(x, axis=1, out=None, rows=None, channels=None) -> NativeCall:
    x, out, calls = softmax_call(x, axis, out, rows, channels)
    return bind_softmax(x, out, calls)
