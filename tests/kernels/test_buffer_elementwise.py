"""Buffer ReLU, Clip, Add, Concat and GlobalAveragePool on whole tensors, against
the float64 reference and onnxruntime.  Regions: test_buffer_regions.py."""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from tests.onnx_peer import run_node
from tests.tolerance import assert_close

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
# Clip bounds: None leaves the bound out (onnxruntime: empty input name).
bounds = st.one_of(st.none(), st.floats(-2.0, 2.0, width=32))


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


def _clip_args(lo, hi):
    kw = {}
    if lo is not None:
        kw["min"] = lo
    if hi is not None:
        kw["max"] = hi
    return kw


@given(shapes, bounds, bounds, st.integers(0, 2**16))
def test_clip(shape, lo, hi, seed):
    x = rand(seed, *shape)
    kw = _clip_args(lo, hi)
    y = B.clip(x, **kw)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, R.clip(x, **kw).astype(np.float32))
    assert B.clip(x, **kw, out=x) is x  # in place
    np.testing.assert_array_equal(x, y)


def test_clip_relu6_infinite_bounds_and_min_above_max():
    x = np.array([-np.inf, -7.0, -0.5, 0.0, 3.0, 6.0, 9.0, np.inf], np.float32)
    np.testing.assert_array_equal(B.clip(x, min=0, max=6), [0, 0, 0, 0, 3, 6, 6, 6])
    np.testing.assert_array_equal(B.clip(x), x)  # no bounds: a copy, infinities kept
    np.testing.assert_array_equal(B.clip(x, min=-np.inf, max=np.inf), x)
    np.testing.assert_array_equal(B.clip(x, min=2.0, max=1.0), np.ones(8, np.float32))  # ONNX: all max
    np.testing.assert_array_equal(B.clip(x, min=np.inf), np.full(8, np.inf, np.float32))
    np.testing.assert_array_equal(B.clip(x, max=-np.inf), np.full(8, -np.inf, np.float32))
    np.testing.assert_array_equal(B.clip(x, min=1.5, max=1.5), np.full(8, 1.5, np.float32))
    # Bounds round to float32, as ONNX's float tensor bounds are.
    top = np.finfo(np.float32).max
    np.testing.assert_array_equal(B.clip(x, min=-3.40282347e38, max=3.40282347e38), np.clip(x, -top, top))
    np.testing.assert_array_equal(B.clip(x, min=1e39), np.full(8, np.inf, np.float32))
    np.testing.assert_array_equal(B.relu(x), np.maximum(x, 0))


def _ort_clip(x, lo, hi):
    """One onnxruntime Clip node (opset 13), bounds as constant inputs, one thread."""
    consts = {"min": None if lo is None else np.float32(lo), "max": None if hi is None else np.float32(hi)}
    return run_node("Clip", [x], consts=consts, opset=13)


@given(shapes, bounds, bounds, st.integers(0, 2**16))
def test_clip_matches_onnxruntime(shape, lo, hi, seed):
    x = rand(seed, *shape) * 3
    assert_close(B.clip(x, **_clip_args(lo, hi)), _ort_clip(x, lo, hi), "clip vs onnxruntime")


def test_relu6_matches_onnxruntime():
    x = rand(0, 2, 20, 5, 5) * 8
    np.testing.assert_array_equal(B.clip(x, min=0.0, max=6.0), _ort_clip(x, 0.0, 6.0))


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
    a2 = rand(seed, *shape)
    assert B.add(a2, b, relu=relu, out=b) is b  # and into the second
    np.testing.assert_array_equal(b, y)


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


@given(st.integers(1, 2), st.integers(1, 20), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**16))
def test_global_avg_pool(n, c, h, w, seed):
    x = rand(seed, n, c, h, w)
    y = B.global_avg_pool(x)
    assert y.shape == (n, c, 1, 1)
    assert_close(y, R.global_avg_pool(x), "global_avg_pool")


def test_package_attributes_are_the_kernels():
    """``coinfer.kernels.buffer.<name>`` is the function, even where a submodule shares the name."""
    for name in B.__all__:
        f = getattr(B, name)
        assert callable(f) and not isinstance(f, type(sys)), name
    for name in ("lrn", "softmax", "resize"):
        mod = importlib.import_module(f"coinfer.kernels.buffer.{name}")
        assert getattr(B, name) is getattr(mod, name)
    assert "clip" in B.__all__ and B.clip is importlib.import_module("coinfer.kernels.buffer.elementwise").clip
