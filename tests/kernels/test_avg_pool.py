"""avg_pool2d in both layouts: the float64 reference, onnxruntime, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BX, LAYOUTS, POOL_OUT, assert_ieee, buffer_pool_case,
    check_buffer_pool_matches_reference, check_buffer_pool_region_untouched,
    check_buffer_pool_regions_compose, check_image_pool_rejects, check_raises, fortran,
    image_pool_cases, in_layout, padding_lanes_zero, rand, readonly, regions_tile,
    sprinkle)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (NCHW) ===


@pytest.mark.parametrize("kind", ["avg"])
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
@example(case=((1, 1, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False), cip=False, seed=0)  # 1x1 in/out
@example(case=((2, 5, 2, 2), (3, 3), (2, 2), (1, 1, 1, 1), True), cip=True, seed=1)  # kernel > input
@example(case=((1, 3, 7, 7), (2, 2), (4, 4), (0, 0, 0, 0), True), cip=False, seed=2)  # stride > kernel
@example(case=((1, 2, 5, 5), (2, 2), (2, 2), (1, 1, 1, 1), True), cip=True, seed=3)  # dropped window
def test_buffer_avg_pool_matches_reference(kind, case, cip, seed):
    check_buffer_pool_matches_reference(kind, case, cip, seed)


@pytest.mark.parametrize("kind", ["avg"])
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16), data=st.data())
def test_buffer_avg_pool_regions_compose_to_whole(kind, case, cip, seed, data):
    """Disjoint row or channel regions, in any order, into one out equal the whole output."""
    check_buffer_pool_regions_compose(kind, case, cip, seed, data)


@pytest.mark.parametrize("kind", ["avg"])
@given(case=buffer_pool_case(), seed=st.integers(0, 2**16), data=st.data())
def test_buffer_avg_pool_region_leaves_other_cells_untouched(kind, case, seed, data):
    check_buffer_pool_region_untouched(kind, case, seed, data)


@settings(max_examples=15)
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
def test_buffer_avg_pool_matches_onnxruntime(case, cip, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    expect = run_node("AveragePool", [x], kernel_shape=list(k), strides=list(s), pads=list(p),
                     ceil_mode=int(cm), count_include_pad=int(cip))
    y = B.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)
    assert_close(y, expect, "AveragePool")


BUFFER_BAD = [
    ("avg_pool2d x 3-D", lambda: B.avg_pool2d(BX[0], 2), ValueError, r"avg_pool2d: x must be 4-D"),
    ("avg_pool2d x empty", lambda: B.avg_pool2d(BX[:, :0], 2), ValueError, r"avg_pool2d: x .*empty"),
    ("avg_pool2d stride 0", lambda: B.avg_pool2d(BX, 2, stride=0), ValueError, r"avg_pool2d: stride must be >= 1"),
    ("avg_pool2d stride negative pair", lambda: B.avg_pool2d(BX, 2, stride=(1, -1)), ValueError, r"avg_pool2d: stride"),
    ("avg_pool2d padding >= kernel", lambda: B.avg_pool2d(BX, 2, padding=(0, 0, 2, 0)), ValueError, r"avg_pool2d: padding must be smaller than kernel"),
    ("avg_pool2d count_include_pad 2", lambda: B.avg_pool2d(BX, 2, count_include_pad=2), TypeError, r"avg_pool2d: count_include_pad must be a bool"),
    ("avg_pool2d rows negative", lambda: B.avg_pool2d(BX, 2, rows=(-1, 2)), ValueError, r"avg_pool2d: rows must satisfy"),
    ("avg_pool2d channels past end", lambda: B.avg_pool2d(BX, 2, channels=(0, 6)), ValueError, r"avg_pool2d: channels must satisfy"),
    ("avg_pool2d out non-contiguous", lambda: B.avg_pool2d(BX, 2, out=fortran(POOL_OUT)), ValueError, r"avg_pool2d: out must be C-contiguous"),
    ("avg_pool2d out read-only", lambda: B.avg_pool2d(BX, 2, out=readonly(POOL_OUT)), ValueError, r"avg_pool2d: out must be writeable"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    check_raises(call, exc, message)


# === image (N, H, CB, W, 4) ===


@given(image_pool_cases(), st.booleans(), st.data())
def test_image_avg_pool(case, include_pad, data):
    x, kw = case
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.avg_pool2d(xi, count_include_pad=include_pad, **kw)
    want = R.avg_pool2d(x, count_include_pad=include_pad, **kw)
    assert_close(layout.to_buffer(y, c), want, "avg_pool2d")
    assert padding_lanes_zero(y, c)
    got_b = B.avg_pool2d(x, count_include_pad=include_pad, **kw)
    assert_close(layout.to_buffer(y, c), got_b, "avg_pool2d vs buffer")
    regions_tile(lambda **r: ki.avg_pool2d(xi, count_include_pad=include_pad, **kw, **r), y, data, c)


IMAGE_BAD = [
    (ki.avg_pool2d, dict(kernel=2, count_include_pad="no"), TypeError, "avg_pool2d: count_include_pad must be"),
    (ki.avg_pool2d, dict(kernel=2, rows=(2, 1)), ValueError, "avg_pool2d: rows must satisfy"),
]


@pytest.mark.parametrize("fn,kw,exc,msg", IMAGE_BAD, ids=[c[3] for c in IMAGE_BAD])
def test_image_pool_rejects(fn, kw, exc, msg):
    check_image_pool_rejects(fn, kw, exc, msg)


# === NaN and infinities (both layouts, one rule with the reference) ===


@pytest.mark.parametrize("lay", LAYOUTS)
def test_avg_pool_nan_and_inf_windows(lay):
    x = np.array([[1, np.nan, np.inf, 1],
                  [5, 6, 2, 3],
                  [np.inf, -np.inf, -np.inf, 2],
                  [1, 1, 3, 4]], np.float32).reshape(1, 1, 4, 4)
    y = in_layout(lay, "avg_pool2d", x, 2)
    np.testing.assert_array_equal(y.ravel(), [np.nan, np.inf, np.nan, -np.inf])


@pytest.mark.parametrize("lay", LAYOUTS)
@given(case=buffer_pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool_nan_and_inf_match_reference(lay, case, cip, seed):
    shape, k, s, p, cm = case
    x = sprinkle(rand(seed, *shape), seed)
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)
    assert_ieee(in_layout(lay, "avg_pool2d", x, k, **kw), R.avg_pool2d(x, k, **kw), f"avg_pool2d {lay}")
