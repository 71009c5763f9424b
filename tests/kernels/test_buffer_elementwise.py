"""Buffer ReLU, Add and Concat against the float64 reference."""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from tests.tolerance import assert_close

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@given(shapes, st.integers(0, 2**16))
def test_relu(shape, seed):
    x = rand(seed, *shape)
    y = B.relu(x)
    np.testing.assert_array_equal(y, R.relu(x))
    assert y.dtype == np.float32 and y is not x
    out = np.full(shape, np.nan, np.float32)
    assert B.relu(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert B.relu(x, out=x) is x  # in place
    np.testing.assert_array_equal(x, y)


@given(shapes, st.booleans(), st.integers(0, 2**16))
def test_add(shape, relu, seed):
    a, b = rand(seed, *shape), rand(seed + 1, *shape)
    y = B.add(a, b, relu=relu)
    assert_close(y, R.add(a, b, relu=relu), "add")
    out = np.empty(shape, np.float32)
    assert B.add(a, b, relu=relu, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert B.add(a, b, relu=relu, out=a) is a  # in place into the first operand
    np.testing.assert_array_equal(a, y)


@given(st.lists(st.integers(1, 4), min_size=4, max_size=4), st.integers(0, 3),
       st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(0, 2**16))
def test_concat_any_axis(base, axis, sizes, seed):
    xs = []
    for i, k in enumerate(sizes):
        shape = list(base)
        shape[axis] = k
        xs.append(rand(seed + i, *shape))
    y = B.concat(xs, axis=axis)
    np.testing.assert_array_equal(y, R.concat(xs, axis=axis))
    np.testing.assert_array_equal(B.concat(xs, axis=axis - 4), y)  # negative axis
    out = np.empty(y.shape, np.float32)
    assert B.concat(tuple(xs), axis=axis, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_concat_default_axis_channels_and_2d():
    a, b = rand(0, 2, 3, 4, 5), rand(1, 2, 5, 4, 5)
    np.testing.assert_array_equal(B.concat([a, b]), np.concatenate([a, b], axis=1))
    p, q = rand(2, 3, 4), rand(3, 3, 2)
    np.testing.assert_array_equal(B.concat([p, q], axis=1), np.concatenate([p, q], axis=1))
    # Non-contiguous inputs are accepted.
    np.testing.assert_array_equal(B.concat([a[:, ::2], b], axis=1), np.concatenate([a[:, ::2], b], axis=1))


def test_concat_with_empty_input():
    a, e = rand(0, 1, 2, 3, 3), np.zeros((1, 0, 3, 3), np.float32)
    np.testing.assert_array_equal(B.concat([e, a, e]), a)
