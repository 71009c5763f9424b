"""conv2d on image tensors (ONNX Conv semantics): dense, grouped or depthwise.

Activations are images ``(N, H, CB, W, 4)``.  Dense and grouped convs take a
filter image ``(OCB, KH, KW, C/groups, 4)`` from ``layout.filter_to_image`` of the
ONNX weights ``(OC, C/groups, KH, KW)``, or the same packed once by
:func:`prepack_filter` (a :class:`PackedFilter`, which a model's executor
prepares once instead of on every call and region).  Depthwise conv takes
``(OCB, KH, KW, 4)`` from ``layout.depthwise_to_image`` (one filter per output
channel, any channel multiplier; see ``_depthwise``).

The image loses the exact output channel count, so it is taken from
``out_channels``, else from the length of ``bias``, else from the packed filter,
else (depthwise) from ``groups``, else it is ``4*OCB``.  It decides the bias
length and which lanes of the last output block are padding (always written
as exact zeros).
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import args as _args
from .._tiles import GROUP, pack_filter_rows, tile_scratch
from . import _common
from . import _depthwise
from ._conv_tiles import conv_region, tap_offsets

__all__ = ["conv2d", "conv_output_size", "prepack_filter", "PackedFilter"]

_scratch = threading.local()


class PackedFilter:
    """A filter image packed for the image conv's register tiles; see :func:`prepack_filter`.

    ``data`` is float32 ``(groups, ceil(OC/groups/16), KH*KW*IC, 16)``: per group, 16 output
    channels per row group, one row of 16 filter values per reduction step (kh, kw, ic).
    ``shape`` is the filter image's shape ``(OCB, KH, KW, IC, 4)`` (IC = C/groups),
    ``out_channels`` the OC it was packed for.
    """

    __slots__ = ("data", "shape", "groups", "out_channels")

    def __init__(self, data: np.ndarray, shape: tuple, groups: int = 1, out_channels: int | None = None):
        self.data = data
        self.shape = tuple(shape)
        self.groups = groups
        self.out_channels = 4 * self.shape[0] if out_channels is None else out_channels

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def __repr__(self) -> str:
        return f"PackedFilter(shape={self.shape}, groups={self.groups}, out_channels={self.out_channels})"


def prepack_filter(w, groups=1, out_channels=None) -> PackedFilter:
    """Pack a filter image ``w`` (OCB, KH, KW, C/groups, 4) once for :func:`conv2d`.

    ``conv2d(x, prepack_filter(w, groups), groups=groups, ...)`` computes exactly what
    ``conv2d(x, w, groups=groups, ...)`` does, without repacking the filter on every call
    and every region.  A grouped filter needs the true output channel count (``out_channels``,
    a multiple of ``groups``; default 4*OCB).  Raises ValueError/TypeError for anything but a
    float32 filter image and consistent counts.
    """
    op = "prepack_filter"
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{op}: w must be a numpy.ndarray filter image (OCB, KH, KW, IC, 4), "
                        f"got {type(w).__name__}")
    w = _args.array(op, "w", w, 5)
    if w.shape[-1] != 4 or min(w.shape) < 1:
        raise ValueError(f"{op}: w must be a filter image (OCB, KH, KW, IC, 4) with no empty axis, "
                         f"got {w.shape}")
    groups = _common.integer(op, "groups", groups)
    ocb, kh, kw, ic, _ = w.shape
    oc = _common.channels_of(op, "out_channels", out_channels, ocb, 4 * ocb)
    if oc % groups:
        raise ValueError(f"{op}: groups={groups} must divide the output channels, got out_channels={oc}")
    rows = w.transpose(0, 4, 1, 2, 3).reshape(4 * ocb, kh * kw * ic)[:oc if groups > 1 else 4 * ocb]
    return PackedFilter(pack_filter_rows(rows, groups), w.shape, groups, oc)


def conv_output_size(n: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    """Output length along one axis; < 1 when the dilated kernel does not fit."""
    span = n + pb + pe - (d * (k - 1) + 1)
    return span // s + 1 if span >= 0 else 0


def _filter(op: str, x: np.ndarray, w, groups) -> tuple:
    """A checked filter image or PackedFilter -> (packed or plain filter, groups)."""
    if isinstance(w, PackedFilter):
        if groups is not None and groups != w.groups:
            raise ValueError(f"{op}: groups must be {w.groups} for a filter packed with groups={w.groups}, "
                             f"got groups={groups!r}")
        shape, g = w.shape, w.groups
    else:
        if not isinstance(w, np.ndarray) or w.ndim != 5:
            shape = getattr(w, "shape", type(w).__name__)
            raise ValueError(
                f"{op}: w must be a filter image (OCB, KH, KW, IC, 4) or a depthwise filter "
                f"(CB, KH, KW, 4), got {shape}"
            )
        w = _args.array(op, "w", w, 5)
        if w.shape[-1] != 4 or min(w.shape) < 1:
            raise ValueError(f"{op}: w must end in a texel axis of 4 and have no empty axis, got {w.shape}")
        shape, g = w.shape, 1 if groups is None else _common.integer(op, "groups", groups)
    cb, icg = x.shape[2], shape[3]
    if not 4 * cb - 3 <= g * icg <= 4 * cb:
        if g == 1:
            raise ValueError(f"{op}: w has {icg} input channels but x has {cb} channel blocks "
                             f"(expected {4 * cb - 3}..{4 * cb})")
        raise ValueError(
            f"{op}: groups must be 1 with a filter image of all {icg} input channels, got {g}; "
            f"a grouped conv takes a filter image of C/groups input channels, and groups={g} times "
            f"{icg} = {g * icg} does not fit x's {cb} channel blocks (expected {4 * cb - 3}..{4 * cb})"
        )
    return w, g


@lru_cache(maxsize=256)
def _offsets(kh, kw, icg, groups, dh, dw, row_stride, xw) -> np.ndarray:
    o = tap_offsets(kh, kw, icg, groups, dh, dw, row_stride, xw)
    o.flags.writeable = False
    return o


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=None, relu=False,
           out=None, rows=None, channels=None, out_channels=None) -> np.ndarray:
    """ONNX Conv on an image x (N, H, CB, W, 4) -> image (N, OH, OCB, OW, 4).

    ``w`` is a filter image (OCB, KH, KW, C/groups, 4), the same packed by
    :func:`prepack_filter`, or (OCB, KH, KW, 4) for depthwise conv.  ``groups`` is
    optional: 1 for a filter image (else the group count, or the packed filter's),
    the channel count C for a depthwise filter.  ``bias`` is a plain (OC,) vector.
    ``out_channels`` is the true OC (see the module doc).  padding is an int, (ph, pw)
    or (top, left, bottom, right).  ``rows=(r0, r1)`` output rows and
    ``channels=(c0, c1)`` output channels (multiples of 4; c1 may be OC) compute only
    that region; other cells of ``out`` are untouched.  NaN and infinities propagate
    as in IEEE arithmetic (ReLU keeps NaN); lanes past ``out_channels`` are zeros.
    """
    op = "conv2d"
    x = _common.image(op, "x", x)
    if isinstance(w, np.ndarray) and w.ndim == 4:  # depthwise, any channel multiplier
        return _depthwise.conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                 relu=relu, out=out, rows=rows, channels=channels, out_channels=out_channels)
    c = checked_dense(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels)
    if c.c0 < c.c1 and c.r0 < c.r1:
        xin, row0 = _input_rows(c.x, c.r0, c.r1, *c.rows_read)
        scratch = getattr(_scratch, "tiles", None)
        if scratch is None:
            scratch = _scratch.tiles = tile_scratch()
        conv_region(xin, c.wp, c.offs, c.bias16, c.out, row0, c.sh, c.sw, c.r0, c.r1, c.c0, c.c1, c.og, c.relu,
                    *scratch)
        if c.tail is not None:  # padding lanes are exact zeros
            c.out[:, c.r0:c.r1, c.tail[0], :, c.tail[1]:] = 0.0
    return c.out


class Dense(NamedTuple):
    """A checked dense or grouped image conv: ``conv_region``'s arrays and arguments (channels
    [c0, c1) as lanes), ``rows_read`` = (sh, dh, kh, pt, pl, pr) for :func:`_input_rows`, the
    input rows' image shape and first row (``padded``: whether they are a zero-padded copy),
    and ``tail`` = (last block, first padding lane) to zero after it, or None."""

    x: np.ndarray
    wp: np.ndarray
    offs: np.ndarray
    bias16: np.ndarray
    out: np.ndarray
    sh: int
    sw: int
    r0: int
    r1: int
    c0: int
    c1: int
    og: int
    relu: int
    rows_read: tuple
    xin_shape: tuple
    row0: int
    padded: bool
    tail: tuple | None


def checked_dense(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels,
                  out_channels) -> Dense:
    """The argument checks of :func:`conv2d` with a filter image or a PackedFilter; the filter
    packed, the bias laid out per group, the taps' offsets (ValueError/TypeError naming the
    argument)."""
    op = "conv2d"
    w, groups = _filter(op, x, w, groups)
    ocb, kh, kw, icg, _ = w.shape
    if out_channels is None and isinstance(bias, np.ndarray) and bias.ndim == 1:
        out_channels = bias.shape[0]
    default = w.out_channels if isinstance(w, PackedFilter) else 4 * ocb
    oc = _common.channels_of(op, "out_channels", out_channels, ocb, default)
    if oc % groups:
        raise ValueError(f"{op}: groups={groups} must divide the output channels, got out_channels={oc}")
    if isinstance(w, PackedFilter) and groups > 1 and oc != w.out_channels:
        raise ValueError(f"{op}: w was packed for out_channels={w.out_channels}, got {oc}")
    bias_p = _common.bias_vector(op, bias, oc, ocb)
    relu = _common.flag(op, "relu", relu)
    sh, sw = _args.pair(op, "stride", stride)
    dh, dw = _args.pair(op, "dilation", dilation)
    pt, pl, pb, pr = _args.padding4(op, padding)
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
    out = _args.output(op, out, shape, (r0, r1, b0, b1) == (0, oh, 0, ocb), (x,), names=("x",))
    packed = w if isinstance(w, PackedFilter) else prepack_filter(w, groups, oc)
    g16 = packed.data.shape[1]
    bias16 = np.zeros((groups, g16 * GROUP), np.float32)
    if groups == 1:  # every lane of the blocks, padding lanes included (zeroed after)
        og, c_hi = 4 * ocb, 4 * b1
        bias16[0, :og] = bias_p
    else:
        og, c_hi = oc // groups, min(4 * b1, oc)
        bias16[:, :og] = bias_p[:oc].reshape(groups, og)
    lo = r0 * sh - pt
    hi = (r1 - 1) * sh - pt + dh * (kh - 1) + 1 if r1 > r0 else lo
    padded = not (lo >= 0 and hi <= h and pl == 0 and pr == 0)
    xin_shape = (nb, hi - lo, cb, wd + pl + pr, 4) if padded else x.shape
    offs = _offsets(kh, kw, icg, groups, dh, dw, xin_shape[2] * xin_shape[3] * 4, xin_shape[3])
    tail = (ocb - 1, oc % 4) if oc % 4 and b1 == ocb else None
    return Dense(x, packed.data, offs, bias16, out, sh, sw, r0, r1, 4 * b0, c_hi, og, int(relu),
                 (sh, dh, kh, pt, pl, pr), xin_shape, 0 if padded else lo, padded, tail)


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
