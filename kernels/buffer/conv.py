"""conv2d on NCHW float32 buffers (ONNX Conv semantics), by output region.

Dense and grouped convs are GEMMs (weights x input patches) on the register
tiles of ``gemm``, with B taken by one of three routes:

- ``_conv_1x1``: a 1x1, stride-1, unpadded conv reads the input in place;
- ``_conv_planes``: wide outputs read shifted windows of padded, stride-split
  copies of the input, computing a few junk columns per row;
- ``_conv_im2col``: other convs pack im2col panels from those planes.

Depthwise convs (one input channel per group) run a direct loop
(``_conv_depthwise``).  Every route computes each output as the same
sequence of fused multiply-adds over (ic, kh, kw), starting from the bias, so
any split into regions reproduces the whole output bit for bit.  Only the
output rows ``rows`` and channels ``channels`` are computed; the rest of
``out`` is untouched, so two threads can fill disjoint regions of one output.
Scratch memory is per thread.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import args as _args
from ._conv_depthwise import conv_depthwise
from ._conv_1x1 import conv_1x1
from ._conv_im2col import conv_packed
from ._conv_planes import conv_planes, plane_geometry
from .gemm import MR, NR

_OP = "conv2d"

# The plane path reads B straight from the planes but computes Wq - OW junk
# columns per output row (and copies out the panels that straddle two rows);
# packing im2col panels costs a copy of the patches (kh*kw times the input).
# Planes win on wide outputs: use them while the junk is at most this fraction
# of the row pitch Wq (55 and more pixels wide for a 3x3 kernel).
_PLANES_MAX_JUNK = 0.07
# Taps per k block of the plane path: the panel's slice of the planes (about
# 2 cache lines a tap) and the weights' (8 floats a tap) then stay in L1.
_PLANES_KC = 256

# Block sizes of the GEMM: patch rows per k block, and pixels per block so that
# one packed block (kc x nc floats) stays well inside the 1 MiB L2.
_KC_TARGET = 512
_B_BLOCK_FLOATS = 64 * 1024

_scratch = threading.local()


def _buffer(name: str, size: int, dtype) -> np.ndarray:
    """A per-thread scratch array of at least ``size`` elements, reused between calls.

    Zero-filled when (re)allocated, so slack that a kernel reads but never
    writes holds finite values.
    """
    a = getattr(_scratch, name, None)
    if a is None or a.size < size:
        a = np.zeros(max(size, 1), dtype)
        setattr(_scratch, name, a)
    return a


def out_size(n: int, pad: int, k: int, stride: int, dilation: int) -> int:
    """ONNX output length of one spatial axis (pad is the sum of both sides)."""
    return (n + pad - dilation * (k - 1) - 1) // stride + 1


def _check_groups(groups) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{_OP}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{_OP}: groups must be >= 1, got {groups}")
    return int(groups)


def _even_split(n: int, target: int) -> int:
    """The size of the ceil(n / target) near-equal parts that n splits into."""
    return -(-n // -(-n // target))


def _block_sizes(k: int, npix: int) -> tuple[int, int]:
    """(kc, nc) of the packed GEMM: k split evenly near _KC_TARGET, nc a multiple of NR."""
    kc = _even_split(k, _KC_TARGET)
    nc = max(NR, _B_BLOCK_FLOATS // kc // NR * NR)
    return kc, min(nc, -(-npix // NR) * NR)


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, relu=False,
           out=None, rows=None, channels=None):
    """ONNX Conv of ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW) -> (N, OC, OH, OW).

    ``stride``/``dilation`` are an int or a pair; ``padding`` an int, (ph, pw) or
    (top, left, bottom, right).  ``rows=(r0, r1)`` and ``channels=(c0, c1)``
    restrict the computed output region; cells of ``out`` outside it are left
    untouched (a new output is zero there).  ``relu`` applies max(y, 0).
    """
    x = _args.array(_OP, "x", x, 4)
    w = _args.array(_OP, "w", w, 4)
    sh, sw = _args.pair(_OP, "stride", stride)
    dh, dw = _args.pair(_OP, "dilation", dilation)
    pt, pl, pb, pr = _args.padding4(_OP, padding)
    groups = _check_groups(groups)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    if c % groups:
        raise ValueError(f"{_OP}: groups={groups} must divide the input channels, got C={c}")
    if oc % groups:
        raise ValueError(f"{_OP}: groups={groups} must divide the output channels, got w.shape[0]={oc}")
    if cg * groups != c:
        raise ValueError(
            f"{_OP}: w must have C/groups = {c // groups} input channels, got w.shape {w.shape} "
            f"(x has C={c}, groups={groups})"
        )
    if min(w.shape) < 1 or min(x.shape) < 1:
        raise ValueError(f"{_OP}: x and w must not be empty, got x {x.shape}, w {w.shape}")
    oh = out_size(h, pt + pb, kh, sh, dh)
    ow = out_size(wd, pl + pr, kw, sw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{_OP}: output would be {oh}x{ow}: the dilated kernel ({dh * (kh - 1) + 1}x"
            f"{dw * (kw - 1) + 1}) exceeds the padded input ({h + pt + pb}x{wd + pl + pr})"
        )
    b = _args.bias(_OP, bias, oc)
    r0, r1 = _args.region(_OP, "rows", rows, oh)
    c0, c1 = _args.region(_OP, "channels", channels, oc)
    out = _args.output(_OP, out, (n, oc, oh, ow), (r0, r1, c0, c1) == (0, oh, 0, oc))
    if r0 < r1 and c0 < c1:
        geometry = (n, c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)
        _compute(x.reshape(-1), w.reshape(-1), b, out.reshape(-1), geometry,
                 pb == pr == 0, groups, (r0, r1, c0, c1), int(bool(relu)))
    return out


def _compute(x, w, b, out, geometry, no_far_padding, groups, region, relu):
    """Pick the route for a checked conv and run it on flattened arrays."""
    n, c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = geometry
    r0, r1, c0, c1 = region
    cg = c // groups
    hq, wq = plane_geometry(ow, kh, kw, sh, sw, dh, dw, r1 - r0)
    if cg == 1 and groups == c:
        conv_depthwise(x, w, b, out, geometry, region, relu)
        return
    tile = _buffer("tile", MR * NR, np.float32)
    if kh == kw == 1 and sh == sw == 1 and pt == pl == 0 and no_far_padding:
        kc, nc = _block_sizes(cg, (r1 - r0) * ow)
        conv_1x1(x, w, b, out, _buffer("panels", kc * NR, np.float32), tile,
                 n, c, h * wd, oc, groups, r0 * ow, r1 * ow, c0, c1, relu, kc, nc)
        return
    planes = _buffer("planes", cg * sh * sw * hq * wq + NR + wq, np.float32)
    if wq - ow <= _PLANES_MAX_JUNK * wq:
        acc = _buffer("acc", -(-min(oc // groups, c1 - c0) // MR) * MR * NR, np.float32)
        kc = _even_split(cg * kh * kw, _PLANES_KC)
        conv_planes(x, w, b, out, planes, acc, *geometry, groups, *region, relu, kc)
        return
    kc, nc = _block_sizes(cg * kh * kw, (r1 - r0) * ow)
    panels = _buffer("panels", kc * nc + NR, np.float32)
    conv_packed(x, w, b, out, planes, panels, tile, *geometry, groups, *region, relu, kc, nc)
