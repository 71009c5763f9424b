"""Buffer pooling kernels against the float64 reference and onnxruntime, whole and by region."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from coinfer.kernels.buffer.pool import pool_output_size
from tests.kernels.test_reference import ort_run  # skips its caller without onnxruntime
from tests.tolerance import assert_close


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@st.composite
def pool_case(draw):
    """Shapes, kernel, stride, ONNX 4-padding (< kernel), ceil_mode: includes kernels larger
    than the unpadded input, strides larger than the kernel, 1x1 outputs and batch > 1."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 10))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 10))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 7))
    return (n, c, h, w), (kh, kw), (sh, sw), pads, draw(st.booleans())


def _run(kind, x, k, s, p, cm, cip, **region):
    if kind == "max":
        return B.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, **region)
    return B.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, **region)


def _ref(kind, x, k, s, p, cm, cip):
    if kind == "max":
        return R.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm)
    return R.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
@example(case=((1, 1, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False), cip=False, seed=0)  # 1x1 in/out
@example(case=((2, 5, 2, 2), (3, 3), (2, 2), (1, 1, 1, 1), True), cip=True, seed=1)  # kernel > input
@example(case=((1, 3, 7, 7), (2, 2), (4, 4), (0, 0, 0, 0), True), cip=False, seed=2)  # stride > kernel
@example(case=((1, 2, 5, 5), (2, 2), (2, 2), (1, 1, 1, 1), True), cip=True, seed=3)  # dropped window
def test_pool_matches_reference(kind, case, cip, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    assert_close(_run(kind, x, k, s, p, cm, cip), _ref(kind, x, k, s, p, cm, cip), kind)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16), data=st.data())
def test_pool_regions_compose_to_whole(kind, case, cip, seed, data):
    """Disjoint row or channel regions, in any order, into one out equal the whole output."""
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    whole = _run(kind, x, k, s, p, cm, cip)
    axis = data.draw(st.sampled_from(["rows", "channels"]))
    length = whole.shape[2] if axis == "rows" else whole.shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(0, length), max_size=3)))
    bounds = [0, *cuts, length]
    regions = list(zip(bounds[:-1], bounds[1:]))
    order = data.draw(st.permutations(regions))
    out = np.full(whole.shape, np.nan, np.float32)
    for r in order:
        res = _run(kind, x, k, s, p, cm, cip, out=out, **{axis: r})
        assert res is out
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(), seed=st.integers(0, 2**16), data=st.data())
def test_pool_region_leaves_other_cells_untouched(kind, case, seed, data):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    whole = _run(kind, x, k, s, p, cm, True)
    _, oc, oh, _ = whole.shape
    r0 = data.draw(st.integers(0, oh))
    r1 = data.draw(st.integers(r0, oh))
    c0 = data.draw(st.integers(0, oc))
    c1 = data.draw(st.integers(c0, oc))
    out = np.full(whole.shape, -7.0, np.float32)
    _run(kind, x, k, s, p, cm, True, out=out, rows=(r0, r1), channels=(c0, c1))
    inside = np.zeros(whole.shape, bool)
    inside[:, c0:c1, r0:r1] = True
    np.testing.assert_array_equal(out[inside], whole[inside])
    assert (out[~inside] == -7.0).all()
    # Without out, a region call returns zeros outside the region.
    fresh = _run(kind, x, k, s, p, cm, True, rows=(r0, r1), channels=(c0, c1))
    assert (fresh[~inside] == 0.0).all()


def test_pool_defaults_and_padding_forms():
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


@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 12), st.integers(1, 12), st.integers(0, 99))
def test_global_avg_pool(n, c, h, w, seed):
    x = rand(seed, n, c, h, w)
    y = B.global_avg_pool(x)
    assert y.shape == (n, c, 1, 1)
    assert_close(y, R.global_avg_pool(x), "global_avg_pool")
    out = np.empty((n, c, 1, 1), np.float32)
    assert B.global_avg_pool(x, out=out) is out


# onnxruntime cross-checks (one-node models, one thread).
@settings(max_examples=15)
@given(case=pool_case(), seed=st.integers(0, 2**16))
def test_max_pool_matches_onnxruntime(case, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    expect = ort_run("MaxPool", [x], kernel_shape=list(k), strides=list(s), pads=list(p), ceil_mode=int(cm))
    assert_close(B.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm), expect, "MaxPool")


@settings(max_examples=15)
@given(case=pool_case(), cip=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool_matches_onnxruntime(case, cip, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    expect = ort_run("AveragePool", [x], kernel_shape=list(k), strides=list(s), pads=list(p),
                     ceil_mode=int(cm), count_include_pad=int(cip))
    y = B.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)
    assert_close(y, expect, "AveragePool")


def test_global_avg_pool_matches_onnxruntime():
    x = rand(5, 2, 6, 7, 5)
    assert_close(B.global_avg_pool(x), ort_run("GlobalAveragePool", [x]), "GlobalAveragePool")
