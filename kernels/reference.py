"""Plain-numpy float64 reference for every kernel op (the test oracle).

Each function takes float32 or float64 arrays, computes in float64 and returns
float64.  Names and arguments match the kernel sets (``coinfer.kernels.buffer``
and ``coinfer.kernels.image``) minus ``out``/``rows``/``channels``.  Semantics
are ONNX's (opset 13+) as onnxruntime implements them, in NCHW layout.

NaN and infinities follow IEEE, one rule for the reference and both kernel
sets: every output is computed from the inputs it depends on, so a NaN reaches
exactly the outputs whose window, window sum or axis holds it; max pooling
propagates NaN (``np.max``; onnxruntime's MaxPool skips it), its padding is
-inf; zero padding of conv is multiplied like any input.

Pooling output size, per spatial axis with input ``n``, padding ``(pb, pe)``,
kernel ``k`` and stride ``s``::

    floor mode: out = (n + pb + pe - k) // s + 1
    ceil mode:  out = ceil((n + pb + pe - k) / s) + 1, minus one if the last
                window would start in the end padding ((out-1)*s >= n + pb)

Padding must be smaller than the kernel, so every window holds at least one
input cell.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .geometry import pool_output_size as _window_output

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
    "fully_connected",
    "relu",
    "clip",
    "add",
    "concat",
    "lrn",
    "softmax",
    "resize",
    "pool_output_size",
]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


def _pad4(p) -> tuple[int, int, int, int]:
    """int | (ph, pw) | (top, left, bottom, right) -> (top, left, bottom, right)."""
    if isinstance(p, (tuple, list)):
        if len(p) == 2:
            return int(p[0]), int(p[1]), int(p[0]), int(p[1])
        t, l, b, r = p
        return int(t), int(l), int(b), int(r)
    return (int(p),) * 4


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _quiet(fn):
    """Run ``fn`` without numpy's warnings for NaN and inf (the reference computes with them on purpose)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return fn(*args, **kwargs)

    return wrapper


def pool_output_size(n: int, k: int, s: int, pb: int, pe: int, ceil_mode: bool) -> int:
    """Output length of a pooling window sliding over one axis (ONNX / onnxruntime rule)."""
    out = _window_output(n, k, s, pb, pe, ceil_mode)
    if out < 1:
        raise ValueError(f"pool window {k} larger than padded input {n + pb + pe}")
    return out


