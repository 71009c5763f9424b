"""ReLU, Clip, Add and Concat on float32 buffers, whole or by output region.

A region of an NCHW tensor, rows [r0, r1) x channels [c0, c1), is in every
(n, c) plane one contiguous run of cells [r0*W, r1*W).  So the elementwise
kernels see their tensors as 3-D C-contiguous views ``(A, B, L)`` and loop
over [b0, b1) x [e0, e1) with a contiguous inner loop; one compiled signature
serves every rank and region:

- the whole tensor (any rank): ``(1, 1, size)``;
- a region of a 4-D tensor: ``(N, C, H*W)``, e = (r0*W, r1*W);
- a column region of a 2-D ``(N, K)`` tensor: ``(N, 1, K)``, e = (c0, c1).

Concat copies, for each input, the block of it that falls inside the output
region into its place in the output, through 4-D views in which each block's
rows are contiguous runs.  Clip is ``min(max(x, min), max)``, so every value
is max when min >= max (ONNX) and a NaN stays NaN; a missing (infinite) bound
is skipped.  NaN propagates through every op here (the reference's rule).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import args as _args
from .._rowloops import add_rows as _add
from .._rowloops import clamp_rows as _clamp

__all__ = ["relu", "clip", "add", "concat"]


@njit(nogil=True, cache=True)
def _copy_block(src, dst, idx):
    """dst[d + k] = src[s + k] for every 4-D index k < ln, where idx = (s, d, ln) (3 x 4 int64)."""
    # Scalars first: the inner loop then reads no index array, so it vectorises.
    s0, s1, s2, s3 = idx[0, 0], idx[0, 1], idx[0, 2], idx[0, 3]
    d0, d1, d2, d3 = idx[1, 0], idx[1, 1], idx[1, 2], idx[1, 3]
    l0, l1, l2, l3 = idx[2, 0], idx[2, 1], idx[2, 2], idx[2, 3]
    for i in range(l0):
        for j in range(l1):
            for k in range(l2):
                srow = src[s0 + i, s1 + j, s2 + k, s3:s3 + l3]
                drow = dst[d0 + i, d1 + j, d2 + k, d3:d3 + l3]
                for m in range(l3):
                    drow[m] = srow[m]


def _any_rank(op, name, a):
    a = _args.array(op, name, a, None)
    if a.ndim < 1:
        raise ValueError(f"{op}: {name} must have at least 1 axis, got a scalar array")
    return a


def _region(op, shape, rows, channels):
    """Checked output region -> (r0, r1, c0, c1, whole); 2-D tensors have rows (0, 1)."""
    nd = len(shape)
    if rows is not None and nd != 4:
        raise ValueError(f"{op}: rows needs a 4-D (N, C, H, W) output, got {nd}-D shape {shape}")
    if channels is not None and nd not in (2, 4):
        raise ValueError(f"{op}: channels needs a 2-D (N, K) or 4-D (N, C, H, W) output, got {nd}-D shape {shape}")
    h = shape[2] if nd == 4 else 1
    c = shape[1] if nd >= 2 else 1
    r0, r1 = _args.region(op, "rows", rows, h)
    c0, c1 = _args.region(op, "channels", channels, c)
    return r0, r1, c0, c1, (r0, r1, c0, c1) == (0, h, 0, c)


def _view3(shape, region):
    """3-D kernel view shape of a tensor and the region (b0, b1, e0, e1) in that view."""
    r0, r1, c0, c1, whole = region
    if whole:
        size = math.prod(shape)
        return (1, 1, size), (0, 1, 0, size)
    if len(shape) == 2:
        return (shape[0], 1, shape[1]), (0, 1, c0, c1)
    nb, nc, h, w = shape
    return (nb, nc, h * w), (c0, c1, r0 * w, r1 * w)


def clamp_call(op, x, lo, hi, out, rows, channels):
    """Checks of a clamp of ``x`` to [lo, hi] -> (out, the arguments of ``_rowloops.clamp_rows``)."""
    x = _any_rank(op, "x", x)
    reg = _region(op, x.shape, rows, channels)
    out = _args.output(op, out, x.shape, reg[4], (x,), in_place=True)
    shape3, (b0, b1, e0, e1) = _view3(x.shape, reg)
    # min(max(x, lo), hi): every value is max when min >= max (ONNX), NaN stays NaN.
    use_lo, use_hi = lo > -np.inf, hi < np.inf
    return out, (x.reshape(shape3), out.reshape(shape3), np.float32(lo if use_lo else 0.0),
                 np.float32(hi if use_hi else 0.0), bool(use_lo), bool(use_hi), b0, b1, e0, e1)


def _clamp_call(op, x, lo, hi, out, rows, channels):
    out, call = clamp_call(op, x, lo, hi, out, rows, channels)
    _clamp(*call)
    return out


def clip_bounds(min, max):  # noqa: A002
    """Clip's checked bounds (float32 values)."""
    return _args.clip_bound("clip", "min", min), _args.clip_bound("clip", "max", max)


def relu(x, out=None, rows=None, channels=None) -> np.ndarray:
    """max(x, 0) elementwise; ``out`` may be ``x`` itself.

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that output region
    (rows: 4-D x only; channels: axis 1 of a 4-D or 2-D x).
    """
    return _clamp_call("relu", x, 0.0, np.inf, out, rows, channels)


