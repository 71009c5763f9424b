"""Depthwise conv2d (groups == C, any channel multiplier) in both layouts: the float64
reference, regions (bit-identical), the 3x3 four-row path, bad input, NaN and inf.

Buffer depthwise is ``buffer.conv2d`` with ``groups=C``; image depthwise is
``image.conv2d`` with a ``(OCB, KH, KW, 4)`` filter, ``groups=C`` and
``out_channels=OC``.  More depthwise cases run among the conv cases of
test_conv2d.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import LAYOUTS, assert_ieee, image_bands, rand, sprinkle
from tests.tolerance import assert_close


@st.composite
def depthwise_cases(draw, kernel=None):
    """(x, w, bias, kwargs): C channels, multiplier 1..3, any stride, dilation and padding."""
    c, mult = draw(st.integers(1, 9)), draw(st.integers(1, 3))
    kh, kw = (kernel, kernel) if kernel else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = (1, 1) if kernel else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 40))
    seed = draw(st.integers(0, 2**16))
    x = rand(seed, draw(st.integers(1, 2)), c, h, w)
    wt = rand(seed + 1, c * mult, 1, kh, kw)
    bias = rand(seed + 2, c * mult) if draw(st.booleans()) else None
    return x, wt, bias, dict(stride=(sh, sw), padding=pads, dilation=(dh, dw), relu=draw(st.booleans()))


def run(lay, x, wt, bias, kw, **region):
    """Depthwise conv in layout ``lay``; returns the layout's own output."""
    c, oc = x.shape[1], wt.shape[0]
    if lay == "buffer":
        return B.conv2d(x, wt, bias, groups=c, **kw, **region)
    return ki.conv2d(layout.to_image(x), layout.depthwise_to_image(wt), bias, groups=c, out_channels=oc,
                     **kw, **region)


def nchw(lay, y, oc):
    return y if lay == "buffer" else layout.to_buffer(y, oc)


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=depthwise_cases())
def test_depthwise_matches_reference(lay, case):
    x, wt, bias, kw = case
    oc = wt.shape[0]
    y = run(lay, x, wt, bias, kw)
    assert_close(nchw(lay, y, oc), R.conv2d(x, wt, bias, groups=x.shape[1], **kw), f"depthwise {lay} {kw}")
    if lay == "image":
        assert np.all(y[:, :, -1, :, oc - 4 * (y.shape[2] - 1):] == 0.0), "padding lanes must be zero"


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=depthwise_cases(kernel=3), h=st.integers(1, 9))
def test_depthwise_3x3_four_row_path(lay, case, h):
    """3x3 stride 1/2: every height, so groups of four rows end in 1, 2, 3 or 4 rows."""
    x, wt, bias, kw = case
    x = np.ascontiguousarray(np.resize(x, x.shape[:2] + (h, x.shape[3])))
    kw["padding"] = 1
    kw["stride"] = (kw["stride"][0] % 2 + 1, kw["stride"][1] % 2 + 1)
    y = nchw(lay, run(lay, x, wt, bias, kw), wt.shape[0])
    assert_close(y, R.conv2d(x, wt, bias, groups=x.shape[1], **kw), f"depthwise 3x3 {lay} {kw}")


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=depthwise_cases(), data=st.data())
def test_depthwise_regions_are_bit_identical(lay, case, data):
    """Disjoint row x channel regions, in any order, give the whole output bit for bit."""
    x, wt, bias, kw = case
    oc = wt.shape[0]
    whole = run(lay, x, wt, bias, kw)
    oh = whole.shape[2] if lay == "buffer" else whole.shape[1]
    rows = image_bands(data, oh, 1, oh, "row cuts")
    if lay == "buffer":
        chans = image_bands(data, oc, 1, oc, "channel cuts")
    else:
        chans = image_bands(data, 4 * whole.shape[2], 4, oc, "channel cuts")
    out = np.full(whole.shape, np.nan, np.float32)
    for r, ch in data.draw(st.permutations([(r, ch) for r in rows for ch in chans]), label="order"):
        assert run(lay, x, wt, bias, kw, out=out, rows=r, channels=ch) is out
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=depthwise_cases(kernel=3), stride=st.integers(1, 2), w=st.integers(1, 16), data=st.data())
def test_depthwise_3x3_narrow_planes_regions(lay, case, stride, w, data):
    """3x3 with equal strides on planes up to 16 wide (buffer stride 2 under 8 outputs a row
    pairs planes in one vector): the reference, and regions of any rows and channels (so a plane
    pairs with another or with itself) bit for bit."""
    x, wt, bias, kw = case
    x = np.ascontiguousarray(np.resize(x, x.shape[:3] + (w,)))
    kw["stride"], kw["padding"] = stride, data.draw(st.integers(0, 1), label="pad")
    if x.shape[2] + 2 * kw["padding"] < 3 or w + 2 * kw["padding"] < 3:
        return
    oc = wt.shape[0]
    whole = run(lay, x, wt, bias, kw)
    assert_close(nchw(lay, whole, oc), R.conv2d(x, wt, bias, groups=x.shape[1], **kw), f"depthwise {lay} {kw}")
    oh = whole.shape[2] if lay == "buffer" else whole.shape[1]
    rows = image_bands(data, oh, 1, oh, "row cuts")
    chans = (image_bands(data, oc, 1, oc, "channel cuts") if lay == "buffer"
             else image_bands(data, 4 * whole.shape[2], 4, oc, "channel cuts"))
    out = np.full(whole.shape, np.nan, np.float32)
    for r, ch in [(r, ch) for r in rows for ch in chans]:
        run(lay, x, wt, bias, kw, out=out, rows=r, channels=ch)
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=depthwise_cases())
def test_depthwise_nan_and_inf_match_reference(lay, case):
    """NaN and inf reach the outputs whose window holds them; fused ReLU keeps NaN."""
    x, wt, bias, kw = case
    x = sprinkle(x, int(abs(x[0, 0, 0, 0]) * 1000), frac=0.03)
    y = nchw(lay, run(lay, x, wt, bias, kw), wt.shape[0])
    assert_ieee(y, R.conv2d(x, wt, bias, groups=x.shape[1], **kw), f"depthwise {lay} {kw}")


