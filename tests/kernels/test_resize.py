"""resize (buffer kernel set): the float64 reference, onnxruntime, bad input, NaN and inf."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from tests.kernels.helpers import BX, assert_ieee, rand, sprinkle
from tests.onnx_peer import resize_linear
from tests.tolerance import assert_close


nchw = st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 17), st.integers(1, 17))


sizes = st.tuples(st.integers(1, 19), st.integers(1, 19))


@pytest.mark.parametrize("mode", ["bilinear", "area"])
@given(shape=nchw, size=sizes, seed=st.integers(0, 2**16))
def test_resize_matches_reference(mode, shape, size, seed):
    x = rand(seed, *shape)
    y = B.resize(x, size, mode=mode)
    assert y.shape == shape[:2] + size
    assert_close(y, R.resize(x, size, mode=mode), mode)
    out = np.empty_like(y)
    assert B.resize(x, size, mode=mode, out=out) is out
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("mode", ["bilinear", "area"])
def test_resize_identity_and_constant(mode):
    x = rand(0, 1, 3, 6, 7)
    assert_close(B.resize(x, (6, 7), mode=mode), x, "identity")
    c = np.full((1, 2, 9, 5), 1.5, np.float32)
    for size in [(3, 2), (9, 5), (20, 11), (1, 1)]:
        assert_close(B.resize(c, size, mode=mode), np.full((1, 2, *size), 1.5), f"constant {size}")


def test_resize_area_photo_shrink():
    # A 4:3 photo to 224x224, non-integer factors both ways.
    x = np.random.default_rng(1).random((1, 3, 300, 400), dtype=np.float32)
    y = B.resize(x, (224, 224), mode="area")
    assert_close(y, R.resize(x, (224, 224), mode="area"), "area shrink")
    assert_close(y.mean(axis=(2, 3)), x.astype(np.float64).mean(axis=(2, 3)), "mean kept")


def test_resize_area_integer_factor_is_block_mean():
    x = rand(2, 2, 3, 8, 12)
    expect = x.astype(np.float64).reshape(2, 3, 4, 2, 4, 3).mean(axis=(3, 5))
    assert_close(B.resize(x, (4, 4), mode="area"), expect, "block mean")


@settings(max_examples=20)
@given(shape=nchw, size=sizes, seed=st.integers(0, 2**16))
def test_resize_bilinear_matches_onnxruntime(shape, size, seed):
    x = rand(seed, *shape)
    assert_close(B.resize(x, size), resize_linear(x, size), "Resize linear half_pixel")


def _resize_in_place():
    x = BX.copy()
    B.resize(x, (6, 7), out=x)


BUFFER_BAD = [
    ("resize x 3-D", lambda: B.resize(BX[0], (3, 3)), ValueError, r"resize: x must be 4-D"),
    ("resize x empty", lambda: B.resize(BX[:0], (3, 3)), ValueError, r"resize: x .*empty"),
    ("resize out wrong shape", lambda: B.resize(BX, (3, 3), out=np.zeros((2, 5, 3, 4), np.float32)), ValueError, r"resize: out must have shape \(2, 5, 3, 3\)"),
    ("resize out overlaps x", lambda: _resize_in_place(), ValueError, r"resize: out must not overlap x"),
    ("resize mode unknown", lambda: B.resize(BX, (3, 3), mode="nearest"), ValueError, r"resize: mode must be one of"),
    ("resize size zero", lambda: B.resize(BX, (0, 3)), ValueError, r"resize: size must be >= 1"),
    ("resize size triple", lambda: B.resize(BX, (3, 3, 3)), TypeError, r"resize: size must be an int or a pair"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# === NaN and infinities ===


@pytest.mark.parametrize("mode", ["bilinear", "area"])
@given(shape=nchw, size=sizes, seed=st.integers(0, 2**16))
def test_resize_nan_and_inf_match_reference(mode, shape, size, seed):
    """Each output reads only its taps, so NaN and inf stay local (a weight-0 tap still multiplies)."""
    x = sprinkle(rand(seed, *shape), seed, frac=0.05)
    assert_ieee(B.resize(x, size, mode=mode), R.resize(x, size, mode=mode), mode)
