"""global_avg_pool in both layouts: the float64 reference, onnxruntime, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, IRX, LAYOUTS, X4, assert_ieee, buffer_bands, buffer_region_case,
    cut, image_bands, image_region_case, in_layout, padding_lanes_zero, rand, sprinkle,
    tensor)
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
    call, ref = buffer_region_case(data, op, rank)
    whole = call(None)
    assert whole.dtype == np.float32
    assert_close(whole, ref, op)
    limit = whole.shape[2] if dim == "rows" else whole.shape[1]
    parts = buffer_bands(data, limit)
    skip = data.draw(st.sampled_from([None, *range(len(parts))]), label="skip")
    out = np.full(whole.shape, np.nan, np.float32)
    expected = whole.copy()
    for i, (lo, hi) in enumerate(parts):
        if i == skip:
            cut(expected, dim, lo, hi)[...] = np.nan  # never computed: must stay as it was
            continue
        assert call(out, **{dim: (lo, hi)}) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_buffer_row_and_channel_region_together(op, data):
    call, _ = buffer_region_case(data, op, 4)
    whole = call(None)
    _, c, h, _ = whole.shape
    r0 = data.draw(st.integers(0, h), label="r0")
    r1 = data.draw(st.integers(r0, h), label="r1")
    c0 = data.draw(st.integers(0, c), label="c0")
    c1 = data.draw(st.integers(c0, c), label="c1")
    y = call(None, rows=(r0, r1), channels=(c0, c1))  # a new output: zeros outside the region
    expected = np.zeros_like(whole)
    expected[:, c0:c1, r0:r1] = whole[:, c0:c1, r0:r1]
    np.testing.assert_array_equal(y, expected)


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
    with pytest.raises(exc, match=message):
        call()


BUFFER_BAD_REGIONS = [
    ("global_avg_pool channels past end", lambda o: B.global_avg_pool(X4, channels=(0, 6)), ValueError, r"global_avg_pool: channels must satisfy"),
    ("global_avg_pool rows past end", lambda o: B.global_avg_pool(X4, rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD_REGIONS],
                         ids=[c[0] for c in BUFFER_BAD_REGIONS])
def test_buffer_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    out = np.full(X4.shape, 3.0, np.float32)
    with pytest.raises(exc, match=message):
        call(out)
    assert (out == 3.0).all()


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
    call, ref, c = image_region_case(data, op, channel_only)
    whole = call(None)
    assert whole.dtype == np.float32 and whole.shape[2] == (c + 3) // 4
    assert_close(layout.to_buffer(whole, c), ref, op)
    assert padding_lanes_zero(whole, c)
    _, h, cb, _, _ = whole.shape
    rows = image_bands(data, h, 1, h, "row cuts")
    chans = image_bands(data, 4 * cb, 4, c, "channel cuts")
    parts = data.draw(st.permutations([(r, ch) for r in rows for ch in chans]), label="order")
    skip = data.draw(st.sampled_from([None, *range(len(parts))]), label="skip")
    out = np.full(whole.shape, np.nan, np.float32)
    expected = whole.copy()
    for i, (r, ch) in enumerate(parts):
        if i == skip:  # never computed: must stay as it was
            expected[:, r[0]:r[1], ch[0] // 4:(ch[1] + 3) // 4] = np.nan
            continue
        assert call(out, rows=r, channels=ch) is out
    assert call(out, rows=(h, h), channels=(0, c)) is out  # empty regions touch nothing
    assert call(out, rows=(0, h), channels=(0, 0)) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("op", IMAGE_OPS)
@given(data=st.data())
def test_image_new_output_is_zero_outside_the_region(op, data):
    call, _, c = image_region_case(data, op)
    whole = call(None)
    _, h, cb, _, _ = whole.shape
    r0 = data.draw(st.integers(0, h), label="r0")
    r1 = data.draw(st.integers(r0, h), label="r1")
    b0 = data.draw(st.integers(0, cb), label="b0")
    b1 = data.draw(st.integers(b0, cb), label="b1")
    c1 = c if b1 == cb > b0 else 4 * b1
    y = call(None, rows=(r0, r1), channels=(4 * b0, c1))
    expected = np.zeros_like(whole)
    expected[:, r0:r1, b0:b1] = whole[:, r0:r1, b0:b1]
    np.testing.assert_array_equal(y, expected)


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


IMAGE_CALLS = {
    "relu": lambda **k: ki.relu(IRX, **k),
    "clip": lambda **k: ki.clip(IRX, min=-1.0, max=1.0, **k),
    "add": lambda **k: ki.add(IRX, IRX, **k),
    "global_avg_pool": lambda **k: ki.global_avg_pool(IRX, **k),
    "concat": lambda **k: ki.concat([IRX, IRX[:, :, :1].copy()], [7, 3], **k),
}


IMAGE_BAD_REGIONS = [
    ("global_avg_pool", dict(rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy 0 <= start <= stop <= 1"),
    ("global_avg_pool", dict(channels=(0, 2)), ValueError, "global_avg_pool: channels ends must be multiples"),
]


@pytest.mark.parametrize("op,kw,exc,msg", IMAGE_BAD_REGIONS, ids=[c[3] for c in IMAGE_BAD_REGIONS])
def test_image_bad_regions_raise(op, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        IMAGE_CALLS[op](**kw)


# === NaN and infinities (both layouts, one rule with the reference) ===


@pytest.mark.parametrize("lay", LAYOUTS)
@given(n=st.integers(1, 2), c=st.integers(1, 9), h=st.integers(1, 9), w=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_global_avg_pool_nan_and_inf_match_reference(lay, n, c, h, w, seed):
    x = sprinkle(rand(seed, n, c, h, w), seed, frac=0.05)
    assert_ieee(in_layout(lay, "global_avg_pool", x), R.global_avg_pool(x), f"global_avg_pool {lay}")
