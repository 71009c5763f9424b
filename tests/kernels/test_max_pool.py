"""max_pool2d in both layouts: the float64 reference, onnxruntime, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from coinfer.kernels.buffer.pool import pool_output_size
from tests.kernels.helpers import (BX, LAYOUTS, POOL_OUT, assert_ieee, buffer_pool_case,
    check_buffer_pool_matches_reference, check_buffer_pool_region_untouched,
    check_buffer_pool_regions_compose, check_image_pool_rejects, check_raises,
    image_pool_cases, in_layout, padding_lanes_zero, rand, regions_tile, sprinkle)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (NCHW) ===


@pytest.mark.parametrize("kind", ["max"])
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
@example(case=((1, 1, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False), cip=False, seed=0)  # 1x1 in/out
@example(case=((2, 5, 2, 2), (3, 3), (2, 2), (1, 1, 1, 1), True), cip=True, seed=1)  # kernel > input
@example(case=((1, 3, 7, 7), (2, 2), (4, 4), (0, 0, 0, 0), True), cip=False, seed=2)  # stride > kernel
@example(case=((1, 2, 5, 5), (2, 2), (2, 2), (1, 1, 1, 1), True), cip=True, seed=3)  # dropped window
def test_buffer_max_pool_matches_reference(kind, case, cip, seed):
    check_buffer_pool_matches_reference(kind, case, cip, seed)


@pytest.mark.parametrize("kind", ["max"])
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16), data=st.data())
def test_buffer_max_pool_regions_compose_to_whole(kind, case, cip, seed, data):
    """Disjoint row or channel regions, in any order, into one out equal the whole output."""
    check_buffer_pool_regions_compose(kind, case, cip, seed, data)


@pytest.mark.parametrize("kind", ["max"])
@given(case=buffer_pool_case(), seed=st.integers(0, 2**16), data=st.data())
def test_buffer_max_pool_region_leaves_other_cells_untouched(kind, case, seed, data):
    check_buffer_pool_region_untouched(kind, case, seed, data)


def test_buffer_pool_defaults_and_padding_forms():
    x = rand(0, 2, 3, 8, 9)
    a = B.max_pool2d(x, 2)
    assert_close(a, R.max_pool2d(x, 2, stride=2), "stride defaults to kernel")
    y1 = B.avg_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(y1, B.avg_pool2d(x, (3, 3), stride=(1, 1), padding=(1, 1)))
    np.testing.assert_array_equal(y1, B.avg_pool2d(x, 3, stride=1, padding=(1, 1, 1, 1)))
    # Non-contiguous input is accepted (copied).
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(B.max_pool2d(xt, 2), a)


def test_pool_output_size_rule():
    assert pool_output_size(5, 2, 2, 1, 1, True) == 3  # 4th window would start in end padding
    assert pool_output_size(5, 2, 2, 1, 1, False) == 3
    assert pool_output_size(4, 3, 2, 1, 1, True) == 3
    assert pool_output_size(4, 3, 2, 1, 1, False) == 2
    assert pool_output_size(55, 3, 2, 0, 0, True) == 27
    assert pool_output_size(2, 3, 1, 0, 0, False) == 0


@settings(max_examples=15)
@given(case=buffer_pool_case(), seed=st.integers(0, 2**16))
def test_buffer_max_pool_matches_onnxruntime(case, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    expect = run_node("MaxPool", [x], kernel_shape=list(k), strides=list(s), pads=list(p), ceil_mode=int(cm))
    assert_close(B.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm), expect, "MaxPool")


def _pool_into_input():
    x = BX.copy()
    B.max_pool2d(x, 2, out=x.reshape(-1)[:np.prod(POOL_OUT)].reshape(POOL_OUT))


BUFFER_BAD = [
    ("max_pool2d x list", lambda: B.max_pool2d(BX.tolist(), 2), TypeError, r"max_pool2d: x .*ndarray"),
    ("max_pool2d x float64", lambda: B.max_pool2d(BX.astype(np.float64), 2), TypeError, r"max_pool2d: x .*float32.*float64"),
    ("max_pool2d kernel 0", lambda: B.max_pool2d(BX, 0), ValueError, r"max_pool2d: kernel must be >= 1"),
    ("max_pool2d kernel float", lambda: B.max_pool2d(BX, 2.0), TypeError, r"max_pool2d: kernel must be an int"),
    ("max_pool2d kernel triple", lambda: B.max_pool2d(BX, (2, 2, 2)), TypeError, r"max_pool2d: kernel"),
    ("max_pool2d padding negative", lambda: B.max_pool2d(BX, 3, padding=-1), ValueError, r"max_pool2d: padding must be non-negative"),
    ("max_pool2d padding 3-tuple", lambda: B.max_pool2d(BX, 3, padding=(1, 1, 1)), TypeError, r"max_pool2d: padding must be"),
    ("max_pool2d kernel larger than padded input", lambda: B.max_pool2d(BX, (9, 2)), ValueError, r"max_pool2d: kernel .* does not fit"),
    ("max_pool2d ceil_mode string", lambda: B.max_pool2d(BX, 2, ceil_mode="yes"), TypeError, r"max_pool2d: ceil_mode must be a bool"),
    ("max_pool2d rows past end", lambda: B.max_pool2d(BX, 2, rows=(0, 4)), ValueError, r"max_pool2d: rows must satisfy"),
    ("max_pool2d rows reversed", lambda: B.max_pool2d(BX, 2, rows=(2, 1)), ValueError, r"max_pool2d: rows must satisfy"),
    ("max_pool2d channels int", lambda: B.max_pool2d(BX, 2, channels=3), TypeError, r"max_pool2d: channels must be a pair"),
    ("max_pool2d rows floats", lambda: B.max_pool2d(BX, 2, rows=(0.0, 1.0)), TypeError, r"max_pool2d: rows must be a pair"),
    ("max_pool2d out wrong shape", lambda: B.max_pool2d(BX, 2, out=np.zeros((2, 5, 3, 4), np.float32)), ValueError, r"max_pool2d: out must have shape \(2, 5, 3, 3\)"),
    ("max_pool2d out float64", lambda: B.max_pool2d(BX, 2, out=np.zeros(POOL_OUT)), TypeError, r"max_pool2d: out must have dtype float32"),
    ("max_pool2d out list", lambda: B.max_pool2d(BX, 2, out=[0.0]), TypeError, r"max_pool2d: out must be a numpy.ndarray"),
    ("max_pool2d out overlaps x", lambda: _pool_into_input(), ValueError, r"max_pool2d: out must not overlap x"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


def test_buffer_bad_input_leaves_out_untouched():
    out = np.full((2, 5, 3, 3), 3.0, np.float32)
    with pytest.raises(ValueError):
        B.max_pool2d(BX, 2, out=out, rows=(0, 9))
    assert (out == 3.0).all()


# === image (N, H, CB, W, 4) ===


@given(image_pool_cases(), st.data())
def test_image_max_pool(case, data):
    x, kw = case
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.max_pool2d(xi, **kw)
    assert_close(layout.to_buffer(y, c), R.max_pool2d(x, **kw), "max_pool2d")
    assert padding_lanes_zero(y, c)
    assert_close(layout.to_buffer(y, c), B.max_pool2d(x, **kw), "max_pool2d vs buffer")
    regions_tile(lambda **r: ki.max_pool2d(xi, **kw, **r), y, data, c)


IMAGE_BAD = [
    (ki.max_pool2d, dict(kernel=0), ValueError, "max_pool2d: kernel must be >= 1"),
    (ki.max_pool2d, dict(kernel=2, padding=2), ValueError, "max_pool2d: padding must be smaller than kernel"),
    (ki.max_pool2d, dict(kernel=7), ValueError, "max_pool2d: kernel .* does not fit input"),
    (ki.max_pool2d, dict(kernel=2, ceil_mode=2), TypeError, "max_pool2d: ceil_mode must be a bool"),
    (ki.max_pool2d, dict(kernel=2, channels=(0, 3)), ValueError, "max_pool2d: channels ends must be multiples"),
]


@pytest.mark.parametrize("fn,kw,exc,msg", IMAGE_BAD, ids=[c[3] for c in IMAGE_BAD])
def test_image_pool_rejects(fn, kw, exc, msg):
    check_image_pool_rejects(fn, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===


@pytest.mark.parametrize("lay", LAYOUTS)
def test_max_pool_nan_and_inf_windows(lay):
    """{1, NaN, 5, 6} gives NaN; an all-NaN window NaN; all -inf -inf (padding is -inf, never -FLT_MAX)."""
    x = np.array([[1, np.nan, -np.inf, -np.inf],
                  [5, 6, -np.inf, -np.inf],
                  [np.nan, np.nan, np.inf, 2],
                  [np.nan, np.nan, 3, -np.inf]], np.float32).reshape(1, 1, 4, 4)
    y = in_layout(lay, "max_pool2d", x, 2)
    np.testing.assert_array_equal(y.ravel(), [np.nan, -np.inf, np.nan, np.inf])
    # all -inf with padding: the window's input cells win over the padding
    z = in_layout(lay, "max_pool2d", np.full((1, 3, 5, 5), -np.inf, np.float32), 3, stride=2, padding=1)
    assert np.isneginf(z).all()
    np.testing.assert_array_equal(y, R.max_pool2d(x, 2))


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=buffer_pool_case(), seed=st.integers(0, 2**16))
def test_max_pool_nan_and_inf_match_reference(lay, case, seed):
    shape, k, s, p, cm = case
    x = sprinkle(rand(seed, *shape), seed)
    kw = dict(stride=s, padding=p, ceil_mode=cm)
    assert_ieee(in_layout(lay, "max_pool2d", x, k, **kw), R.max_pool2d(x, k, **kw), f"max_pool2d {lay}")


def test_max_pool_nan_differs_from_onnxruntime_as_documented():
    """onnxruntime's MaxPool skips NaN (6 for {1, NaN, 5, 6}); coinfer propagates it (see kernels/_pool.py)."""
    x = np.array([1, np.nan, 5, 6], np.float32).reshape(1, 1, 2, 2)
    assert run_node("MaxPool", [x], kernel_shape=[2, 2]).item() == 6.0
    assert np.isnan(B.max_pool2d(x, 2)).all()
