"""conv2d on NCHW float32 buffers (ONNX Conv semantics), by output region.

Dense and grouped convs run the register tiles of ``coinfer.kernels._tiles`` (the
image conv's: MR output pixels x 16 or 32 output channels, sized for the ISA) over
padded, stride-split copies of the input (``_conv_planes``; a 1x1, stride-1,
unpadded conv reads the input in place), see ``_conv_pixels``.  The weights
are packed for the tiles once per model by :func:`prepack_weights`, or on
every call when ``w`` is a plain OIHW array.

Depthwise convs (one input channel per group) run a direct loop
(``_conv_depthwise``).  Each output is the same sequence of fused
multiply-adds over (ic, kh, kw), starting from the bias, so any split into
regions reproduces the whole output bit for bit.  Only the
output rows ``rows`` and channels ``channels`` are computed; the rest of
``out`` is untouched, so two threads can fill disjoint regions of one output.
Scratch memory is per thread.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import args as _args
from .._conv_simd import aligned_empty
from .._tiles import GROUP, pack_filter_rows, tile_scratch
from ._conv_depthwise import conv_depthwise
from ._conv_pixels import conv_pixels, plane_offsets
from ._conv_planes import PLANE_SLACK, plane_geometry

_OP = "conv2d"

_scratch = threading.local()


def _buffer(name: str, size: int, dtype) -> np.ndarray:
    """A per-thread scratch array of at least ``size`` elements, reused between calls.

    Zero-filled when (re)allocated, so slack that a kernel reads but never
    writes holds finite values; 64-byte aligned, so packed panels are too.
    """
    a = getattr(_scratch, name, None)
    if a is None or a.size < size:
        a = aligned_empty(max(size, 1), dtype)
        a[:] = 0
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


class PackedWeights:
    """OIHW conv weights and their packing for the pixel route; see :func:`prepack_weights`.

    ``w`` is the (OC, C/groups, KH, KW) array, ``data`` float32 (groups,
    ceil(OC/groups/16), C/groups*KH*KW, 16): 16 output channels of a group per
    row, one row per tap (ic, kh, kw).
    """

    __slots__ = ("w", "data", "groups")

    def __init__(self, w: np.ndarray, data: np.ndarray, groups: int):
        self.w, self.data, self.groups = w, data, groups

    @property
    def shape(self) -> tuple:
        return self.w.shape

    def __repr__(self) -> str:
        return f"PackedWeights(shape={self.w.shape}, groups={self.groups})"


def prepack_weights(w, groups=1) -> PackedWeights:
    """Pack OIHW conv weights ``w`` once for :func:`conv2d` with this ``groups``.

    ``conv2d(x, prepack_weights(w, groups), groups=groups, ...)`` computes exactly
    what ``conv2d(x, w, ...)`` does, bit for bit, without packing the weights on
    every call and region.  Raises ValueError/TypeError naming the argument.
    """
    op = "prepack_weights"
    w = _args.array(op, "w", w, 4)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise TypeError(f"{op}: groups must be an int >= 1, got {groups!r}")
    if min(w.shape) < 1 or w.shape[0] % groups:
        raise ValueError(f"{op}: w must be non-empty with OC divisible by groups={groups}, got {w.shape}")
    data = pack_filter_rows(w.reshape(w.shape[0], -1), int(groups))
    return PackedWeights(w, data, int(groups))


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, relu=False,
           out=None, rows=None, channels=None):
    """ONNX Conv of ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW) -> (N, OC, OH, OW).

    ``w`` may be packed once by :func:`prepack_weights` (with the same ``groups``).
    ``stride``/``dilation`` are an int or a pair; ``padding`` an int, (ph, pw) or
    (top, left, bottom, right).  ``rows=(r0, r1)`` and ``channels=(c0, c1)``
    restrict the computed output region; cells of ``out`` outside it are left
    untouched (a new output is zero there).  ``relu`` applies max(y, 0), keeping
    NaN; NaN and infinities propagate as in IEEE arithmetic.
    """
    c = checked(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels)
    if c.region[0] < c.region[1] and c.region[2] < c.region[3]:
        _compute(c.x.reshape(-1), c.w.reshape(-1), c.packed, c.bias, c.out.reshape(-1), c.geometry,
                 c.no_far_padding, c.groups, c.region, c.relu)
    return c.out


class Checked(NamedTuple):
    """A checked conv2d call: the arrays, ``geometry`` = (N, C, H, W, OC, OH, OW, KH, KW, sh, sw,
    dh, dw, pt, pl), and the output ``region`` (r0, r1, c0, c1)."""

    x: np.ndarray
    w: np.ndarray
    packed: "PackedWeights | None"
    bias: np.ndarray
    out: np.ndarray
    geometry: tuple
    no_far_padding: bool
    groups: int
    region: tuple
    relu: int


def checked(x, w, bias, stride, padding, dilation, groups, relu, out, rows, channels) -> Checked:
    """The argument checks of :func:`conv2d` (ValueError/TypeError naming the argument)."""
    x = _args.array(_OP, "x", x, 4)
    packed = None
    if isinstance(w, PackedWeights):
        packed = w
        if packed.groups != groups:
            raise ValueError(f"{_OP}: w was packed for groups={packed.groups}, got groups={groups!r}")
        w = packed.w
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
    geometry = (n, c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)
    return Checked(x, w, packed, b, out, geometry, pb == pr == 0, groups, (r0, r1, c0, c1), int(bool(relu)))


@lru_cache(maxsize=256)
def _offsets(cg, kh, kw, sh, sw, dh, dw, hq, wq, hw, in_place) -> np.ndarray:
    """The taps' offsets: into the planes, or (in place) channel k at k*H*W (read-only)."""
    koff = np.arange(cg, dtype=np.int64) * hw if in_place else plane_offsets(cg, kh, kw, sh, sw, dh, dw, hq, wq)
    koff.flags.writeable = False
    return koff


def _compute(x, w, packed, b, out, geometry, no_far_padding, groups, region, relu):
    """Pick the route for a checked conv and run it on flattened arrays."""
    n, c, h, wd, oc, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = geometry
    r0, r1, c0, c1 = region
    cg = c // groups
    if cg == 1 and groups == c:
        conv_depthwise(x, w, b, out, geometry, region, relu)
        return
    hq, wq = plane_geometry(ow, kh, kw, sh, sw, dh, dw, r1 - r0)
    # A 1x1, stride-1, unpadded conv reads the input in place: tap k is channel k.
    in_place = kh == kw == 1 and sh == sw == 1 and pt == pl == 0 and no_far_padding
    planes = _buffer("planes", 1 if in_place else cg * sh * sw * hq * wq + PLANE_SLACK + wq, np.float32)
    mg = oc // groups
    g16 = -(-mg // GROUP)
    wp = (packed if packed is not None else prepack_weights(w.reshape(oc, cg, kh, kw), groups)).data
    bp = np.zeros((groups, g16 * GROUP), np.float32)
    bp[:, :mg] = b.reshape(groups, mg)
    scratch = getattr(_scratch, "tiles", None)
    if scratch is None:
        scratch = _scratch.tiles = tile_scratch()
    conv_pixels(x, wp.reshape(-1), bp.reshape(-1), out, planes,
                _offsets(cg, kh, kw, sh, sw, dh, dw, hq, wq, h * wd, in_place), in_place, *scratch,
                n, c, h, wd, oc, oh, ow, sh, sw, pt, pl, hq, wq, groups, r0, r1, c0, c1, relu)
