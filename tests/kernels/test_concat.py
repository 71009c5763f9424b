"""concat in both layouts: the float64 reference, any axis, regions spanning inputs, bad input, NaN and inf."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, IRX, IX, LAYOUTS, X2, X3, X4,
    check_bad_region_leaves_out_untouched, check_buffer_regions_in_any_order,
    check_buffer_row_and_channel_region, check_image_bad_region,
    check_image_new_output_zero_outside, check_image_regions_in_any_order, check_raises,
    image_bands, img, padding_lanes_zero, rand, shifted, sprinkle)


# === buffer (NCHW, any rank) ===


@given(st.lists(st.integers(1, 4), min_size=4, max_size=4), st.integers(0, 3),
       st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(0, 2**16))
def test_buffer_concat_any_axis(base, axis, sizes, seed):
    xs = []
    for i, k in enumerate(sizes):
        shape = list(base)
        shape[axis] = k
        xs.append(rand(seed + i, *shape))
    y = B.concat(xs, axis=axis)
    np.testing.assert_array_equal(y, R.concat(xs, axis=axis))
    np.testing.assert_array_equal(B.concat(xs, axis=axis - 4), y)  # negative axis
    out = np.empty(y.shape, np.float32)
    assert B.concat(tuple(xs), axis=axis, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_buffer_concat_default_axis_channels_and_2d():
    a, b = rand(0, 2, 3, 4, 5), rand(1, 2, 5, 4, 5)
    np.testing.assert_array_equal(B.concat([a, b]), np.concatenate([a, b], axis=1))
    p, q = rand(2, 3, 4), rand(3, 3, 2)
    np.testing.assert_array_equal(B.concat([p, q], axis=1), np.concatenate([p, q], axis=1))
    # Non-contiguous inputs are accepted.
    np.testing.assert_array_equal(B.concat([a[:, ::2], b], axis=1), np.concatenate([a[:, ::2], b], axis=1))


def test_buffer_concat_with_empty_input():
    a, e = rand(0, 1, 2, 3, 3), np.zeros((1, 0, 3, 3), np.float32)
    np.testing.assert_array_equal(B.concat([e, a, e]), a)


OPS = ['concat']  # the region cases of this file


@pytest.mark.parametrize("op, dim, rank", [s for s in BUFFER_SPLITS if s[0] in OPS])
@given(data=st.data())
def test_buffer_regions_in_any_order_give_the_whole(op, dim, rank, data):
    check_buffer_regions_in_any_order(op, dim, rank, data)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    check_buffer_row_and_channel_region(op, data)


def test_buffer_concat_channel_region_spanning_inputs():
    xs = [rand(i, 2, k, 3, 4) for i, k in enumerate((3, 5, 2))]
    y = np.concatenate(xs, axis=1)
    out = np.full(y.shape, np.nan, np.float32)
    B.concat(xs, out=out, channels=(2, 9))  # ends inside the first and the last input
    np.testing.assert_array_equal(out[:, 2:9], y[:, 2:9])
    assert np.isnan(out[:, :2]).all() and np.isnan(out[:, 9:]).all()
    B.concat(xs, out=out, channels=(0, 2), rows=(1, 3))
    np.testing.assert_array_equal(out[:, :2, 1:], y[:, :2, 1:])
    assert np.isnan(out[:, :2, :1]).all()


BUFFER_BAD = [
    ("concat out wrong shape", lambda: B.concat([BX, BX], out=np.zeros(BX.shape, np.float32)), ValueError, r"concat: out must have shape"),
    ("concat out overlaps an input", lambda: shifted("concat"), ValueError, r"concat: out must not overlap an input"),
    ("concat empty list", lambda: B.concat([]), TypeError, r"concat: xs must be a non-empty list"),
    ("concat not a list", lambda: B.concat(BX), TypeError, r"concat: xs must be a non-empty list"),
    ("concat shapes differ off axis", lambda: B.concat([BX, BX[:, :, :3]], axis=1), ValueError, r"concat: xs\[1\] shape"),
    ("concat ranks differ", lambda: B.concat([BX, BX[0]], axis=1), ValueError, r"concat: xs\[1\] shape"),
    ("concat axis out of range", lambda: B.concat([BX, BX], axis=4), ValueError, r"concat: axis must be in \[-4, 3\]"),
    ("concat axis float", lambda: B.concat([BX, BX], axis=1.0), TypeError, r"concat: axis must be an int"),
    ("concat xs dtype", lambda: B.concat([BX, BX.astype(np.float64)]), TypeError, r"concat: xs\[1\] .*float32"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


BUFFER_BAD_REGIONS = [
    ("concat channels past end", lambda o: B.concat([X4, X4], channels=(0, 11)), ValueError, r"concat: channels must satisfy 0 <= start <= stop <= 10"),
    ("concat rows past end", lambda o: B.concat([X4, X4], axis=2, rows=(0, 13)), ValueError, r"concat: rows must satisfy 0 <= start <= stop <= 12"),
    ("concat rows on 2-D", lambda o: B.concat([X2, X2], rows=(0, 1)), ValueError, r"concat: rows needs a 4-D"),
    ("concat channels on 3-D", lambda o: B.concat([X3, X3], channels=(0, 1)), ValueError, r"concat: channels needs"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    check_bad_region_leaves_out_untouched(call, exc, message)


# === image (N, H, CB, W, 4) ===


@given(st.lists(st.integers(1, 10), min_size=1, max_size=4), st.integers(1, 2), st.integers(1, 5),
       st.integers(1, 5), st.integers(0, 2**16))
def test_image_concat(counts, n, h, w, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n, c, h, w), dtype=np.float32) for c in counts]
    y = ki.concat([layout.to_image(x) for x in xs], counts)
    total = sum(counts)
    assert y.shape == (n, h, (total + 3) // 4, w, 4)
    np.testing.assert_array_equal(layout.to_buffer(y, total), np.concatenate(xs, axis=1))
    assert padding_lanes_zero(y, total)
    np.testing.assert_array_equal(layout.to_buffer(y, total), B.concat(xs, axis=1))


IMAGE_OPS = ['concat']  # the image region cases of this file


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_regions_in_any_order_give_the_whole(op, channel_only, data):
    check_image_regions_in_any_order(op, channel_only, data)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    check_image_new_output_zero_outside(op, data)


def test_image_concat_region_spans_inputs():
    xs = [rand(i, 2, k, 3, 4) for i, k in enumerate((3, 5, 2))]
    imgs = [layout.to_image(x) for x in xs]
    y = ki.concat(imgs, [3, 5, 2])
    out = np.full(y.shape, np.nan, np.float32)
    ki.concat(imgs, [3, 5, 2], out, rows=(1, 3), out_region=(4, 10))  # the last two inputs and padding
    np.testing.assert_array_equal(out[:, 1:, 1:], y[:, 1:, 1:])
    assert np.isnan(out[:, :1]).all() and np.isnan(out[:, :, :1]).all()
    ki.concat(imgs, [3, 5, 2], out, out_region=(0, 12))  # the end may be the last block's end
    np.testing.assert_array_equal(out, y)


def test_image_concat_out_must_not_overlap_an_input():
    big = np.zeros((1, 6, 3, 5, 4), np.float32)
    inside = big.reshape(-1)[:120].reshape(1, 6, 1, 5, 4)  # contiguous, shares big's memory
    with pytest.raises(ValueError, match=r"concat: out must not overlap xs\[1\]"):
        ki.concat([IRX, inside], [7, 3], big, out_region=(0, 4))


IMAGE_CONCAT_BAD = [
    (dict(xs=[]), TypeError, "concat: xs must be a non-empty list"),
    (dict(channels=[8]), ValueError, "concat: channels must list one true channel count per input"),
    (dict(channels=[8, 9]), ValueError, r"concat: channels\[1\]=9 does not fit 1 channel blocks"),
    (dict(xs=[IX, img(h=5, cb=1)]), ValueError, r"concat: xs\[1\] must have N, H, W"),
    (dict(out=np.zeros((1, 6, 2, 6, 4), np.float32)), ValueError, "concat: out must have shape"),
]


@pytest.mark.parametrize("change,exc,msg", IMAGE_CONCAT_BAD, ids=[c[2] for c in IMAGE_CONCAT_BAD])
def test_image_concat_rejects(change, exc, msg):
    args = dict(xs=[IX, img(cb=1)], channels=[8, 3])
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.concat(args.pop("xs"), args.pop("channels"), **args)




IMAGE_BAD_REGIONS = [
    ("concat", dict(rows=(0, 7)), ValueError, "concat: rows must satisfy"),
    ("concat", dict(out_region=(2, 8)), ValueError, "concat: out_region ends must be multiples of 4"),
    ("concat", dict(out_region=(0, 9)), ValueError, "concat: out_region ends must be multiples of 4"),
    ("concat", dict(out_region=(0, 16)), ValueError, r"concat: out_region must satisfy 0 <= start <= stop <= 12"),
    ("concat", dict(out_region=[0]), TypeError, "concat: out_region must be a pair of ints"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    check_image_bad_region(op, kw, exc, msg)


# === NaN and infinities, and the image's N/H/W axes ===


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -2])
@given(counts=st.lists(st.integers(1, 6), min_size=1, max_size=3), c=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_concat_any_axis_copies_nan_and_inf(lay, axis, counts, c, seed):
    """Both layouts join on every NCHW axis (images: channels lane by lane, N/H/W by texels)."""
    xs = []
    for i, k in enumerate(counts):
        shape = [2, c, 3, 4]
        shape[axis % 4] = k
        xs.append(sprinkle(rand(seed + i, *shape), seed + i))
    want = R.concat(xs, axis=axis)
    if lay == "buffer":
        y = B.concat(xs, axis=axis)
    else:
        y = ki.concat([layout.to_image(x) for x in xs], [x.shape[1] for x in xs], axis=axis)
        assert padding_lanes_zero(y, want.shape[1])
        y = layout.to_buffer(y, want.shape[1])
    np.testing.assert_array_equal(y, want.astype(np.float32))


@pytest.mark.parametrize("axis", [0, 2, 3])
@given(data=st.data())
def test_image_concat_spatial_regions_tile_the_whole(axis, data):
    """Along N, H or W: row x channel regions, in any order, give the whole output."""
    c = data.draw(st.integers(1, 10), label="c")
    counts = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3), label="counts")
    xs = []
    for i, k in enumerate(counts):
        shape = [2, c, 3, 4]
        shape[axis] = k
        xs.append(rand(i, *shape))
    imgs = [layout.to_image(x) for x in xs]
    whole = ki.concat(imgs, [c] * len(xs), axis=axis)
    rows = image_bands(data, whole.shape[1], 1, whole.shape[1], "row cuts")
    chans = image_bands(data, 4 * whole.shape[2], 4, c, "channel cuts")
    out = np.full(whole.shape, np.nan, np.float32)
    for r, ch in data.draw(st.permutations([(r, ch) for r in rows for ch in chans]), label="order"):
        assert ki.concat(imgs, [c] * len(xs), out, axis=axis, rows=r, out_region=ch) is out
    np.testing.assert_array_equal(out, whole)


IMAGE_AXIS_BAD = [
    (dict(axis=4), ValueError, r"concat: axis must be in \[-4, 3\]"),
    (dict(axis=1.0), TypeError, "concat: axis must be an int"),
    (dict(axis=2, channels=[8, 7]), ValueError, r"concat: along axis 2 every input needs the channels of xs\[0\] \(8\)"),
    (dict(axis=3, xs=[IX, img(h=5)]), ValueError, r"concat: xs\[1\] shape .* off the joined axis 3"),
]


@pytest.mark.parametrize("change,exc,msg", IMAGE_AXIS_BAD, ids=[c[2] for c in IMAGE_AXIS_BAD])
def test_image_concat_axis_rejects(change, exc, msg):
    args = dict(xs=[IX, IX], channels=[8, 8])
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.concat(args.pop("xs"), args.pop("channels"), **args)
