"""global_avg_pool in both layouts: the float64 reference, onnxruntime, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, LAYOUTS, X4, assert_ieee, check_bad_region_leaves_out_untouched,
    check_buffer_regions_in_any_order, check_buffer_row_and_channel_region,
    check_image_bad_region, check_image_new_output_zero_outside,
    check_image_regions_in_any_order, check_raises, in_layout, padding_lanes_zero, rand,
    sprinkle, tensor)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (NCHW) ===


@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 12), st.integers(1, 12), st.integers(0, 99))
def test_buffer_global_avg_pool(n, c, h, w, seed):
    x = rand(seed, n, c, h, w)
    y = B.global_avg_pool(x)
    assert y.shape == (n, c, 1, 1)
    assert_close(y, R.global_avg_pool(x), "global_avg_pool")
    out = np.empty((n, c, 1, 1), np.float32)
    assert B.global_avg_pool(x, out=out) is out


@given(st.integers(1, 2), st.integers(1, 20), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**16))
def test_buffer_global_avg_pool_any_size(n, c, h, w, seed):
    x = rand(seed, n, c, h, w)
    y = B.global_avg_pool(x)
    assert y.shape == (n, c, 1, 1)
    assert_close(y, R.global_avg_pool(x), "global_avg_pool")


def test_buffer_global_avg_pool_matches_onnxruntime():
    x = rand(5, 2, 6, 7, 5)
    assert_close(B.global_avg_pool(x), run_node("GlobalAveragePool", [x]), "GlobalAveragePool")


OPS = ['global_avg_pool']  # the region cases of this file


@pytest.mark.parametrize("op, dim, rank", [s for s in BUFFER_SPLITS if s[0] in OPS])
@given(data=st.data())
def test_buffer_regions_in_any_order_give_the_whole(op, dim, rank, data):
    check_buffer_regions_in_any_order(op, dim, rank, data)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    check_buffer_row_and_channel_region(op, data)


def test_buffer_global_avg_pool_rows_is_its_single_row():
    x = rand(0, 1, 6, 3, 3)
    out = np.full((1, 6, 1, 1), np.nan, np.float32)
    B.global_avg_pool(x, out=out, rows=(0, 0))
    assert np.isnan(out).all()
    B.global_avg_pool(x, out=out, rows=(0, 1), channels=(1, 4))
    assert_close(out[:, 1:4], R.global_avg_pool(x)[:, 1:4], "global_avg_pool")
    assert np.isnan(out[:, :1]).all() and np.isnan(out[:, 4:]).all()


BUFFER_BAD = [
    ("global_avg_pool x int", lambda: B.global_avg_pool(BX.astype(np.int32)), TypeError, r"global_avg_pool: x"),
    ("global_avg_pool x 2-D", lambda: B.global_avg_pool(BX[0, 0]), ValueError, r"global_avg_pool: x must be 4-D"),
    ("global_avg_pool x empty", lambda: B.global_avg_pool(BX[:, :, :0]), ValueError, r"global_avg_pool: x .*empty"),
    ("global_avg_pool out wrong shape", lambda: B.global_avg_pool(BX, out=np.zeros((2, 5), np.float32)), ValueError, r"global_avg_pool: out must have shape"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


BUFFER_BAD_REGIONS = [
    ("global_avg_pool channels past end", lambda o: B.global_avg_pool(X4, channels=(0, 6)), ValueError, r"global_avg_pool: channels must satisfy"),
    ("global_avg_pool rows past end", lambda o: B.global_avg_pool(X4, rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    check_bad_region_leaves_out_untouched(call, exc, message)


# === image (N, H, CB, W, 4) ===


@given(st.data())
def test_image_global_avg_pool(data):
    x = tensor(data.draw, h=(1, 12), w=(1, 12))
    y = ki.global_avg_pool(layout.to_image(x))
    assert y.shape == (x.shape[0], 1, (x.shape[1] + 3) // 4, 1, 4)
    assert_close(layout.to_buffer(y, x.shape[1]), R.global_avg_pool(x), "global_avg_pool")
    assert padding_lanes_zero(y, x.shape[1])
    assert_close(layout.to_buffer(y, x.shape[1]), B.global_avg_pool(x), "global_avg_pool vs buffer")


IMAGE_OPS = ['global_avg_pool']  # the image region cases of this file


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_regions_in_any_order_give_the_whole(op, channel_only, data):
    check_image_regions_in_any_order(op, channel_only, data)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    check_image_new_output_zero_outside(op, data)


def test_image_global_avg_pool_rows_is_its_single_row():
    xi = layout.to_image(rand(0, 1, 6, 3, 3))
    out = np.full((1, 1, 2, 1, 4), np.nan, np.float32)
    ki.global_avg_pool(xi, out=out, rows=(0, 0))
    ki.global_avg_pool(xi, out=out, rows=(1, 1), channels=(0, 6))
    assert np.isnan(out).all()
    ki.global_avg_pool(xi, out=out, rows=(0, 1), channels=(4, 6))
    np.testing.assert_array_equal(out[:, :, 1], ki.global_avg_pool(xi)[:, :, 1])
    assert np.isnan(out[:, :, 0]).all()


def test_image_global_avg_pool_rejects_buffer_layout():
    with pytest.raises(ValueError, match="global_avg_pool: x must be 5-D"):
        ki.global_avg_pool(np.zeros((1, 8, 6, 6), np.float32))




IMAGE_BAD_REGIONS = [
    ("global_avg_pool", dict(rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy 0 <= start <= stop <= 1"),
    ("global_avg_pool", dict(channels=(0, 2)), ValueError, "global_avg_pool: channels ends must be multiples"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    check_image_bad_region(op, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===


@pytest.mark.parametrize("lay", LAYOUTS)
@given(n=st.integers(1, 2), c=st.integers(1, 9), h=st.integers(1, 9), w=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_global_avg_pool_nan_and_inf_match_reference(lay, n, c, h, w, seed):
    x = sprinkle(rand(seed, n, c, h, w), seed, frac=0.05)
    assert_ieee(in_layout(lay, "global_avg_pool", x), R.global_avg_pool(x), f"global_avg_pool {lay}")