@_quiet
def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, relu=False):
    """ONNX Conv: x (N, C, H, W), w (OC, C/groups, KH, KW) -> (N, OC, OH, OW)."""
    x, w = _f64(x), _f64(w)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    pt, pl, pb, pr = _pad4(padding)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    if c != cg * groups or oc % groups:
        raise ValueError(f"conv2d: channels {c} / weights {w.shape} do not fit groups={groups}")
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    # (N, C, OH, OW, KH, KW) windows of the padded input.
    win = sliding_window_view(xp, (ekh, ekw), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = win.shape[2], win.shape[3]
    # Group axis g: input channels g*cg.., output channels g*(oc/groups)..
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    wg = w.reshape(groups, oc // groups, cg, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(n, oc, oh, ow)
    if bias is not None:
        y = y + _f64(bias).reshape(1, -1, 1, 1)
    return np.maximum(y, 0.0) if relu else y


def _pool_geometry(x, kernel, stride, padding, ceil_mode):
    kh, kw = _pair(kernel)
    sh, sw = _pair(kernel if stride is None else stride)
    pt, pl, pb, pr = _pad4(padding)
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(f"pool: padding {padding} must be smaller than kernel {kernel}")
    h, w = x.shape[2], x.shape[3]
    oh = pool_output_size(h, kh, sh, pt, pb, ceil_mode)
    ow = pool_output_size(w, kw, sw, pl, pr, ceil_mode)
    return (kh, kw), (sh, sw), (pt, pl, pb, pr), (oh, ow)


def _pool_windows(x, k, s, p, o, fill):
    """(N, C, OH, OW, KH, KW) windows over x padded with ``fill`` (extra end padding for ceil mode)."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (oh, ow) = k, s, p, o
    h, w = x.shape[2], x.shape[3]
    eb = max(pb, (oh - 1) * sh + kh - h - pt)
    er = max(pr, (ow - 1) * sw + kw - w - pl)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, eb), (pl, er)), constant_values=fill)
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]


@_quiet
def max_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False):
    """ONNX MaxPool; padded cells never win."""
    x = _f64(x)
    geo = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    return _pool_windows(x, *geo, -np.inf).max(axis=(4, 5))


def _axis_counts(n, k, s, pb, pe, o, include_pad):
    """Per output position along one axis: how many cells the divisor counts."""
    start = np.arange(o) * s - pb
    end = start + k
    if include_pad:
        return np.minimum(end, n + pe) - start
    return np.minimum(end, n) - np.maximum(start, 0)


@_quiet
def avg_pool2d(x, kernel, *, stride=None, padding=0, ceil_mode=False, count_include_pad=False):
    """ONNX AveragePool.

    With ``count_include_pad`` the divisor counts the declared padding but not
    the extra end cells a ceil-mode window may reach past it (onnxruntime's rule).
    """
    x = _f64(x)
    geo = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    total = _pool_windows(x, *geo, 0.0).sum(axis=(4, 5))
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (oh, ow) = geo
    ch = _axis_counts(x.shape[2], kh, sh, pt, pb, oh, count_include_pad)
    cw = _axis_counts(x.shape[3], kw, sw, pl, pr, ow, count_include_pad)
    return total / (ch[:, None] * cw[None, :])


@_quiet
def global_avg_pool(x):
    """ONNX GlobalAveragePool: (N, C, H, W) -> (N, C, 1, 1)."""
    return _f64(x).mean(axis=(2, 3), keepdims=True)


@_quiet
def fully_connected(x, w, bias=None, *, relu=False):
    """Gemm with transB: x (N, K), w (M, K) -> (N, M)."""
    y = _f64(x) @ _f64(w).T
    if bias is not None:
        y = y + _f64(bias)
    return np.maximum(y, 0.0) if relu else y


@_quiet
def relu(x):
    return np.maximum(_f64(x), 0.0)


@_quiet
def clip(x, *, min=-np.inf, max=np.inf):  # noqa: A002 - ONNX's names
    """ONNX Clip: min(max(x, min), max), so every value is ``max`` when min > max (NaN stays NaN)."""
    return np.minimum(np.maximum(_f64(x), float(min)), float(max))


@_quiet
def add(a, b, *, relu=False):
    y = _f64(a) + _f64(b)
    return np.maximum(y, 0.0) if relu else y


def concat(xs, axis=1):
    return np.concatenate([_f64(x) for x in xs], axis=axis)


@_quiet
def lrn(x, *, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """ONNX LRN across channels: the window for channel c is
    [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the tensor.

    Each window's squares are summed directly, so a NaN or inf reaches only the
    channels whose window holds it.
    """
    x = _f64(x)
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2
    sq = x * x
    square_sum = np.zeros_like(x)
    for d in range(-lo, hi + 1):  # channel c takes channel c + d
        a, b = max(0, -d), min(c, c - d)
        if a < b:
            square_sum[:, a:b] += sq[:, a + d:b + d]
    return x / (k + alpha / size * square_sum) ** beta


@_quiet
def softmax(x, axis=1):
    """ONNX Softmax (opset 13): normalise along one axis."""
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _linear_taps(n_in: int, n_out: int):
    """Half-pixel linear interpolation along one axis: (first index, second index, weight of the second)."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, pos - i0


def _area_taps(n_in: int, n_out: int):
    """Box filter along one axis: per output cell, the input cells it covers and their weights.

    Output cell i covers input [i*n_in/n_out, (i+1)*n_in/n_out); edge cells are
    weighted by the fraction covered.
    """
    scale = n_in / n_out
    taps = []
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        j = np.arange(int(np.floor(lo)), min(int(np.ceil(hi)), n_in))
        w = (np.minimum(hi, j + 1) - np.maximum(lo, j)) / scale
        keep = w > 0
        taps.append((j[keep], w[keep]))
    return taps


def _resize_axis(x, axis, n_out, mode):
    """Resize ``x`` along ``axis``; each output reads only its own taps (so NaN and inf stay local)."""
    x = np.moveaxis(x, axis, -1)
    if mode == "bilinear":
        i0, i1, f = _linear_taps(x.shape[-1], n_out)
        y = x[..., i0] * (1.0 - f) + x[..., i1] * f
    else:
        y = np.stack([(x[..., j] * w).sum(axis=-1) for j, w in _area_taps(x.shape[-1], n_out)], axis=-1)
    return np.moveaxis(y, -1, axis)


@_quiet
def resize(x, size, *, mode="bilinear"):
    """Resize (N, C, H, W) to ``size=(out_h, out_w)``, separably (H, then W).

    ``bilinear``: ONNX Resize mode=linear, coordinate_transformation_mode=half_pixel,
    no antialias.  ``area``: each output cell is the mean of the input area it
    covers, edge cells weighted by the fraction covered.
    """
    x = _f64(x)
    oh, ow = _pair(size)
    if mode not in ("bilinear", "area"):
        raise ValueError(f"resize: mode must be 'bilinear' or 'area', got {mode!r}")
    return _resize_axis(_resize_axis(x, 2, oh, mode), 3, ow, mode)
