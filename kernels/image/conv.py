"""conv2d on image tensors (ONNX Conv semantics), ordinary or depthwise.

Activations are images ``(N, H, CB, W, 4)``; the filter is a filter image
``(OCB, KH, KW, IC, 4)`` from ``layout.filter_to_image`` (ordinary conv), the
same filter packed once by :func:`prepack_filter` (a :class:`PackedFilter`,
which a model's executor prepares once instead of on every call and region),
or ``(CB, KH, KW, 4)`` from ``layout.depthwise_to_image`` (depthwise conv, one
filter per channel).  Other group counts are not supported on images.

The image loses the exact output channel count, so it is taken from
``out_channels``, else from the length of ``bias``, else (depthwise) from
``groups``, else it is ``4*OCB``.  It decides the bias length and which lanes
of the last output block are padding (always written as exact zeros).
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from .. import args as _args
from . import _common
from . import _depthwise, _grouped
from ..buffer._conv_simd import aligned_empty
from ._conv_tiles import GROUP, conv_region, pack_filter

__all__ = ["conv2d", "conv_output_size", "prepack_filter", "PackedFilter"]

_scratch = threading.local()


class PackedFilter:
    """A filter image packed for the image conv's register tiles; see :func:`prepack_filter`.

    ``data`` is float32 ``(ceil(OCB/4), KH*KW*IC, 16)``: 16 output channels per
    group, one row of 16 filter values per reduction step (kh, kw, ic).
    ``shape`` is the filter image's shape ``(OCB, KH, KW, IC, 4)``.
    """

    __slots__ = ("data", "shape")

    def __init__(self, data: np.ndarray, shape: tuple):
        self.data = data
        self.shape = tuple(shape)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def __repr__(self) -> str:
        return f"PackedFilter(shape={self.shape})"


def prepack_filter(w) -> PackedFilter:
    """Pack a filter image ``w`` (OCB, KH, KW, IC, 4) once for :func:`conv2d`.

    ``conv2d(x, prepack_filter(w), ...)`` computes exactly what ``conv2d(x, w, ...)``
    does, without repacking the filter on every call and every region.  Raises
    ValueError/TypeError for anything but a float32 filter image.
    """
    op = "prepack_filter"
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{op}: w must be a numpy.ndarray filter image (OCB, KH, KW, IC, 4), "
                        f"got {type(w).__name__}")
    w = _args.array(op, "w", w, 5)
    if w.shape[-1] != 4 or min(w.shape) < 1:
        raise ValueError(f"{op}: w must be a filter image (OCB, KH, KW, IC, 4) with no empty axis, "
                         f"got {w.shape}")
    ocb, kh, kw, ic, _ = w.shape
    data = aligned_empty((-(-ocb // 4), kh * kw * ic, GROUP))
    pack_filter(w, data)
    return PackedFilter(data, w.shape)


def conv_output_size(n: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    """Output length along one axis; < 1 when the dilated kernel does not fit."""
    span = n + pb + pe - (d * (k - 1) + 1)
    return span // s + 1 if span >= 0 else 0


def _filter(op: str, x: np.ndarray, w, groups):
    """Checked filter -> (w, depthwise, out blocks, default out_channels or None)."""
    if isinstance(w, PackedFilter):
        _check_filter_channels(op, w.shape, x.shape[2], groups)
        return w, False, w.shape[0], None
    if not isinstance(w, np.ndarray) or w.ndim not in (4, 5):
        shape = getattr(w, "shape", type(w).__name__)
        raise ValueError(
            f"{op}: w must be a filter image (OCB, KH, KW, IC, 4) or a depthwise filter "
            f"(CB, KH, KW, 4), got {shape}"
        )
    w = _args.array(op, "w", w, w.ndim)
    cb = x.shape[2]
    if w.shape[-1] != 4 or min(w.shape) < 1:
        raise ValueError(f"{op}: w must end in a texel axis of 4 and have no empty axis, got {w.shape}")
    if w.ndim == 5:
        _check_filter_channels(op, w.shape, cb, groups)
        return w, False, w.shape[0], None
    if w.shape[0] != cb:
        raise ValueError(
            f"{op}: depthwise filter must have {cb} channel blocks like x, got shape {w.shape}"
        )
    c = None if groups is None else _common.channels_of(op, "groups", groups, cb)
    return w, True, cb, c


def _check_filter_channels(op: str, shape, cb: int, groups) -> None:
    ic = shape[3]
    if not 4 * cb - 3 <= ic <= 4 * cb:
        raise ValueError(
            f"{op}: w has {ic} input channels but x has {cb} channel blocks "
            f"(expected {4 * cb - 3}..{4 * cb})"
        )
    if groups is not None and groups != 1:
        raise ValueError(
            f"{op}: groups must be 1 with a filter image (OCB, KH, KW, IC, 4), got {groups!r}; "
            "depthwise conv takes a (CB, KH, KW, 4) filter"
        )


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=None, relu=False,
           out=None, rows=None, channels=None, out_channels=None) -> np.ndarray:
    """ONNX Conv on an image x (N, H, CB, W, 4) -> image (N, OH, OCB, OW, 4).

    ``w`` is a filter image (OCB, KH, KW, IC, 4), the same packed by
    :func:`prepack_filter`, or (CB, KH, KW, 4) for depthwise conv.  ``groups`` is optional: 1 for a filter image, the channel count C for a
    depthwise filter.  ``bias`` is a plain (OC,) vector.  ``out_channels`` is the
    true OC (see the module doc).  padding is an int, (ph, pw) or (top, left,
    bottom, right).  ``rows=(r0, r1)`` output rows and ``channels=(c0, c1)``
    output channels (multiples of 4; c1 may be OC) compute only that region;
    other cells of ``out`` are untouched.  NaN and infinities propagate as in
    IEEE arithmetic (ReLU keeps NaN); lanes past ``out_channels`` are zeros.
    """
    op = "conv2d"
    x = _common.image(op, "x", x)
    kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, relu=relu, out=out,
               rows=rows, channels=channels, out_channels=out_channels)
    if isinstance(w, np.ndarray) and w.ndim == 4:  # depthwise, any channel multiplier
        return _depthwise.conv2d(x, w, bias, **kw_)
    if isinstance(w, np.ndarray) and w.ndim == 5 and groups not in (None, 1):  # grouped
        return _grouped.conv2d(x, w, bias, **kw_)
    c = checked_dense(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels)
    r0, r1, b0, b1 = c.region
    if r0 == r1 or b0 == b1:
        return c.out
    xin, row0 = _input_rows(c.x, r0, r1, c.stride[0], c.dilation[0], c.kh, *c.padding[:2], c.padding[3])
    conv_region(xin, c.packed.data, c.kh, c.kw, c.packed.shape[3], c.bias16, c.out, row0, *c.stride, *c.dilation,
                r0, r1, b0, b1, c.oc, c.relu)
    return c.out


class Dense(NamedTuple):
    """A checked ordinary (dense) image conv: the arrays, the geometry, the output region
    (r0, r1, b0, b1) in rows and channel blocks, and the true output channels ``oc``."""

    x: np.ndarray
    packed: PackedFilter
    bias16: np.ndarray
    out: np.ndarray
    kh: int
    kw: int
    stride: tuple
    dilation: tuple
    padding: tuple
    region: tuple
    oc: int
    relu: int


def checked_dense(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels,
                  out_channels) -> Dense:
    """The argument checks of :func:`conv2d` with a filter image (or a depthwise filter and
    ``groups=None``, which it takes as dense); the filter packed, the bias padded per group."""
    op = "conv2d"
    x = _common.image(op, "x", x)
    w, depthwise, ocb, oc_default = _filter(op, x, w, groups)
    if out_channels is None and bias is not None and isinstance(bias, np.ndarray) and bias.ndim == 1:
        out_channels = bias.shape[0]
    oc = _common.channels_of(op, "out_channels", out_channels, ocb,
                             oc_default if oc_default is not None else 4 * ocb)
    if depthwise and oc_default is not None and oc != oc_default:
        raise ValueError(f"{op}: depthwise out_channels {oc} must equal groups {oc_default}")
    bias_p = _common.bias_vector(op, bias, oc, ocb)
    relu = _common.flag(op, "relu", relu)
    sh, sw = _args.pair(op, "stride", stride)
    dh, dw = _args.pair(op, "dilation", dilation)
    pt, pl, pb, pr = _args.padding4(op, padding)
    kh, kw = w.shape[1], w.shape[2]
    nb, h, cb, wd, _ = x.shape
    oh = conv_output_size(h, kh, sh, dh, pt, pb)
    ow = conv_output_size(wd, kw, sw, dw, pl, pr)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{op}: kernel {(kh, kw)} with dilation {(dh, dw)} does not fit input "
            f"{(h, wd)} with padding {(pt, pl, pb, pr)}"
        )
    r0, r1 = _args.region(op, "rows", rows, oh)
    b0, b1 = _common.block_region(op, channels, ocb, oc)
    shape = (nb, oh, ocb, ow, 4)
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, oh, 0, ocb))
    packed = w if isinstance(w, PackedFilter) else prepack_filter(w)
    groups = packed.data.shape[0]
    bias16 = aligned_empty(groups * GROUP)
    bias16[:] = 0.0
    bias16[:bias_p.shape[0]] = bias_p
    return Dense(x, packed, bias16, out, kh, kw, (sh, sw), (dh, dw), (pt, pl, pb, pr), (r0, r1, b0, b1), oc,
                 int(relu))


def _input_rows(x, r0, r1, sh, dh, kh, pt, pl, pr):
    """The input rows output rows [r0, r1) read, zero-padded where they leave x.

    Returns (image, row of that image where output row r0's window starts).  x
    itself is returned when the rows need no padding; else a per-thread
    scratch image, reused between calls, whose borders are zeroed each time.
    """
    nb, h, cb, wd, _ = x.shape
    lo = r0 * sh - pt
    hi = (r1 - 1) * sh - pt + dh * (kh - 1) + 1
    if lo >= 0 and hi <= h and pl == 0 and pr == 0:
        return x, lo
    shape = (nb, hi - lo, cb, wd + pl + pr, 4)
    size = int(np.prod(shape))
    buf = getattr(_scratch, "padded", None)
    if buf is None or buf.size < size:
        buf = np.empty(size, np.float32)
        _scratch.padded = buf
    xp = buf[:size].reshape(shape)
    a, b = max(lo, 0), min(hi, h)
    xp[:, :max(a - lo, 0)] = 0.0
    xp[:, max(b - lo, 0):] = 0.0
    if b > a:
        xp[:, a - lo:b - lo, :, :pl] = 0.0
        xp[:, a - lo:b - lo, :, pl + wd:] = 0.0
        xp[:, a - lo:b - lo, :, pl:pl + wd] = x[:, a:b]
    return xp, 0
