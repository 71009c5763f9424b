"""Buffer LRN and Softmax against the float64 reference and onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from tests.kernels.test_reference import ort_run  # skips its caller without onnxruntime
from tests.tolerance import assert_close


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)




lrn_params = st.fixed_dictionaries({
    "size": st.integers(1, 8),
    "alpha": st.sampled_from([1e-4, 1e-2, 0.3]),
    "beta": st.sampled_from([0.5, 0.75, 1.0]),
    "k": st.sampled_from([1.0, 2.0]),
})
nchw = st.tuples(st.integers(1, 3), st.integers(1, 11), st.integers(1, 6), st.integers(1, 7))


@given(nchw, lrn_params, st.integers(0, 2**16))
def test_lrn_matches_reference(shape, params, seed):
    x = 3 * rand(seed, *shape)
    assert_close(B.lrn(x, **params), R.lrn(x, **params), "lrn")


@given(nchw, lrn_params, st.integers(0, 2**16), st.data())
def test_lrn_regions_compose_to_whole(shape, params, seed, data):
    x = 3 * rand(seed, *shape)
    whole = B.lrn(x, **params)
    axis = data.draw(st.sampled_from(["rows", "channels"]))
    length = shape[2] if axis == "rows" else shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(0, length), max_size=3)))
    bounds = [0, *cuts, length]
    out = np.full(shape, np.nan, np.float32)
    for r in data.draw(st.permutations(list(zip(bounds[:-1], bounds[1:])))):
        assert B.lrn(x, **params, out=out, **{axis: r}) is out
    assert_close(out, whole, "lrn regions")


@given(nchw, st.integers(0, 2**16), st.data())
def test_lrn_region_leaves_other_cells_untouched(shape, seed, data):
    x = rand(seed, *shape)
    whole = B.lrn(x)
    r0 = data.draw(st.integers(0, shape[2]))
    r1 = data.draw(st.integers(r0, shape[2]))
    c0 = data.draw(st.integers(0, shape[1]))
    c1 = data.draw(st.integers(c0, shape[1]))
    out = np.full(shape, -7.0, np.float32)
    B.lrn(x, out=out, rows=(r0, r1), channels=(c0, c1))
    inside = np.zeros(shape, bool)
    inside[:, c0:c1, r0:r1] = True
    assert_close(out[inside], whole[inside], "lrn region")
    assert (out[~inside] == -7.0).all()
    fresh = B.lrn(x, rows=(r0, r1), channels=(c0, c1))
    assert (fresh[~inside] == 0.0).all()


def test_lrn_large_values_keep_running_sum_exact():
    # Big squares entering and leaving the window next to tiny ones.
    x = np.array([1e3, 1e-3, 1e3, 1e-3, 1e-3, 1e-3, 1e-3], np.float32).reshape(1, 7, 1, 1)
    assert_close(B.lrn(x, size=3, alpha=1.0, beta=0.75), R.lrn(x, size=3, alpha=1.0, beta=0.75), "lrn")


@settings(max_examples=15)
@given(nchw, lrn_params.filter(lambda p: p["size"] % 2 == 1), st.integers(0, 2**16))
def test_lrn_matches_onnxruntime(shape, params, seed):
    x = 3 * rand(seed, *shape)
    expect = ort_run("LRN", [x], size=params["size"], alpha=params["alpha"], beta=params["beta"],
                     bias=params["k"])
    assert_close(B.lrn(x, **params), expect, "LRN")


softmax_shapes = st.one_of(
    st.tuples(st.integers(1, 4), st.integers(1, 40)),
    st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 5), st.integers(1, 6)),
)


@given(softmax_shapes, st.integers(0, 2**16), st.sampled_from([1.0, 30.0]), st.data())
def test_softmax_matches_reference(shape, seed, scale, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = scale * rand(seed, *shape)
    y = B.softmax(x, axis=axis)
    assert_close(y, R.softmax(x, axis=axis), "softmax")
    assert_close(y.sum(axis=axis), np.ones(np.delete(shape, axis % len(shape))), "sum to one")


def test_softmax_default_axis_out_and_in_place():
    x = rand(1, 2, 1000)
    y = B.softmax(x)
    assert_close(y, R.softmax(x, axis=1), "softmax")
    out = np.empty_like(x)
    assert B.softmax(x, out=out) is out
    assert B.softmax(x, out=x) is x
    np.testing.assert_array_equal(x, out)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 1e4 - 1.0, -1e4]], np.float32)
    y = B.softmax(x)
    assert np.isfinite(y).all()
    assert_close(y, R.softmax(x), "softmax")


@settings(max_examples=15)
@given(softmax_shapes, st.integers(0, 2**16), st.data())
def test_softmax_matches_onnxruntime(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = 5 * rand(seed, *shape)
    assert_close(B.softmax(x, axis=axis), ort_run("Softmax", [x], axis=axis), "Softmax")
