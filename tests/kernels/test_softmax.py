"""softmax in both layouts: the float64 reference, onnxruntime, any axis, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BX, IX, LAYOUTS, assert_ieee, image_bands, padding_lanes_zero, rand, shifted,
    sprinkle, tensor)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (any rank) ===


softmax_shapes = st.one_of(
    st.tuples(st.integers(1, 4), st.integers(1, 40)),
    st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 5), st.integers(1, 6)),
)


@given(softmax_shapes, st.integers(0, 2**16), st.sampled_from([1.0, 30.0]), st.data())
def test_buffer_softmax_matches_reference(shape, seed, scale, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = scale * rand(seed, *shape)
    y = B.softmax(x, axis=axis)
    assert_close(y, R.softmax(x, axis=axis), "softmax")
    assert_close(y.sum(axis=axis), np.ones(np.delete(shape, axis % len(shape))), "sum to one")


def test_buffer_softmax_default_axis_out_and_in_place():
    x = rand(1, 2, 1000)
    y = B.softmax(x)
    assert_close(y, R.softmax(x, axis=1), "softmax")
    out = np.empty_like(x)
    assert B.softmax(x, out=out) is out
    assert B.softmax(x, out=x) is x
    np.testing.assert_array_equal(x, out)


def test_buffer_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 1e4 - 1.0, -1e4]], np.float32)
    y = B.softmax(x)
    assert np.isfinite(y).all()
    assert_close(y, R.softmax(x), "softmax")


@settings(max_examples=15)
@given(softmax_shapes, st.integers(0, 2**16), st.data())
def test_buffer_softmax_matches_onnxruntime(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = 5 * rand(seed, *shape)
    assert_close(B.softmax(x, axis=axis), run_node("Softmax", [x], axis=axis), "Softmax")


BUFFER_BAD = [
    ("softmax x int", lambda: B.softmax(np.ones((2, 3), np.int64)), TypeError, r"softmax: x .*float32"),
    ("softmax x 0-D", lambda: B.softmax(np.array(1.0, np.float32)), ValueError, r"softmax: x .*at least 1 axis"),
    ("softmax out overlaps x partially", lambda: shifted("softmax"), ValueError, r"softmax: out must be x itself or not overlap"),
    ("softmax out wrong shape", lambda: B.softmax(BX, out=np.zeros((2, 5), np.float32)), ValueError, r"softmax: out must have shape"),
    ("softmax axis out of range", lambda: B.softmax(BX[0, 0], axis=2), ValueError, r"softmax: axis must be in \[-2, 1\]"),
    ("softmax axis None", lambda: B.softmax(BX, axis=None), TypeError, r"softmax: axis must be an int"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# === image (N, H, CB, W, 4) ===


@given(st.data(), st.booleans())
def test_image_softmax(data, channel_only):
    x = tensor(data.draw, h=(1, 1) if channel_only else (1, 6), w=(1, 1) if channel_only else (1, 6))
    x *= np.float32(4.0)
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.softmax(xi, c)
    assert_close(layout.to_buffer(y, c), R.softmax(x), "softmax")
    assert padding_lanes_zero(y, c)
    ki.softmax(xi, c, out=xi)
    np.testing.assert_array_equal(xi, y)


def test_image_softmax_rejects_channel_count():
    with pytest.raises(ValueError, match="softmax: c=4 does not fit 2 channel blocks"):
        ki.softmax(IX, 4)


# === NaN and infinities, any axis and regions (both layouts) ===


def _softmax(lay, x, axis, **kw):
    if lay == "buffer":
        return B.softmax(x, axis=axis, **kw)
    return layout.to_buffer(ki.softmax(layout.to_image(x), x.shape[1], axis=axis, **kw), x.shape[1])


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 5), st.integers(1, 6)),
       seed=st.integers(0, 2**16))
def test_softmax_any_axis_with_nan_and_inf_matches_reference(lay, axis, shape, seed):
    """NaN or inf along an axis makes that softmax NaN; -inf alone gives 0 (opset-13 axis, both layouts)."""
    x = sprinkle(4 * rand(seed, *shape), seed, frac=0.05)
    assert_ieee(_softmax(lay, x, axis), R.softmax(x, axis=axis), f"softmax {lay} axis {axis}")


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1, 2, 3])
@given(data=st.data())
def test_softmax_regions_off_the_axis_are_bit_identical(lay, axis, data):
    shape = (2, data.draw(st.integers(1, 10)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)))
    x = 4 * rand(data.draw(st.integers(0, 2**16)), *shape)
    c, h = shape[1], shape[2]
    rows = [(0, h)] if axis == 2 else image_bands(data, h, 1, h, "row cuts")
    if axis == 1:
        chans = [None]
    elif lay == "buffer":
        cuts = sorted(data.draw(st.lists(st.integers(0, c), max_size=2)))
        chans = list(zip([0, *cuts], [*cuts, c]))
    else:
        chans = image_bands(data, 4 * -(-c // 4), 4, c, "channel cuts")
    if lay == "buffer":
        whole, fn = B.softmax(x, axis=axis), lambda **k: B.softmax(x, axis=axis, **k)
    else:
        xi = layout.to_image(x)
        whole, fn = ki.softmax(xi, c, axis=axis), lambda **k: ki.softmax(xi, c, axis=axis, **k)
    out = np.full(whole.shape, np.nan, np.float32)
    for r in rows:
        for ch in chans:
            fn(out=out, rows=None if axis == 2 else r, channels=ch)
    np.testing.assert_array_equal(out, whole)


SOFTMAX_REGION_BAD = [
    ("buffer", dict(axis=2, rows=(0, 1)), ValueError, "softmax: rows cannot split the softmax axis 2"),
    ("buffer", dict(axis=1, channels=(0, 1)), ValueError, "softmax: channels cannot split the softmax axis 1"),
    ("image", dict(axis=2, rows=(0, 1)), ValueError, "softmax: rows cannot split the softmax axis 2"),
    ("image", dict(axis=-3, channels=(0, 4)), ValueError, "softmax: channels cannot split the softmax axis 1"),
    ("image", dict(axis=4), ValueError, r"softmax: axis must be in \[-4, 3\]"),
    ("image", dict(axis="1"), TypeError, "softmax: axis must be an int"),
    ("image", dict(axis=3, channels=(0, 3)), ValueError, "softmax: channels ends must be multiples of 4"),
]


@pytest.mark.parametrize("lay,kw,exc,msg", SOFTMAX_REGION_BAD, ids=[c[3] for c in SOFTMAX_REGION_BAD])
def test_softmax_region_rejects(lay, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        if lay == "buffer":
            B.softmax(BX, **kw)
        else:
            ki.softmax(IX, 8, **kw)
