"""Grouped conv2d (1 < groups < C) in both layouts: the float64 reference, the two layouts
against each other, regions (bit-identical), bad input, NaN and inf.

Buffer grouped conv is ``buffer.conv2d(..., groups=g)``; image grouped conv is
``image.conv2d`` with ``layout.filter_to_image`` of the ``(OC, C/g, KH, KW)``
weights and ``groups=g``, or the same packed once by
``image.prepack_filter(w_img, groups=g, out_channels=OC)`` (bit-identical).
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
def grouped_cases(draw):
    """(x, w, bias, groups, kwargs) with C/groups > 1 or OC/groups != 1 (not depthwise)."""
    groups = draw(st.integers(2, 4))
    cg, og = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if cg == 1 and og == 1:
        cg = 2
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, k - 1))
    h, w = draw(st.integers(k, 9)), draw(st.integers(k, 9))
    seed = draw(st.integers(0, 2**16))
    x = rand(seed, draw(st.integers(1, 2)), cg * groups, h, w)
    wt = rand(seed + 1, og * groups, cg, k, k)
    bias = rand(seed + 2, og * groups) if draw(st.booleans()) else None
    return x, wt, bias, groups, dict(stride=s, padding=p, relu=draw(st.booleans()))


def run(lay, x, wt, bias, groups, kw, **region):
    if lay == "buffer":
        return B.conv2d(x, wt, bias, groups=groups, **kw, **region)
    return ki.conv2d(layout.to_image(x), layout.filter_to_image(wt), bias, groups=groups,
                     out_channels=wt.shape[0], **kw, **region)


def nchw(lay, y, oc):
    return y if lay == "buffer" else layout.to_buffer(y, oc)


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=grouped_cases())
def test_grouped_conv_matches_reference(lay, case):
    x, wt, bias, groups, kw = case
    oc = wt.shape[0]
    y = run(lay, x, wt, bias, groups, kw)
    assert_close(nchw(lay, y, oc), R.conv2d(x, wt, bias, groups=groups, **kw), f"grouped {lay} g={groups} {kw}")
    if lay == "image":
        assert np.all(y[:, :, -1, :, oc - 4 * (y.shape[2] - 1):] == 0.0), "padding lanes must be zero"


@given(case=grouped_cases(), data=st.data())
def test_image_grouped_conv_regions_are_bit_identical(case, data):
    x, wt, bias, groups, kw = case
    oc = wt.shape[0]
    whole = run("image", x, wt, bias, groups, kw)
    rows = image_bands(data, whole.shape[1], 1, whole.shape[1], "row cuts")
    chans = image_bands(data, 4 * whole.shape[2], 4, oc, "channel cuts")
    out = np.full(whole.shape, np.nan, np.float32)
    for r, ch in data.draw(st.permutations([(r, ch) for r in rows for ch in chans]), label="order"):
        assert run("image", x, wt, bias, groups, kw, out=out, rows=r, channels=ch) is out
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=grouped_cases())
def test_grouped_conv_nan_and_inf_match_reference(lay, case):
    x, wt, bias, groups, kw = case
    x = sprinkle(x, x.size, frac=0.03)
    y = nchw(lay, run(lay, x, wt, bias, groups, kw), wt.shape[0])
    assert_ieee(y, R.conv2d(x, wt, bias, groups=groups, **kw), f"grouped {lay} g={groups}")


@given(case=grouped_cases(), data=st.data())
def test_image_grouped_conv_prepacked_is_bit_identical(case, data):
    """A filter packed once (per model) gives the plain filter's bits, whole and by regions."""
    x, wt, bias, groups, kw = case
    oc = wt.shape[0]
    whole = run("image", x, wt, bias, groups, kw)
    xi = layout.to_image(x)
    packed = ki.prepack_filter(layout.filter_to_image(wt), groups=groups, out_channels=oc)
    assert ki.conv2d(xi, packed, bias, groups=groups, **kw).tobytes() == whole.tobytes()
    assert ki.conv2d(xi, packed, bias, **kw).tobytes() == whole.tobytes()  # groups from the packing
    rows = image_bands(data, whole.shape[1], 1, whole.shape[1], "row cuts")
    out = np.full(whole.shape, np.nan, np.float32)
    for r in rows:
        ki.conv2d(xi, packed, bias, out=out, rows=r, **kw)
    np.testing.assert_array_equal(out, whole)


def test_image_grouped_prepack_rejects():
    w = np.zeros((3, 3, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="prepack_filter: groups=5 must divide the output channels"):
        ki.prepack_filter(w, groups=5, out_channels=12)
    packed = ki.prepack_filter(w, groups=3, out_channels=12)
    with pytest.raises(ValueError, match="conv2d: groups must be 3 for a filter packed with groups=3"):
        ki.conv2d(X, packed, groups=2)
    with pytest.raises(ValueError, match="conv2d: w was packed for out_channels=12, got 9"):
        ki.conv2d(X, packed, out_channels=9, groups=3)


def test_alexnet_conv2_groups_2():
    """AlexNet's original conv2: 96 -> 256 channels in 2 groups, 5x5 pad 2, on 27x27."""
    x, wt, bias = rand(1, 1, 96, 27, 27), rand(2, 256, 48, 5, 5) * np.float32(0.05), rand(3, 256)
    want = R.conv2d(x, wt, bias, padding=2, groups=2)
    assert_close(nchw("image", run("image", x, wt, bias, 2, dict(padding=2)), 256), want, "image")
    assert_close(run("buffer", x, wt, bias, 2, dict(padding=2)), want, "buffer")


X = np.zeros((1, 6, 3, 6, 4), np.float32)  # 9..12 channels
W3 = np.zeros((3, 3, 3, 4, 4), np.float32)  # 12 output channels, 4 input channels per group
IMAGE_BAD = [
    (dict(groups=2), ValueError, r"conv2d: groups must be 1 with a filter image of all 4 input channels, got 2"),
    (dict(groups=3, out_channels=7), ValueError, "conv2d: out_channels=7 does not fit 3 channel blocks"),
    (dict(groups=3, out_channels=10), ValueError, "conv2d: groups=3 must divide the output channels"),
    (dict(groups=3, channels=(0, 6)), ValueError, "conv2d: channels ends must be multiples of 4"),
    (dict(groups=3, stride=0), ValueError, "conv2d: stride must be >= 1"),
    (dict(groups=3, padding=-1), ValueError, "conv2d: padding must be non-negative"),
    (dict(groups=3, dilation=9), ValueError, "conv2d: kernel .* does not fit input"),
    (dict(groups=2.0), TypeError, "conv2d: groups must be an int"),
]


@pytest.mark.parametrize("change,exc,msg", IMAGE_BAD, ids=[c[2] for c in IMAGE_BAD])
def test_image_grouped_conv_rejects(change, exc, msg):
    args = dict(x=X, w=W3, bias=None)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.conv2d(args.pop("x"), args.pop("w"), args.pop("bias"), **args)
