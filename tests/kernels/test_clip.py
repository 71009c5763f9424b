"""clip in both layouts: the float64 reference, onnxruntime, bounds, regions, padding lanes, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, IRX, LAYOUTS, X4, assert_ieee, check_bad_region_leaves_out_untouched,
    check_buffer_region_in_place, check_buffer_regions_in_any_order,
    check_buffer_row_and_channel_region, check_image_bad_region,
    check_image_new_output_zero_outside, check_image_region_in_place,
    check_image_regions_in_any_order, in_layout, padding_lanes_zero, rand, sprinkle,
    tensor)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (NCHW, any rank) ===


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


bounds = st.one_of(st.none(), st.floats(-2.0, 2.0, width=32))


def _clip_args(lo, hi):
    kw = {}
    if lo is not None:
        kw["min"] = lo
    if hi is not None:
        kw["max"] = hi
    return kw


@given(shapes, bounds, bounds, st.integers(0, 2**16))
def test_buffer_clip(shape, lo, hi, seed):
    x = rand(seed, *shape)
    kw = _clip_args(lo, hi)
    y = B.clip(x, **kw)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, R.clip(x, **kw).astype(np.float32))
    assert B.clip(x, **kw, out=x) is x  # in place
    np.testing.assert_array_equal(x, y)


def test_buffer_clip_relu6_infinite_bounds_and_min_above_max():
    x = np.array([-np.inf, -7.0, -0.5, 0.0, 3.0, 6.0, 9.0, np.inf], np.float32)
    np.testing.assert_array_equal(B.clip(x, min=0, max=6), [0, 0, 0, 0, 3, 6, 6, 6])
    np.testing.assert_array_equal(B.clip(x), x)  # no bounds: a copy, infinities kept
    np.testing.assert_array_equal(B.clip(x, min=-np.inf, max=np.inf), x)
    np.testing.assert_array_equal(B.clip(x, min=2.0, max=1.0), np.ones(8, np.float32))  # ONNX: all max
    np.testing.assert_array_equal(B.clip(x, min=np.inf), np.full(8, np.inf, np.float32))
    np.testing.assert_array_equal(B.clip(x, max=-np.inf), np.full(8, -np.inf, np.float32))
    np.testing.assert_array_equal(B.clip(x, min=1.5, max=1.5), np.full(8, 1.5, np.float32))
    # Bounds round to float32, as ONNX's float tensor bounds are.
    top = np.finfo(np.float32).max
    np.testing.assert_array_equal(B.clip(x, min=-3.40282347e38, max=3.40282347e38), np.clip(x, -top, top))
    np.testing.assert_array_equal(B.clip(x, min=1e39), np.full(8, np.inf, np.float32))
    np.testing.assert_array_equal(B.relu(x), np.maximum(x, 0))


def _ort_clip(x, lo, hi):
    """One onnxruntime Clip node (opset 13), bounds as constant inputs, one thread."""
    consts = {"min": None if lo is None else np.float32(lo), "max": None if hi is None else np.float32(hi)}
    return run_node("Clip", [x], consts=consts, opset=13)


@given(shapes, bounds, bounds, st.integers(0, 2**16))
def test_buffer_clip_matches_onnxruntime(shape, lo, hi, seed):
    x = rand(seed, *shape) * 3
    assert_close(B.clip(x, **_clip_args(lo, hi)), _ort_clip(x, lo, hi), "clip vs onnxruntime")


def test_buffer_relu6_matches_onnxruntime():
    x = rand(0, 2, 20, 5, 5) * 8
    np.testing.assert_array_equal(B.clip(x, min=0.0, max=6.0), _ort_clip(x, 0.0, 6.0))


OPS = ['clip']  # the region cases of this file


@pytest.mark.parametrize("op, dim, rank", [s for s in BUFFER_SPLITS if s[0] in OPS])
@given(data=st.data())
def test_buffer_regions_in_any_order_give_the_whole(op, dim, rank, data):
    check_buffer_regions_in_any_order(op, dim, rank, data)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    check_buffer_row_and_channel_region(op, data)


@pytest.mark.parametrize("op", ["clip"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_buffer_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_buffer_region_in_place(op, dim, data)


BUFFER_BAD_REGIONS = [
    ("clip channels reversed", lambda o: B.clip(X4, min=0, out=o, channels=(4, 3)), ValueError, r"clip: channels must satisfy"),
    ("clip rows negative", lambda o: B.clip(X4, max=1, out=o, rows=(-1, 2)), ValueError, r"clip: rows must satisfy"),
    ("clip min nan", lambda o: B.clip(X4, min=float("nan"), out=o), ValueError, r"clip: min must not be NaN"),
    ("clip max string", lambda o: B.clip(X4, max="6", out=o), TypeError, r"clip: max must be a number"),
    ("clip min bool", lambda o: B.clip(X4, min=True, out=o), TypeError, r"clip: min must be a number"),
    ("clip x float64", lambda o: B.clip(X4.astype(np.float64), out=o), TypeError, r"clip: x .*float32"),
    ("clip out wrong shape", lambda o: B.clip(X4, out=np.zeros((2, 5), np.float32)), ValueError, r"clip: out must have shape"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    check_bad_region_leaves_out_untouched(call, exc, message)


# === image (N, H, CB, W, 4) ===


BOUNDS = st.sampled_from([(0.0, 6.0), (-0.5, 0.5), (0.25, 1.0), (-1.0, -0.25), (0.5, 0.5), (1.0, -1.0),
                          (-np.inf, 0.3), (-0.3, np.inf), (-np.inf, np.inf), (2.0, np.inf), (-np.inf, -2.0)])


@given(st.data(), BOUNDS, st.booleans())
def test_image_clip(data, bounds, channel_only):
    x = tensor(data.draw, h=(1, 1) if channel_only else (1, 9), w=(1, 1) if channel_only else (1, 9))
    x *= np.float32(3.0)
    lo, hi = bounds
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.clip(xi, min=lo, max=hi, c=c)
    want = R.clip(x, min=lo, max=hi)
    assert_close(layout.to_buffer(y, c), want, "clip")
    assert padding_lanes_zero(y, c)
    np.testing.assert_array_equal(layout.to_buffer(y, c), B.clip(x, min=lo, max=hi))
    ki.clip(xi, min=lo, max=hi, c=c, out=xi)
    np.testing.assert_array_equal(xi, y)


def test_image_relu6_needs_no_channel_count():
    x = np.linspace(-9.0, 9.0, 5 * 2 * 3, dtype=np.float32).reshape(1, 5, 2, 3)
    y = ki.clip(layout.to_image(x), min=0.0, max=6.0)
    np.testing.assert_array_equal(layout.to_buffer(y, 5), np.clip(x, 0.0, 6.0))
    assert padding_lanes_zero(y, 5)


IMAGE_OPS = ['clip', 'clip_off_zero']  # the image region cases of this file


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_regions_in_any_order_give_the_whole(op, channel_only, data):
    check_image_regions_in_any_order(op, channel_only, data)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    check_image_new_output_zero_outside(op, data)


@pytest.mark.parametrize("op", ["clip"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_image_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_image_region_in_place(op, dim, data)


def test_image_clip_keeps_padding_lanes_zero():
    x = rand(3, 1, 5, 2, 3)  # 5 channels: lanes 1..3 of block 1 are padding
    xi = layout.to_image(x)
    for lo, hi in [(0.5, 2.0), (-2.0, -1.0), (3.0, 1.0)]:
        y = ki.clip(xi, min=lo, max=hi, c=5)
        assert padding_lanes_zero(y, 5)
        assert_close(layout.to_buffer(y, 5), R.clip(x, min=lo, max=hi), "clip")
        out = np.full(y.shape, np.nan, np.float32)
        ki.clip(xi, min=lo, max=hi, out=out, rows=(0, 1), channels=(4, 5))  # the end is the count
        np.testing.assert_array_equal(out[:, :1, 1], y[:, :1, 1])
        assert np.isnan(out[:, 1:]).all() and np.isnan(out[:, :, 0]).all()
        ki.clip(xi, min=lo, max=hi, out=out, channels=(0, 4))  # no padding lanes: no count needed
        np.testing.assert_array_equal(out[:, :, 0], y[:, :, 0])


def test_image_clip_off_zero_needs_the_channel_count():
    msg = "clip: c .* is required when 0 is outside"
    with pytest.raises(TypeError, match=msg):
        ki.clip(IRX, min=0.5, max=1.0)
    with pytest.raises(TypeError, match=msg):
        ki.clip(IRX, min=-2.0, max=-1.0, rows=(0, 3))
    ki.clip(IRX, min=0.5, max=1.0, channels=(0, 4))  # the padded block is not in the region
    ki.clip(IRX, min=0.5, max=1.0, channels=(4, 7))  # the region's end is the count




IMAGE_BAD_REGIONS = [
    ("clip", dict(rows=(-1, 2)), ValueError, "clip: rows must satisfy"),
    ("clip", dict(channels=(4, 6), c=7), ValueError, r"clip: channels ends must be multiples of 4 .*count 7"),
    ("clip", dict(c=9), ValueError, "clip: c=9 does not fit 2 channel blocks"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    check_image_bad_region(op, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===

SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, 7.0], np.float32).reshape(1, 8, 1, 1)


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("lo, hi", [(0.0, 6.0), (-1.0, 1.0), (-np.inf, 2.0), (1.0, np.inf), (3.0, 2.0)])
def test_clip_keeps_nan_and_clamps_inf(lay, lo, hi):
    kw = {"c": 8} if lay == "image" else {}
    y = in_layout(lay, "clip", SPECIALS, min=lo, max=hi, **kw)
    assert_ieee(y, R.clip(SPECIALS, min=lo, max=hi), f"clip {lay} [{lo}, {hi}]")
    if lo < hi:
        assert np.isnan(y[0, 0]), "NaN stays NaN"


@pytest.mark.parametrize("lay", LAYOUTS)
@given(c=st.integers(1, 20), h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 2**16),
       lo=st.floats(-2, 0.5, width=32), hi=st.floats(-0.5, 2, width=32))
def test_clip_nan_and_inf_match_reference(lay, c, h, w, seed, lo, hi):
    x = sprinkle(rand(seed, 2, c, h, w), seed)
    kw = {"c": c} if lay == "image" else {}
    assert_ieee(in_layout(lay, "clip", x, min=lo, max=hi, **kw), R.clip(x, min=lo, max=hi), f"clip {lay}")
