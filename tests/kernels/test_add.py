"""add (with fused ReLU) in both layouts: the float64 reference, regions, in place, bad input, NaN and inf."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, IX, LAYOUTS, X2, X4, assert_ieee,
    check_bad_region_leaves_out_untouched, check_buffer_region_in_place,
    check_buffer_regions_in_any_order, check_buffer_row_and_channel_region,
    check_image_bad_region, check_image_new_output_zero_outside,
    check_image_region_in_place, check_image_regions_in_any_order, check_raises, img,
    padding_lanes_zero, rand, readonly, shifted, sprinkle, tensor)
from tests.tolerance import assert_close


# === buffer (NCHW, any rank) ===


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


@given(shapes, st.booleans(), st.integers(0, 2**16))
def test_buffer_add(shape, relu, seed):
    a, b = rand(seed, *shape), rand(seed + 1, *shape)
    y = B.add(a, b, relu=relu)
    assert_close(y, R.add(a, b, relu=relu), "add")
    out = np.empty(shape, np.float32)
    assert B.add(a, b, relu=relu, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert B.add(a, b, relu=relu, out=a) is a  # in place into the first operand
    np.testing.assert_array_equal(a, y)
    a2 = rand(seed, *shape)
    assert B.add(a2, b, relu=relu, out=b) is b  # and into the second
    np.testing.assert_array_equal(b, y)


OPS = ['add', 'add_relu']  # the region cases of this file


@pytest.mark.parametrize("op, dim, rank", [s for s in BUFFER_SPLITS if s[0] in OPS])
@given(data=st.data())
def test_buffer_regions_in_any_order_give_the_whole(op, dim, rank, data):
    check_buffer_regions_in_any_order(op, dim, rank, data)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    check_buffer_row_and_channel_region(op, data)


@pytest.mark.parametrize("op", ["add"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_buffer_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_buffer_region_in_place(op, dim, data)


BUFFER_BAD = [
    ("add b float64", lambda: B.add(BX, BX.astype(np.float64)), TypeError, r"add: b .*float32"),
    ("add out read-only", lambda: B.add(BX, BX, out=readonly(BX.shape)), ValueError, r"add: out must be writeable"),
    ("add out overlaps b partially", lambda: shifted("add"), ValueError, r"add: out must be an input itself or not overlap"),
    ("add shapes differ", lambda: B.add(BX, BX[:, :4]), ValueError, r"add: b must have the shape of a"),
    ("add relu string", lambda: B.add(BX, BX, relu="no"), TypeError, r"add: relu must be a bool"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


BUFFER_BAD_REGIONS = [
    ("add rows past end", lambda o: B.add(X4, X4, out=o, rows=(0, 9)), ValueError, r"add: rows must satisfy"),
    ("add channels floats", lambda o: B.add(X4, X4, out=o, channels=(0.0, 1.0)), TypeError, r"add: channels must be a pair"),
    ("add rows on 2-D", lambda o: B.add(X2, X2, rows=(0, 1)), ValueError, r"add: rows needs a 4-D"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    check_bad_region_leaves_out_untouched(call, exc, message)


# === image (N, H, CB, W, 4) ===


@given(st.data())
def test_image_relu_and_add(data):
    a = tensor(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    b = rng.standard_normal(a.shape, dtype=np.float32)
    c = a.shape[1]
    ai, bi = layout.to_image(a), layout.to_image(b)
    assert_close(layout.to_buffer(ki.relu(ai), c), R.relu(a), "relu")
    for fuse in (False, True):
        assert_close(layout.to_buffer(ki.add(ai, bi, relu=fuse), c), R.add(a, b, relu=fuse), "add")
    in_place = ai.copy()
    ki.add(in_place, bi, relu=True, out=in_place)
    assert_close(layout.to_buffer(in_place, c), R.add(a, b, relu=True), "add in place")
    assert_close(layout.to_buffer(ki.relu(ai), c), B.relu(a), "relu vs buffer")
    assert_close(layout.to_buffer(ki.add(ai, bi, relu=True), c), B.add(a, b, relu=True), "add vs buffer")
    ki.relu(ai, out=ai)
    assert_close(layout.to_buffer(ai, c), R.relu(a), "relu in place")
    assert padding_lanes_zero(ai, c)


IMAGE_OPS = ['add', 'add_relu']  # the image region cases of this file


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_regions_in_any_order_give_the_whole(op, channel_only, data):
    check_image_regions_in_any_order(op, channel_only, data)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    check_image_new_output_zero_outside(op, data)


@pytest.mark.parametrize("op", ["add"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_image_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    check_image_region_in_place(op, dim, data)


def test_image_add_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"add: b must have the shape of a"):
        ki.add(IX, img(cb=3))


def test_image_add_rejects_partially_overlapping_out():
    flat = np.zeros(IX.size + 4, np.float32)
    a = flat[:IX.size].reshape(IX.shape)
    shifted = flat[4:].reshape(IX.shape)
    with pytest.raises(ValueError, match="add: out must be an input itself or not overlap it"):
        ki.add(a, a, out=shifted)




IMAGE_BAD_REGIONS = [
    ("add", dict(rows=(0, 9)), ValueError, "add: rows must satisfy"),
    ("add", dict(channels=(1, 4)), ValueError, "add: channels ends must be multiples of 4"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    check_image_bad_region(op, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===

SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, 7.0], np.float32).reshape(1, 8, 1, 1)


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("relu", [False, True])
def test_add_nan_and_inf(lay, relu):
    """inf + -inf is NaN; a fused ReLU keeps NaN (both layouts alike)."""
    b = SPECIALS[:, [7, 2, 1, 4, 3, 6, 5, 0]].copy()
    y = B.add(SPECIALS, b, relu=relu) if lay == "buffer" else layout.to_buffer(
        ki.add(layout.to_image(SPECIALS), layout.to_image(b), relu=relu), 8)
    assert_ieee(y, R.add(SPECIALS, b, relu=relu), f"add {lay}")
    assert np.isnan(y[0, 1]) and np.isnan(y[0, 0])  # inf + -inf, NaN + 7


@pytest.mark.parametrize("lay", LAYOUTS)
@given(c=st.integers(1, 20), h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 2**16),
       relu=st.booleans())
def test_add_nan_and_inf_match_reference(lay, c, h, w, seed, relu):
    a = sprinkle(rand(seed, 2, c, h, w), seed)
    b = sprinkle(rand(seed + 1, 2, c, h, w), seed + 1)
    y = B.add(a, b, relu=relu) if lay == "buffer" else layout.to_buffer(
        ki.add(layout.to_image(a), layout.to_image(b), relu=relu), c)
    assert_ieee(y, R.add(a, b, relu=relu), f"add {lay}")