@pytest.mark.parametrize("lay", LAYOUTS)
def test_depthwise_relu_keeps_nan(lay):
    x = np.zeros((1, 2, 3, 3), np.float32)
    x[0, 0, 1, 1] = np.nan
    wt = np.ones((2, 1, 3, 3), np.float32)
    y = nchw(lay, run(lay, x, wt, None, dict(padding=1, relu=True)), 2)
    assert np.isnan(y[0, 0]).all() and (y[0, 1] == 0).all()


@pytest.mark.parametrize("size", [(14, 14), (7, 7), (112, 112), (28, 30)])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_mobilenet_shapes_agree_across_layouts(size, stride):
    """MobileNet-v1-like layers (3x3, pad 1): both layouts against the reference and each other."""
    x = rand(5, 1, 8, *size)
    wt = rand(6, 8, 1, 3, 3)
    bias = rand(7, 8)
    kw = dict(stride=stride, padding=1)
    want = R.conv2d(x, wt, bias, groups=8, **kw)
    yb = run("buffer", x, wt, bias, kw)
    yi = nchw("image", run("image", x, wt, bias, kw), 8)
    assert_close(yb, want, "buffer")
    assert_close(yi, want, "image")


X = np.zeros((1, 6, 2, 6, 4), np.float32)  # 8 channels (5..8 fit)
DW6 = np.zeros((3, 3, 3, 4), np.float32)  # 12 output channels: multiplier 2 of 6, or 3 of 4
IMAGE_BAD = [
    (dict(w=DW6, groups=6), TypeError, "conv2d: out_channels is required for a depthwise filter of 3 blocks"),
    (dict(w=DW6, groups=6, out_channels=13), ValueError,
     "conv2d: depthwise out_channels 13 must equal groups 6 times the channel multiplier"),
    (dict(w=DW6, groups=6, out_channels=18), ValueError,
     r"conv2d: depthwise filter must have 5 channel blocks for 18 output channels"),
    (dict(w=DW6), ValueError, "conv2d: depthwise filter must have 2 channel blocks like x"),
    (dict(w=np.zeros((2, 3, 3, 3), np.float32), groups=8), ValueError, "conv2d: w must end in a texel axis of 4"),
    (dict(w=DW6, groups=6, out_channels=12, channels=(0, 6)), ValueError, "conv2d: channels ends must be multiples"),
    (dict(w=DW6, groups=6, out_channels=12, bias=np.zeros(11, np.float32)), ValueError,
     r"conv2d: bias must have shape \(12,\)"),
]


@pytest.mark.parametrize("change,exc,msg", IMAGE_BAD, ids=[c[2] for c in IMAGE_BAD])
def test_image_depthwise_rejects(change, exc, msg):
    args = dict(x=X, bias=None, padding=1)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.conv2d(args.pop("x"), args.pop("w"), args.pop("bias"), **args)
