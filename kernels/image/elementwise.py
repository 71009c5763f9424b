"""ReLU, Add and Concat on image tensors.

ReLU and Add run through a flat view (zero padding lanes stay zero).  Concat
joins images along channels: ``channels`` gives each input's true channel
count, and an input that starts inside a texel is repacked lane by lane, so
the output has ``ceil(sum/4)`` blocks with zero padding lanes.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import _args
from . import _common

__all__ = ["relu", "add", "concat"]


@njit(nogil=True, fastmath=True, cache=True)
def _relu(x, out):
    for i in range(x.size):
        out[i] = max(x[i], np.float32(0.0))


@njit(nogil=True, fastmath=True, cache=True)
def _add(a, b, out, relu):
    if relu:
        for i in range(a.size):
            out[i] = max(a[i] + b[i], np.float32(0.0))
    else:
        for i in range(a.size):
            out[i] = a[i] + b[i]


@njit(nogil=True, fastmath=True, cache=True)
def _copy_channels(x, c, out, start):
    """out channels [start, start + c) = x channels [0, c); other lanes untouched."""
    nb, h, _, w, _ = x.shape
    for n in range(nb):
        for ih in range(h):
            for ch in range(c):
                ob, ol = divmod(start + ch, 4)
                src = x[n, ih, ch >> 2]
                dst = out[n, ih, ob]
                for i in range(w):
                    dst[i, ol] = src[i, ch & 3]


def _same_out(op, out, shape, *inputs):
    """New output, or the checked ``out``: it may be an input itself but not overlap one partially."""
    if out is None:
        return np.empty(shape, np.float32)
    out = _args.out_array(op, out, shape)
    for a in inputs:
        if np.may_share_memory(out, a) and out.ctypes.data != a.ctypes.data:
            raise ValueError(f"{op}: out must be an input itself or not overlap it")
    return out


def relu(x, out=None) -> np.ndarray:
    """max(x, 0) on an image; ``out`` may be ``x`` itself."""
    op = "relu"
    x = _common.image(op, "x", x)
    out = _same_out(op, out, x.shape, x)
    _relu(x.reshape(-1), out.reshape(-1))
    return out


def add(a, b, *, relu=False, out=None) -> np.ndarray:
    """a + b for images of one shape, optionally followed by ReLU; ``out`` may be an input."""
    op = "add"
    a = _common.image(op, "a", a)
    b = _common.image(op, "b", b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: b must have the shape of a {a.shape}, got {b.shape}")
    relu = _common.flag(op, "relu", relu)
    out = _same_out(op, out, a.shape, a, b)
    _add(a.reshape(-1), b.reshape(-1), out.reshape(-1), relu)
    return out


def concat(xs, channels, out=None) -> np.ndarray:
    """Join images (N, H, CB_i, W, 4) along channels -> (N, H, ceil(sum/4), W, 4).

    ``channels`` lists the true channel count of every input (each must fit its
    blocks).  Inputs that start on a texel boundary are copied block-wise; the
    others are repacked lane by lane.  Padding lanes of the output are zero.
    """
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
    n, h, _, w, _ = xs[0].shape
    for i, x in enumerate(xs):
        if (x.shape[0], x.shape[1], x.shape[3]) != (n, h, w):
            raise ValueError(
                f"{op}: xs[{i}] must have N, H, W = {(n, h, w)} like xs[0], got shape {x.shape}"
            )
    total = sum(counts)
    shape = (n, h, (total + 3) // 4, w, 4)
    out = _args.out_array(op, out, shape) if out is not None else np.empty(shape, np.float32)
    for i, x in enumerate(xs):
        if np.may_share_memory(out, x):
            raise ValueError(f"{op}: out must not overlap xs[{i}]")
    start = 0
    for x, c in zip(xs, counts):
        if start % 4 == 0:
            # Whole blocks; a partial last block brings its zero lanes, which a later input overwrites.
            out[:, :, start // 4:start // 4 + x.shape[2]] = x
        else:
            _copy_channels(x, c, out, start)
        start += c
    if total % 4:
        out[:, :, -1, :, total % 4:] = 0.0
    return out