def clip(x, *, min=-np.inf, max=np.inf, out=None, rows=None, channels=None) -> np.ndarray:  # noqa: A002
    """ONNX Clip: min(max(x, min), max) elementwise (so all ``max`` when min > max; NaN stays NaN).

    ``out`` may be ``x`` itself; ``rows`` / ``channels`` as for :func:`relu`.
    ReLU6 is ``clip(x, min=0, max=6)``.
    """
    lo, hi = clip_bounds(min, max)
    return _clamp_call("clip", x, lo, hi, out, rows, channels)


def add(a, b, *, relu=False, out=None, rows=None, channels=None) -> np.ndarray:
    """a + b for equal shapes (no broadcasting), optionally followed by ReLU.

    ``out`` may be ``a`` or ``b`` itself; ``rows`` / ``channels`` as for :func:`relu`.
    """
    out, call = add_call(a, b, relu, out, rows, channels)
    _add(*call)
    return out


def add_call(a, b, relu, out, rows, channels):
    """The checks of :func:`add` -> (out, the arguments of ``_rowloops.add_rows``)."""
    op = "add"
    a = _any_rank(op, "a", a)
    b = _any_rank(op, "b", b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: b must have the shape of a {a.shape}, got {b.shape}")
    if not isinstance(relu, (bool, np.bool_, int, np.integer)) or relu not in (0, 1):
        raise TypeError(f"{op}: relu must be a bool, got {relu!r}")
    reg = _region(op, a.shape, rows, channels)
    out = _args.output(op, out, a.shape, reg[4], (a, b), in_place=True)
    shape3, (b0, b1, e0, e1) = _view3(a.shape, reg)
    return out, (a.reshape(shape3), b.reshape(shape3), out.reshape(shape3), bool(relu), b0, b1, e0, e1)


def _concat_views(xs, out, axis, reg):
    """4-D views of the inputs and the output, the join axis in them, and the
    output region per view axis."""
    r0, r1, c0, c1, whole = reg
    shape = out.shape
    if whole:
        # Each input is a run of (outer, k * inner) rows: join along the last axis.
        outer = math.prod(shape[:axis])
        inner = math.prod(shape[axis + 1:])
        views = [x.reshape(outer, 1, 1, x.shape[axis] * inner) for x in xs]
        dst = out.reshape(outer, 1, 1, shape[axis] * inner)
        return views, dst, 3, [(0, s) for s in dst.shape]
    if out.ndim == 2:
        views = [x.reshape(x.shape[0], 1, 1, x.shape[1]) for x in xs]
        dst = out.reshape(shape[0], 1, 1, shape[1])
        return views, dst, (0 if axis == 0 else 3), [(0, shape[0]), (0, 1), (0, 1), (c0, c1)]
    nb, nc, h, w = shape
    if axis == 3:
        return xs, out, 3, [(0, nb), (c0, c1), (r0, r1), (0, w)]
    # Rows of a plane are one run of H*W cells; a row join is a join of those runs.
    views = [x.reshape(x.shape[0], x.shape[1], 1, x.shape[2] * w) for x in xs]
    region = [(0, nb), (c0, c1), (0, 1), (r0 * w, r1 * w)]
    return views, out.reshape(nb, nc, 1, h * w), (3 if axis == 2 else axis), region


def concat(xs, axis=1, out=None, rows=None, channels=None) -> np.ndarray:
    """Join tensors of equal rank along ``axis`` (negative counts from the end).

    ``rows=(r0, r1)`` / ``channels=(c0, c1)`` compute only that region of the
    output (rows: 4-D only; channels: axis 1 of a 4-D or 2-D output); a channel
    region of a channel concat may span several inputs.
    """
    out, blocks = concat_call(xs, axis, out, rows, channels)
    for v, dst, idx in blocks:
        _copy_block(v, dst, idx)
    return out


def concat_call(xs, axis, out, rows, channels):
    """The checks of :func:`concat` -> (out, the ``_copy_block`` calls (src view, dst view, index))."""
    op = "concat"
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise TypeError(f"{op}: xs must be a non-empty list of arrays, got {type(xs).__name__}")
    xs = [_any_rank(op, f"xs[{i}]", x) for i, x in enumerate(xs)]
    rank = xs[0].ndim
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{op}: axis must be in [{-rank}, {rank - 1}] for {rank}-D inputs, got {axis}")
    axis = int(axis) % rank
    base = xs[0].shape
    for i, x in enumerate(xs):
        if x.ndim != rank or x.shape[:axis] != base[:axis] or x.shape[axis + 1:] != base[axis + 1:]:
            raise ValueError(
                f"{op}: xs[{i}] shape {x.shape} does not match xs[0] {base} off axis {axis}"
            )
    shape = base[:axis] + (sum(x.shape[axis] for x in xs),) + base[axis + 1:]
    reg = _region(op, shape, rows, channels)
    out = _args.output(op, out, shape, reg[4], xs)
    if out.size == 0:
        return out, []
    views, dst, ax, region = _concat_views(xs, out, axis, reg)
    start = [r[0] for r in region]
    size = [r[1] - r[0] for r in region]
    if min(size[k] for k in range(4) if k != ax) <= 0:
        return out, []
    blocks, off = [], 0
    for v in views:
        k = v.shape[ax]
        lo, hi = max(region[ax][0], off), min(region[ax][1], off + k)
        if lo < hi:
            s, d, ln = list(start), list(start), list(size)
            s[ax], d[ax], ln[ax] = lo - off, lo, hi - lo
            blocks.append((v, dst, np.array((s, d, ln), np.int64)))
        off += k
    return out, blocks
