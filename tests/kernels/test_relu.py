"""relu in both layouts: the float64 reference, regions, in place, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BUFFER_SPLITS, BX, IRX, IX, LAYOUTS, X2, X3, X4, assert_ieee, buffer_bands,
    buffer_region_case, cut, fortran, image_bands, image_region_case, in_layout,
    padding_lanes_zero, rand, shifted, sprinkle)
from tests.tolerance import assert_close


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


@pytest.mark.parametrize("op", ["relu"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_buffer_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 20)),
             data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    x = rand(data.draw(st.integers(0, 2**16)), *shape)
    limit = shape[2] if dim == "rows" else shape[1]
    lo = data.draw(st.integers(0, limit), label="lo")
    hi = data.draw(st.integers(lo, limit), label="hi")
    fn = {"relu": lambda a, **k: B.relu(a, **k), "clip": lambda a, **k: B.clip(a, min=-0.3, max=0.6, **k),
          "add": lambda a, **k: B.add(a, x, relu=True, **k)}[op]
    whole = fn(x)
    buf = x.copy()
    assert fn(buf, out=buf, **{dim: (lo, hi)}) is buf
    expected = x.copy()
    cut(expected, dim, lo, hi)[...] = cut(whole, dim, lo, hi)
    np.testing.assert_array_equal(buf, expected)


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
    with pytest.raises(exc, match=message):
        call()


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
    out = np.full(X4.shape, 3.0, np.float32)
    with pytest.raises(exc, match=message):
        call(out)
    assert (out == 3.0).all()


# === image (N, H, CB, W, 4) ===


IMAGE_OPS = ['relu']  # the image region cases of this file


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


@pytest.mark.parametrize("op", ["relu"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_image_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    c = data.draw(st.integers(1, 40), label="c")
    shape = (data.draw(st.integers(1, 2)), c, data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    xi = layout.to_image(rand(data.draw(st.integers(0, 2**16)), *shape))
    fn = {"relu": lambda a, **k: ki.relu(a, **k),
          "clip": lambda a, **k: ki.clip(a, min=0.2, max=0.6, c=c, **k),
          "add": lambda a, **k: ki.add(a, xi, relu=True, **k)}[op]
    whole = fn(xi)
    if dim == "rows":
        lo = data.draw(st.integers(0, shape[2]), label="lo")
        hi = data.draw(st.integers(lo, shape[2]), label="hi")
        reg, sel = (lo, hi), (slice(None), slice(lo, hi))
    else:
        cb = xi.shape[2]
        lo = data.draw(st.integers(0, cb), label="lo")
        hi = data.draw(st.integers(lo, cb), label="hi")
        reg, sel = (4 * lo, c if hi == cb > lo else 4 * hi), (slice(None), slice(None), slice(lo, hi))
    buf = xi.copy()
    assert fn(buf, out=buf, **{dim: reg}) is buf
    expected = xi.copy()
    expected[sel] = whole[sel]
    np.testing.assert_array_equal(buf, expected)
    assert padding_lanes_zero(buf, c)


def test_image_relu_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="relu: x must have dtype float32"):
        ki.relu(IX.astype(np.float16))


IMAGE_CALLS = {
    "relu": lambda **k: ki.relu(IRX, **k),
    "clip": lambda **k: ki.clip(IRX, min=-1.0, max=1.0, **k),
    "add": lambda **k: ki.add(IRX, IRX, **k),
    "global_avg_pool": lambda **k: ki.global_avg_pool(IRX, **k),
    "concat": lambda **k: ki.concat([IRX, IRX[:, :, :1].copy()], [7, 3], **k),
}


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
    with pytest.raises(exc, match=msg):
        IMAGE_CALLS[op](**kw)


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
