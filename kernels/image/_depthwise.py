"""Depthwise conv2d on image tensors (one input channel per group, any channel multiplier).

The filter is ``(OCB, KH, KW, 4)`` from ``layout.depthwise_to_image`` of the ONNX
weights ``(OC, 1, KH, KW)``: output channel m, filter lane m % 4 of block m // 4,
reads input channel ``m // multiplier`` with ``multiplier = OC / C``.  The true
channel counts come from ``groups`` (C) and ``out_channels`` (OC, else the
length of ``bias``, else C); without ``groups`` the multiplier is 1.

The loops are ``coinfer.kernels._depthwise`` on texel planes.  With a
multiplier above 1 an output texel's lanes read different input channels, so
the input rows the region needs are first gathered into an image whose
channel m is input channel ``m // multiplier`` (a copy, in numpy).  Padding
lanes of the last output block are exact zeros.
"""
from __future__ import annotations

import numpy as np

from .. import _depthwise
from .. import args as _args
from . import _common

__all__ = ["conv2d"]

_OP = "conv2d"


def _channels(x, w, bias, groups, out_channels):
    """Checked (C or None, OC, multiplier) of a depthwise conv with filter ``w``."""
    cb, ocb = x.shape[2], w.shape[0]
    c = None if groups is None else _common.channels_of(_OP, "groups", groups, cb)
    if out_channels is None and isinstance(bias, np.ndarray) and bias.ndim == 1:
        out_channels = bias.shape[0]
    if c is None or (out_channels is None and ocb == cb):
        if ocb != cb:
            raise ValueError(
                f"{_OP}: depthwise filter must have {cb} channel blocks like x, got shape {w.shape} "
                "(a channel multiplier needs groups=C and out_channels)"
            )
        oc = _common.channels_of(_OP, "out_channels", out_channels, ocb, c if c is not None else 4 * cb)
        if c is not None and oc != c:
            raise ValueError(f"{_OP}: depthwise out_channels {oc} must equal groups {c} times the channel "
                             f"multiplier (1 for a filter of {ocb} blocks like x)")
        return c, oc, 1
    if out_channels is None:
        raise TypeError(f"{_OP}: out_channels is required for a depthwise filter of {ocb} blocks on "
                        f"{c} input channels (a channel multiplier)")
    oc = _common.integer(_OP, "out_channels", out_channels)
    if oc % c:
        raise ValueError(f"{_OP}: depthwise out_channels {oc} must equal groups {c} times the channel multiplier")
    if ocb != -(-oc // 4):
        raise ValueError(
            f"{_OP}: depthwise filter must have {-(-oc // 4)} channel blocks for {oc} output channels, "
            f"got shape {w.shape}"
        )
    return c, oc, oc // c


def _gathered(x, c, mult, ocb, rows):
    """Input rows [lo, hi) as an image of ``ocb`` blocks whose channel m is x's channel m // mult."""
    lo, hi = rows
    nb, _, cb, wd, _ = x.shape
    lanes = x[:, lo:hi].transpose(0, 1, 3, 2, 4).reshape(nb, hi - lo, wd, cb * 4)
    src = np.arange(ocb * 4) // mult
    g = np.where(src < c, lanes[..., np.minimum(src, c - 1)], np.float32(0.0))
    return np.ascontiguousarray(g.reshape(nb, hi - lo, wd, ocb, 4).transpose(0, 1, 3, 2, 4), np.float32)


def checked(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels) -> tuple:
    """The argument checks of :func:`conv2d` -> (x, w, padded bias, out, C, OC, multiplier, relu,
    (sh, sw), (dh, dw), (pt, pl), (r0, r1, b0, b1), OH, OW)."""
    from .conv import conv_output_size  # conv imports this module

    x = _common.image(_OP, "x", x)
    w = _args.array(_OP, "w", w, 4)
    if w.shape[-1] != 4 or min(w.shape) < 1:
        raise ValueError(f"{_OP}: w must end in a texel axis of 4 and have no empty axis, got {w.shape}")
    c, oc, mult = _channels(x, w, bias, groups, out_channels)
    ocb = w.shape[0]
    bias_p = _common.bias_vector(_OP, bias, oc, ocb)
    relu = _common.flag(_OP, "relu", relu)
    sh, sw = _args.pair(_OP, "stride", stride)
    dh, dw = _args.pair(_OP, "dilation", dilation)
    pt, pl, pb, pr = _args.padding4(_OP, padding)
    kh, kw = w.shape[1], w.shape[2]
    nb, h, cb, wd, _ = x.shape
    oh = conv_output_size(h, kh, sh, dh, pt, pb)
    ow = conv_output_size(wd, kw, sw, dw, pl, pr)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{_OP}: kernel {(kh, kw)} with dilation {(dh, dw)} does not fit input "
            f"{(h, wd)} with padding {(pt, pl, pb, pr)}"
        )
    r0, r1 = _args.region(_OP, "rows", rows, oh)
    b0, b1 = _common.block_region(_OP, channels, ocb, oc)
    shape = (nb, oh, ocb, ow, 4)
    out = _args.output(_OP, out, shape, (r0, r1, b0, b1) == (0, oh, 0, ocb), (x,), names=("x",))
    return x, w, bias_p, out, c, oc, mult, relu, (sh, sw), (dh, dw), (pt, pl), (r0, r1, b0, b1), oh, ow


def depthwise_call(x, w, bias_p, out, pads, h, relu, stride, dilation, region, oh, ow) -> tuple:
    """The arguments of ``_depthwise.depthwise`` for a checked depthwise conv of image ``x``
    (multiplier 1, or x gathered), whose input has ``h`` rows and starts at row ``-pads[0]``."""
    nb, _, xcb, wd, _ = x.shape
    ocb = w.shape[0]
    planes = (nb, (h * xcb * wd * 4, wd * 4, xcb * wd * 4), (oh * ocb * ow * 4, ow * 4, ocb * ow * 4), h, wd, oh, ow)
    return x, w, bias_p, out, 4, 1, planes, w.shape[1:3], stride, dilation, pads, relu, region


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=None, relu=False, out=None,
           rows=None, channels=None, out_channels=None) -> np.ndarray:
    """Depthwise ONNX Conv of an image x (N, H, CB, W, 4) with a filter (OCB, KH, KW, 4).

    ``groups`` is the true input channel count C (optional when OC = C);
    ``out_channels`` the true OC = multiplier * C.  Regions and the other
    arguments as in ``image.conv2d``.
    """
    x, w, bias_p, out, c, oc, mult, relu, (sh, sw), (dh, dw), (pt, pl), region, oh, ow = checked(
        x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels, out_channels)
    r0, r1, b0, b1 = region
    if r0 == r1 or b0 == b1:
        return out
    h, ocb, kh = x.shape[1], w.shape[0], w.shape[1]
    if mult > 1:
        lo = max(0, r0 * sh - pt)
        hi = min(h, (r1 - 1) * sh - pt + dh * (kh - 1) + 1)
        if hi <= lo:  # the region reads only padding
            lo, hi = 0, 1
        x, pt, h = _gathered(x, c, mult, ocb, (lo, hi)), pt + lo, hi - lo
    _depthwise.depthwise(*depthwise_call(x, w, bias_p, out, (pt, pl), h, relu, (sh, sw), (dh, dw), region, oh, ow))
    if oc % 4 and b1 == ocb:  # padding lanes are exact zeros
        out[:, r0:r1, ocb - 1, :, oc % 4:] = 0.0
    return out
