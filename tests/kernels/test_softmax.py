"""softmax in both layouts: the float64 reference, onnxruntime, any axis, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import BX, IX, padding_lanes_zero, rand, shifted, tensor
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
