"""ReLU, Clip, Add and Concat on image tensors, whole or by output region.

A region of an image ``(N, H, CB, W, 4)``, rows [r0, r1) x channel blocks
[b0, b1), is in every (n, h) row one contiguous run of floats
[b0*W*4, b1*W*4).  So ReLU, Clip and Add see their tensors as 3-D C-contiguous
views ``(N, H, CB*W*4)`` and loop over rows [r0, r1) x runs [e0, e1); the whole
tensor is the view ``(1, 1, size)``.  One compiled signature serves both.

Channel regions are texel-aligned: ``channels=(c0, c1)`` has both ends
multiples of 4, except that c1 may end inside the last block, where it is the
true channel count (the lanes past it are padding).  Padding lanes stay zero:
ReLU and Add map zero to zero, and Clip, which may not (min > 0 or max < 0),
zeroes them explicitly, so it needs the true channel count then.

Concat joins images along channels: ``channels`` gives each input's true
channel count, and an input that starts inside a texel is repacked lane by
lane, so the output has ``ceil(sum/4)`` blocks with zero padding lanes.
A missing (infinite) clip bound is a flag rather than a comparison.  NaN
propagates through every op here (the reference's rule).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from .._rowloops import add_rows as _add
from .._rowloops import clamp_rows as _clamp
from . import _common

__all__ = ["relu", "clip", "add", "concat"]


@njit(nogil=True, cache=True)
def _copy_channels(x, out, s0, d0, cnt, r0, r1):
    """out channels [d0, d0+cnt) = x channels [s0, s0+cnt) on rows [r0, r1); other lanes untouched.

    When both starts are texel-aligned the whole blocks are one contiguous run
    per row; the channels left (all of them otherwise) are copied lane by lane.
    """
    nb, h, xcb, w, _ = x.shape
    span = 4 * w
    x2 = x.reshape(nb * h, xcb * span)
    o2 = out.reshape(nb * h, out.shape[2] * span)
    full = cnt // 4 if s0 % 4 == 0 and d0 % 4 == 0 else 0
    run = full * span
    xs = (s0 // 4) * span
    ds = (d0 // 4) * span
    for n in range(nb):
        for ih in range(r0, r1):
            xr = x2[n * h + ih, xs:xs + run]
            orow = o2[n * h + ih, ds:ds + run]
            for i in range(run):
                orow[i] = xr[i]
            for d in range(d0 + 4 * full, d0 + cnt):
                s = s0 + d - d0
                xt = x[n, ih, s >> 2]
                ot = out[n, ih, d >> 2]
                sl = s & 3
                k = d & 3
                for i in range(w):
                    ot[i, k] = xt[i, sl]


def _region(op, shape, rows, channels):
    """Checked output region -> (r0, r1, b0, b1, whole) in rows and channel blocks."""
    h, cb = shape[1], shape[2]
    r0, r1 = _args.region(op, "rows", rows, h)
    b0, b1 = _common.block_region(op, channels, cb)
    return r0, r1, b0, b1, (r0, r1, b0, b1) == (0, h, 0, cb)


def _view3(shape, region):
    """3-D kernel view shape of an image and the region (r0, r1, e0, e1) in that view."""
    r0, r1, b0, b1, whole = region
    nb, h, cb, w, _ = shape
    if whole:
        size = nb * h * cb * w * 4
        return (1, 1, size), (0, 1, 0, size)
    return (nb, h, cb * w * 4), (r0, r1, b0 * w * 4, b1 * w * 4)


def relu(x, out=None, rows=None, channels=None) -> np.ndarray:
    """max(x, 0) on an image; ``out`` may be ``x`` itself.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region
    (channels: multiples of 4, c1 may end inside the last block); other cells
    of ``out`` are untouched, and a new output is zero outside the region.
    """
    out, call = relu_call(x, out, rows, channels)
    if call is not None:
        _clamp(*call)
    return out


def relu_call(x, out, rows, channels):
    """The checks of :func:`relu` -> (out, the arguments of ``_rowloops.clamp_rows`` or None)."""
    op = "relu"
    x = _common.image(op, "x", x)
    reg = _region(op, x.shape, rows, channels)
    out = _args.output(op, out, x.shape, reg[4], (x,), in_place=True)
    shape3, (r0, r1, e0, e1) = _view3(x.shape, reg)
    if r0 >= r1 or e0 >= e1:
        return out, None
    return out, (x.reshape(shape3), out.reshape(shape3), np.float32(0.0), np.float32(0.0), True, False,
                 r0, r1, e0, e1)


def _true_channels(op, c, channels, cb, b1, keeps_zero):
    """The true channel count when Clip must zero the padding lanes of the last block, else None.

    A checked ``c`` wins; otherwise a channel region reaching the last block ends at it.
    """
    if c is not None:
        return c
    if keeps_zero or b1 < cb:
        return None
    if channels is not None:
        return int(channels[1])
    raise TypeError(
        f"{op}: c (the true channel count of x) is required when 0 is outside [min, max] "
        "and the region reaches the last channel block (its padding lanes must stay 0)"
    )


def clip(x, *, min=-np.inf, max=np.inf, out=None, rows=None, channels=None, c=None) -> np.ndarray:  # noqa: A002
    """ONNX Clip on an image: min(max(x, min), max) (so all ``max`` when min >= max; NaN stays NaN).

    ReLU6 is ``clip(x, min=0, max=6)``.  ``out`` may be ``x`` itself; ``rows`` /
    ``channels`` as for :func:`relu`.  Padding lanes stay zero: when 0 lies
    outside [min, max], ``c`` (the true channel count) says which lanes are
    padding; it may be left out when the channel region ends at it, or does
    not reach the last block.
    """
    out, call, tail = clip_call(x, min, max, out, rows, channels, c)
    if call is not None:
        _clamp(*call)
    if tail is not None:
        r0, r1, blk, k0 = tail
        out[:, r0:r1, blk, :, k0:] = 0.0
    return out


def clip_call(x, min, max, out, rows, channels, c):  # noqa: A002
    """The checks of :func:`clip` -> (out, the arguments of ``_rowloops.clamp_rows`` or None, the
    padding lanes to zero after it, (r0, r1, block, first lane), or None)."""
    op = "clip"
    lo, hi = _args.clip_bound(op, "min", min), _args.clip_bound(op, "max", max)
    x = _common.image(op, "x", x)
    cb = x.shape[2]
    nc = None if c is None else _common.channels_of(op, "c", c, cb)
    r0, r1 = _args.region(op, "rows", rows, x.shape[1])
    b0, b1 = _common.block_region(op, channels, cb, nc)
    reg = (r0, r1, b0, b1, (r0, r1, b0, b1) == (0, x.shape[1], 0, cb))
    keeps_zero = lo <= 0.0 <= hi if lo < hi else hi == 0.0
    nc = _true_channels(op, nc, channels, cb, b1, keeps_zero)
    out = _args.output(op, out, x.shape, reg[4], (x,), in_place=True)
    shape3, (v0, v1, e0, e1) = _view3(x.shape, reg)
    if v0 >= v1 or e0 >= e1:
        return out, None, None
    # min(max(x, lo), hi): every value is max when min >= max (ONNX), NaN stays NaN.
    use_lo, use_hi = lo > -np.inf, hi < np.inf
    call = (x.reshape(shape3), out.reshape(shape3), np.float32(lo if use_lo else 0.0),
            np.float32(hi if use_hi else 0.0), bool(use_lo), bool(use_hi), v0, v1, e0, e1)
    tail = None
    if not keeps_zero and nc is not None and nc % 4 and b1 == cb:
        tail = (r0, r1, cb - 1, nc % 4)
    return out, call, tail


def add(a, b, *, relu=False, out=None, rows=None, channels=None) -> np.ndarray:
    """a + b for images of one shape, optionally followed by ReLU; ``out`` may be an input.

    ``rows`` / ``channels`` as for :func:`relu`.
    """
    out, call = add_call(a, b, relu, out, rows, channels)
    if call is not None:
        _add(*call)
    return out


def add_call(a, b, relu, out, rows, channels):
    """The checks of :func:`add` -> (out, the arguments of ``_rowloops.add_rows`` or None)."""
    op = "add"
    a = _common.image(op, "a", a)
    b = _common.image(op, "b", b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: b must have the shape of a {a.shape}, got {b.shape}")
    relu = _common.flag(op, "relu", relu)
    reg = _region(op, a.shape, rows, channels)
    out = _args.output(op, out, a.shape, reg[4], (a, b), in_place=True)
    shape3, (r0, r1, e0, e1) = _view3(a.shape, reg)
    if r0 >= r1 or e0 >= e1:
        return out, None
    return out, (a.reshape(shape3), b.reshape(shape3), out.reshape(shape3), relu, r0, r1, e0, e1)


def concat(xs, channels, out=None, *, axis=1, rows=None, out_region=None) -> np.ndarray:
    """Join images (N, H, CB_i, W, 4) along NCHW ``axis`` (negative counts from the end of 4).

    ``channels`` lists the true channel count of every input (each must fit its
    blocks).  Along channels (axis 1) the output has ``ceil(sum/4)`` blocks and an
    input that starts inside a texel is repacked lane by lane; along N, H or W
    (axis 0, 2, 3) every input has the same channels and the other sizes, and
    whole texels are copied.  ``rows=(r0, r1)`` and ``out_region=(c0, c1)``
    (output channels, multiples of 4 except that c1 may be the total channel
    count) compute only that region of the output, which may span several
    inputs; other cells of ``out`` are untouched, and a new output is zero
    outside the region.  Padding lanes of the output are zero.
    """
    out, calls, tail = concat_call(xs, channels, out, axis, rows, out_region)
    if calls is None:
        return _concat_spatial(*tail)
    for x, s0, d0, cnt, r0, r1 in calls:
        _copy_channels(x, out, s0, d0, cnt, r0, r1)
    if tail is not None:
        r0, r1, blk, k0 = tail
        out[:, r0:r1, blk, :, k0:] = 0.0
    return out


def concat_call(xs, channels, out, axis, rows, out_region):
    """The checks of :func:`concat` -> (out, the ``_copy_channels`` calls (x, s0, d0, cnt, r0, r1),
    the padding lanes to zero after them (r0, r1, block, first lane) or None).  Along N, H or W:
    (None, None, the arguments of ``_concat_spatial``)."""
    op = "concat"
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise TypeError(f"{op}: xs must be a non-empty list of images, got {type(xs).__name__}")
    xs = [_common.image(op, f"xs[{i}]", x) for i, x in enumerate(xs)]
    if not isinstance(channels, (list, tuple)) or len(channels) != len(xs):
        raise ValueError(
            f"{op}: channels must list one true channel count per input ({len(xs)}), got {channels!r}"
        )
    counts = [_common.channels_of(op, f"channels[{i}]", c, x.shape[2])
              for i, (c, x) in enumerate(zip(channels, xs))]
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -4 <= axis < 4:
        raise ValueError(f"{op}: axis must be in [-4, 3] (an axis of the NCHW tensors), got {axis}")
    axis = int(axis) % 4
    if axis != 1:
        return None, None, (op, xs, counts, axis, out, rows, out_region)
    n, h, _, w, _ = xs[0].shape
    for i, x in enumerate(xs):
        if (x.shape[0], x.shape[1], x.shape[3]) != (n, h, w):
            raise ValueError(
                f"{op}: xs[{i}] must have N, H, W = {(n, h, w)} like xs[0], got shape {x.shape}"
            )
    total = sum(counts)
    blocks = (total + 3) // 4
    shape = (n, h, blocks, w, 4)
    r0, r1 = _args.region(op, "rows", rows, h)
    c0, c1 = _args.region(op, "out_region", out_region, total, multiple=4)
    out = _args.output(op, out, shape, (r0, r1, c0, c1) == (0, h, 0, total), xs,
                       names=[f"xs[{i}]" for i in range(len(xs))])
    if r0 >= r1 or c0 >= c1:
        return out, [], None
    calls, start = [], 0
    for x, c in zip(xs, counts):
        lo, hi = max(c0, start), min(c1, start + c)
        if lo < hi:
            calls.append((x, lo - start, lo, hi - lo, r0, r1))
        start += c
    tail = (r0, r1, blocks - 1, total % 4) if total % 4 and c1 == total else None
    return out, calls, tail


def _concat_spatial(op, xs, counts, axis, out, rows, out_region):
    """Concat along N (0), H (2) or W (3): whole texels of equal-channel images."""
    dim = {0: 0, 2: 1, 3: 3}[axis]  # the image axis joined
    base = xs[0].shape
    for i, (x, c) in enumerate(zip(xs, counts)):
        if c != counts[0]:
            raise ValueError(
                f"{op}: along axis {axis} every input needs the channels of xs[0] ({counts[0]}), "
                f"got channels[{i}]={c}"
            )
        if any(x.shape[d] != base[d] for d in range(4) if d != dim):
            raise ValueError(
                f"{op}: xs[{i}] shape {x.shape} does not match xs[0] {base} off the joined axis {axis}"
            )
    shape = list(base)
    shape[dim] = sum(x.shape[dim] for x in xs)
    shape = tuple(shape)
    nc, cb = counts[0], base[2]
    r0, r1 = _args.region(op, "rows", rows, shape[1])
    c0, c1 = _args.region(op, "out_region", out_region, nc, multiple=4)
    b0, b1 = c0 // 4, (c1 + 3) // 4
    out = _args.output(op, out, shape, (r0, r1, c0, c1) == (0, shape[1], 0, nc), xs,
                       names=[f"xs[{i}]" for i in range(len(xs))])
    if r0 >= r1 or b0 >= b1:
        return out
    off = 0
    for x in xs:
        k = x.shape[dim]
        if axis == 0:
            out[off:off + k, r0:r1, b0:b1] = x[:, r0:r1, b0:b1]
        elif axis == 2:
            lo, hi = max(r0, off), min(r1, off + k)
            if lo < hi:
                out[:, lo:hi, b0:b1] = x[:, lo - off:hi - off, b0:b1]
        else:
            out[:, r0:r1, b0:b1, off:off + k] = x[:, r0:r1, b0:b1]
        off += k
    if nc % 4 and b1 == cb:  # padding lanes are exact zeros
        out[:, r0:r1, cb - 1, :, nc % 4:] = 0.0
    return out
