"""Depthwise convolution on NCHW buffers (one input channel per group): the adapter from
``conv``'s flattened arrays to the window loops of ``coinfer.kernels._depthwise``.

Output channel m reads input channel ``m // multiplier``; each output is the bias
plus one fused multiply-add per tap in (kh, kw) order, so regions reproduce the
whole output bit for bit.  Fused ReLU keeps NaN.
"""
from __future__ import annotations

from .. import _depthwise


def depthwise_call(x, w, b, out, geometry, region, relu) -> tuple:
    """The arguments of ``_depthwise.depthwise`` for output rows [r0, r1) and channels [c0, c1) of a
    depthwise conv (flattened arrays).

    ``geometry`` is conv's ``(N, C, H, W, OC, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl)``.
    """
    n, c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = geometry
    planes = (n, (c * h * wd, h * wd, wd), (oc * oh * ow, oh * ow, ow), h, wd, oh, ow)
    return x, w, b, out, 1, oc // c, planes, (kh, kw), (sh, sw), (dh, dw), (pt, pl), relu, region


def conv_depthwise(x, w, b, out, geometry, region, relu):
    """Output rows [r0, r1) and channels [c0, c1) of a depthwise conv (flattened arrays)."""
    _depthwise.depthwise(*depthwise_call(x, w, b, out, geometry, region, relu))
