"""Grouped conv2d on image tensors (1 < groups, and not depthwise): one dense conv per group.

The filter is ``layout.filter_to_image`` of the ONNX weights ``(OC, C/groups, KH, KW)``,
that is ``(OCB, KH, KW, C/groups, 4)``, so the input channel count is
``C = groups * C/groups`` and must fit x's blocks.  Group g convolves input
channels ``[g*C/groups, (g+1)*C/groups)`` into output channels
``[g*OC/groups, (g+1)*OC/groups)``.

Each group that meets the output region is one call of the public dense
``image.conv2d`` on the group's channels: its input channels, filter and
output channels are repacked (in numpy) into images of their own when a
group boundary falls inside a texel, and the result's channels are copied
into ``out``.  Padding lanes of the last output block are exact zeros.
"""
from __future__ import annotations

import numpy as np

from .. import args as _args
from . import _common

__all__ = ["conv2d"]

_OP = "conv2d"


def _gather(img, c0, c1):
    """Channels [c0, c1) of an image as a C-contiguous image of their own (zero padding lanes)."""
    n, h, _, w, _ = img.shape
    ch = np.arange(c0, c1)
    out = np.zeros((n, h, -(-(c1 - c0) // 4), w, 4), np.float32)
    k = np.arange(c1 - c0)
    out[:, :, k // 4, :, k % 4] = img[:, :, ch // 4, :, ch % 4]
    return out


def _scatter(out, rows, c0, c1, src, s0):
    """out's channels [c0, c1) on rows [r0, r1) <- src's channels from s0."""
    r0, r1 = rows
    ch = np.arange(c0, c1)
    k = np.arange(s0, s0 + c1 - c0)
    out[:, r0:r1, ch // 4, :, ch % 4] = src[:, r0:r1, k // 4, :, k % 4]


def _filter_group(w, o0, o1):
    """Output channels [o0, o1) of a filter image (OCB, KH, KW, ICG, 4) as a filter image."""
    ocb, kh, kw, icg, _ = w.shape
    rows = w.transpose(0, 4, 1, 2, 3).reshape(ocb * 4, kh, kw, icg)[o0:o1]
    blocks = -(-(o1 - o0) // 4)
    out = np.zeros((blocks * 4, kh, kw, icg), np.float32)
    out[:o1 - o0] = rows
    return np.ascontiguousarray(out.reshape(blocks, 4, kh, kw, icg).transpose(0, 2, 3, 4, 1))


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=None, relu=False, out=None,
           rows=None, channels=None, out_channels=None) -> np.ndarray:
    """Grouped ONNX Conv of an image x with a filter image ``(OCB, KH, KW, C/groups, 4)``.

    ``out_channels`` (else the length of ``bias``, else 4*OCB) is the true OC, a
    multiple of ``groups``.  Other arguments and regions as in ``image.conv2d``.
    """
    from .conv import conv2d as dense  # the public dense conv (imports this module)

    x = _common.image(_OP, "x", x)
    w = _args.array(_OP, "w", w, 5)
    groups = _common.integer(_OP, "groups", groups)
    ocb, kh, kw, icg, four = w.shape
    if four != 4 or min(w.shape) < 1:
        raise ValueError(f"{_OP}: w must end in a texel axis of 4 and have no empty axis, got {w.shape}")
    cb = x.shape[2]
    c = groups * icg
    if not 4 * cb - 3 <= c <= 4 * cb:
        raise ValueError(
            f"{_OP}: groups must be 1 with a filter image of all {icg} input channels, got {groups}; "
            f"a grouped conv takes a filter image of C/groups input channels, and groups={groups} times "
            f"{icg} = {c} does not fit x's {cb} channel blocks (expected {4 * cb - 3}..{4 * cb})"
        )
    if out_channels is None and isinstance(bias, np.ndarray) and bias.ndim == 1:
        out_channels = bias.shape[0]
    oc = _common.channels_of(_OP, "out_channels", out_channels, ocb, 4 * ocb)
    if oc % groups:
        raise ValueError(f"{_OP}: groups={groups} must divide the output channels, got out_channels={oc}")
    bias_p = _common.bias_vector(_OP, bias, oc, ocb)
    relu = _common.flag(_OP, "relu", relu)
    og = oc // groups
    oh, ow = _output_size(x.shape[1], x.shape[3], kh, kw, stride, padding, dilation)
    r0, r1 = _args.region(_OP, "rows", rows, oh)
    b0, b1 = _common.block_region(_OP, channels, ocb, oc)
    shape = (x.shape[0], oh, ocb, ow, 4)
    out = _args.output(_OP, out, shape, (r0, r1, b0, b1) == (0, oh, 0, ocb), (x,), names=("x",))
    if r0 == r1 or b0 == b1:
        return out
    c0, c1 = 4 * b0, min(4 * b1, oc)
    for g in range(c0 // og, -(-c1 // og)):
        o0, o1 = max(c0, g * og), min(c1, (g + 1) * og)
        xg = _gather(x, g * icg, (g + 1) * icg)
        yg = dense(xg, _filter_group(w, g * og, (g + 1) * og), bias_p[g * og:(g + 1) * og],
                   stride=stride, padding=padding, dilation=dilation, relu=relu, out_channels=og,
                   rows=(r0, r1))
        _scatter(out, (r0, r1), o0, o1, yg, o0 - g * og)
    if oc % 4 and b1 == ocb:  # padding lanes are exact zeros
        out[:, r0:r1, ocb - 1, :, oc % 4:] = 0.0
    return out


def _output_size(h, wd, kh, kw, stride, padding, dilation):
    """Checked (OH, OW) of the conv."""
    sh, sw = _args.pair(_OP, "stride", stride)
    dh, dw = _args.pair(_OP, "dilation", dilation)
    pt, pl, pb, pr = _args.padding4(_OP, padding)
    oh = (h + pt + pb - (dh * (kh - 1) + 1)) // sh + 1 if h + pt + pb >= dh * (kh - 1) + 1 else 0
    ow = (wd + pl + pr - (dw * (kw - 1) + 1)) // sw + 1 if wd + pl + pr >= dw * (kw - 1) + 1 else 0
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{_OP}: kernel {(kh, kw)} with dilation {(dh, dw)} does not fit input "
            f"{(h, wd)} with padding {(pt, pl, pb, pr)}"
        )
    return oh, ow
