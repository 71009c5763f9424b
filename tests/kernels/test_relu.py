"""relu in both layouts: the float64 reference, regions, in place, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, IX, LAYOUTS, X2, X3, X4, assert_ieee,
    check_bad_region_leaves_out_untouched, check_buffer_region_in_place,
    check_buffer_regions_in_any_order, check_buffer_row_and_channel_region,
    check_image_bad_region, check_image_new_output_zero_outside,
    check_image_region_in_place, check_image_regions_in_any_order, check_raises, fortran,
    in_layout, rand, shifted, sprinkle)


# === buffer (NCHW, any rank) ===


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


@given(shapes, st.integers(0, 2**16))
def test_buffer_relu(shape, seed):
    x = rand(seed, *shape)
    y = B.relu(x)
    np.testing.assert_array_equal(y, R.relu(x))
    assert y.dtype == np.float32 and y is not x
    out = np.full(shape, np.nan, np.float32)
    assert B.relu(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert B.relu(x, out=x) is x  # in place
    np.testing.assert_array_equal(x, y)


OPS = ['relu']  # the region cases of this file


@pytest.mark.parametrize("op, dim, rank", [s for s in BUFFER_SPLITS if s[0] in OPS])
@given(data=st.data())
def test_buffer_regions_in_any_order_give_the_whole(op, dim, rank, data):
    check_buffer_regions_in_any_order(op, dim, rank, data)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    check_buffer_row_and_channel_region(op, data)


@pytest.mark.parametrize("op", ["relu"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_buffer_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_buffer_region_in_place(op, dim, data)


BUFFER_BAD = [
    ("relu x float16", lambda: B.relu(BX.astype(np.float16)), TypeError, r"relu: x .*float32"),
    ("relu x scalar", lambda: B.relu(np.float32(1.0)), TypeError, r"relu: x .*ndarray"),
    ("relu x 0-D", lambda: B.relu(np.array(1.0, np.float32)), ValueError, r"relu: x .*at least 1 axis"),
    ("relu out wrong shape", lambda: B.relu(BX, out=np.zeros((2, 5, 6), np.float32)), ValueError, r"relu: out must have shape"),
    ("relu out non-contiguous", lambda: B.relu(BX, out=fortran(BX.shape)), ValueError, r"relu: out must be C-contiguous"),
    ("relu out overlaps x partially", lambda: shifted("relu"), ValueError, r"relu: out must be an input itself or not overlap"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


BUFFER_BAD_REGIONS = [
    ("relu rows past end", lambda o: B.relu(X4, out=o, rows=(0, 7)), ValueError, r"relu: rows must satisfy"),
    ("relu rows reversed", lambda o: B.relu(X4, out=o, rows=(3, 2)), ValueError, r"relu: rows must satisfy"),
    ("relu channels int", lambda o: B.relu(X4, out=o, channels=2), TypeError, r"relu: channels must be a pair"),
    ("relu rows on 2-D", lambda o: B.relu(X2, rows=(0, 1)), ValueError, r"relu: rows needs a 4-D"),
    ("relu channels on 3-D", lambda o: B.relu(X3, channels=(0, 1)), ValueError, r"relu: channels needs a 2-D .* or 4-D"),
    ("relu 2-D channels past end", lambda o: B.relu(X2, channels=(0, 6)), ValueError, r"relu: channels must satisfy"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    check_bad_region_leaves_out_untouched(call, exc, message)


# === image (N, H, CB, W, 4) ===


IMAGE_OPS = ['relu']  # the image region cases of this file


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_regions_in_any_order_give_the_whole(op, channel_only, data):
    check_image_regions_in_any_order(op, channel_only, data)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    check_image_new_output_zero_outside(op, data)


@pytest.mark.parametrize("op", ["relu"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_image_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_image_region_in_place(op, dim, data)


def test_image_relu_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="relu: x must have dtype float32"):
        ki.relu(IX.astype(np.float16))




IMAGE_BAD_REGIONS = [
    ("relu", dict(rows=(0, 7)), ValueError, r"relu: rows must satisfy 0 <= start <= stop <= 6"),
    ("relu", dict(rows=(3, 2)), ValueError, "relu: rows must satisfy"),
    ("relu", dict(channels=(2, 8)), ValueError, "relu: channels ends must be multiples of 4"),
    ("relu", dict(channels=(0, 3)), ValueError, "relu: channels ends must be multiples of 4"),
    ("relu", dict(channels=(0, 12)), ValueError, r"relu: channels must satisfy 0 <= start <= stop <= 8"),
    ("relu", dict(channels=4), TypeError, "relu: channels must be a pair of ints"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    check_image_bad_region(op, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===

SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, 7.0], np.float32).reshape(1, 8, 1, 1)


@pytest.mark.parametrize("lay", LAYOUTS)
def test_relu_keeps_nan_and_inf(lay):
    y = in_layout(lay, "relu", SPECIALS)
    assert_ieee(y, R.relu(SPECIALS), f"relu {lay}")
    assert np.isnan(y[0, 0]) and np.isposinf(y[0, 1]) and y[0, 2] == 0


@pytest.mark.parametrize("lay", LAYOUTS)
@given(c=st.integers(1, 20), h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_relu_nan_and_inf_match_reference(lay, c, h, w, seed):
    x = sprinkle(rand(seed, 2, c, h, w), seed)
    assert_ieee(in_layout(lay, "relu", x), R.relu(x), f"relu {lay}")
