"""Buffer ReLU, Clip, Add, Concat and GlobalAveragePool by output region.

A region ``rows=(r0, r1)`` / ``channels=(c0, c1)`` computes exactly that part
of the output: disjoint regions covering the output, in any order, give the
whole result, and cells outside the computed regions are left untouched.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import reference as R
from tests.tolerance import assert_close

OPS = ["relu", "clip", "add", "add_relu", "concat", "global_avg_pool"]


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def case(data, op, rank):
    """(kernel call taking out and a region, float64 reference of the whole output)."""
    n = data.draw(st.integers(1, 2), label="n")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    tail = (data.draw(st.integers(1, 6), label="h"), data.draw(st.integers(1, 6), label="w")) if rank == 4 else ()
    if op == "concat":
        axis = data.draw(st.sampled_from(range(rank)), label="axis")
        sizes = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=4), label="sizes")
        base = [n, data.draw(st.integers(1, 20), label="c"), *tail]
        xs = []
        for i, k in enumerate(sizes):
            base[axis] = k
            xs.append(rand(seed + i, *base))
        return (lambda out, **reg: B.concat(xs, axis=axis, out=out, **reg)), R.concat(xs, axis=axis)
    shape = (n, data.draw(st.integers(1, 20), label="c"), *tail)
    x = rand(seed, *shape)
    if op == "relu":
        return (lambda out, **reg: B.relu(x, out=out, **reg)), R.relu(x)
    if op == "clip":
        lo = data.draw(st.floats(-1.5, 0.5, width=32), label="min")
        hi = data.draw(st.floats(-0.5, 1.5, width=32), label="max")
        return (lambda out, **reg: B.clip(x, min=lo, max=hi, out=out, **reg)), R.clip(x, min=lo, max=hi)
    if op in ("add", "add_relu"):
        y, relu = rand(seed + 1, *shape), op == "add_relu"
        return (lambda out, **reg: B.add(x, y, relu=relu, out=out, **reg)), R.add(x, y, relu=relu)
    return (lambda out, **reg: B.global_avg_pool(x, out=out, **reg)), R.global_avg_pool(x)


def cut(a, dim, lo, hi):
    """The part of an output array inside a region along ``dim``."""
    return a[:, :, lo:hi] if dim == "rows" else a[:, lo:hi]


def bands(data, limit):
    """Disjoint (start, stop) bands covering [0, limit), possibly empty ones, in a drawn order."""
    inner = data.draw(st.lists(st.integers(0, limit), max_size=4), label="cuts")
    edges = sorted([0, limit, *inner])
    parts = list(zip(edges[:-1], edges[1:]))
    return data.draw(st.permutations(parts), label="order")


# 2-D (N, K) tensors have channels (columns) only; global_avg_pool takes 4-D input.
SPLITS = [(op, dim, 4) for op in OPS for dim in ("rows", "channels")] + [
    (op, "channels", 2) for op in OPS if op != "global_avg_pool"]


@pytest.mark.parametrize("op, dim, rank", SPLITS)
@given(data=st.data())
def test_regions_in_any_order_give_the_whole(op, dim, rank, data):
    call, ref = case(data, op, rank)
    whole = call(None)
    assert whole.dtype == np.float32
    assert_close(whole, ref, op)
    limit = whole.shape[2] if dim == "rows" else whole.shape[1]
    parts = bands(data, limit)
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
def test_row_and_channel_region_together(op, data):
    call, _ = case(data, op, 4)
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


@pytest.mark.parametrize("op", ["relu", "clip", "add"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_region_in_place(op, dim, data):
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


def test_concat_channel_region_spanning_inputs():
    xs = [rand(i, 2, k, 3, 4) for i, k in enumerate((3, 5, 2))]
    y = np.concatenate(xs, axis=1)
    out = np.full(y.shape, np.nan, np.float32)
    B.concat(xs, out=out, channels=(2, 9))  # ends inside the first and the last input
    np.testing.assert_array_equal(out[:, 2:9], y[:, 2:9])
    assert np.isnan(out[:, :2]).all() and np.isnan(out[:, 9:]).all()
    B.concat(xs, out=out, channels=(0, 2), rows=(1, 3))
    np.testing.assert_array_equal(out[:, :2, 1:], y[:, :2, 1:])
    assert np.isnan(out[:, :2, :1]).all()


def test_global_avg_pool_rows_is_its_single_row():
    x = rand(0, 1, 6, 3, 3)
    out = np.full((1, 6, 1, 1), np.nan, np.float32)
    B.global_avg_pool(x, out=out, rows=(0, 0))
    assert np.isnan(out).all()
    B.global_avg_pool(x, out=out, rows=(0, 1), channels=(1, 4))
    assert_close(out[:, 1:4], R.global_avg_pool(x)[:, 1:4], "global_avg_pool")
    assert np.isnan(out[:, :1]).all() and np.isnan(out[:, 4:]).all()


X4 = np.ones((2, 5, 6, 7), np.float32)
X2 = np.ones((2, 5), np.float32)
X3 = np.ones((2, 5, 6), np.float32)

BAD = [
    ("relu rows past end", lambda o: B.relu(X4, out=o, rows=(0, 7)), ValueError, r"relu: rows must satisfy"),
    ("relu rows reversed", lambda o: B.relu(X4, out=o, rows=(3, 2)), ValueError, r"relu: rows must satisfy"),
    ("relu channels int", lambda o: B.relu(X4, out=o, channels=2), TypeError, r"relu: channels must be a pair"),
    ("relu rows on 2-D", lambda o: B.relu(X2, rows=(0, 1)), ValueError, r"relu: rows needs a 4-D"),
    ("relu channels on 3-D", lambda o: B.relu(X3, channels=(0, 1)), ValueError, r"relu: channels needs a 2-D .* or 4-D"),
    ("relu 2-D channels past end", lambda o: B.relu(X2, channels=(0, 6)), ValueError, r"relu: channels must satisfy"),
    ("clip channels reversed", lambda o: B.clip(X4, min=0, out=o, channels=(4, 3)), ValueError, r"clip: channels must satisfy"),
    ("clip rows negative", lambda o: B.clip(X4, max=1, out=o, rows=(-1, 2)), ValueError, r"clip: rows must satisfy"),
    ("clip min nan", lambda o: B.clip(X4, min=float("nan"), out=o), ValueError, r"clip: min must not be NaN"),
    ("clip max string", lambda o: B.clip(X4, max="6", out=o), TypeError, r"clip: max must be a number"),
    ("clip min bool", lambda o: B.clip(X4, min=True, out=o), TypeError, r"clip: min must be a number"),
    ("clip x float64", lambda o: B.clip(X4.astype(np.float64), out=o), TypeError, r"clip: x .*float32"),
    ("clip out wrong shape", lambda o: B.clip(X4, out=np.zeros((2, 5), np.float32)), ValueError, r"clip: out must have shape"),
    ("add rows past end", lambda o: B.add(X4, X4, out=o, rows=(0, 9)), ValueError, r"add: rows must satisfy"),
    ("add channels floats", lambda o: B.add(X4, X4, out=o, channels=(0.0, 1.0)), TypeError, r"add: channels must be a pair"),
    ("add rows on 2-D", lambda o: B.add(X2, X2, rows=(0, 1)), ValueError, r"add: rows needs a 4-D"),
    ("concat channels past end", lambda o: B.concat([X4, X4], channels=(0, 11)), ValueError, r"concat: channels must satisfy 0 <= start <= stop <= 10"),
    ("concat rows past end", lambda o: B.concat([X4, X4], axis=2, rows=(0, 13)), ValueError, r"concat: rows must satisfy 0 <= start <= stop <= 12"),
    ("concat rows on 2-D", lambda o: B.concat([X2, X2], rows=(0, 1)), ValueError, r"concat: rows needs a 4-D"),
    ("concat channels on 3-D", lambda o: B.concat([X3, X3], channels=(0, 1)), ValueError, r"concat: channels needs"),
    ("global_avg_pool channels past end", lambda o: B.global_avg_pool(X4, channels=(0, 6)), ValueError, r"global_avg_pool: channels must satisfy"),
    ("global_avg_pool rows past end", lambda o: B.global_avg_pool(X4, rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_region_raises_and_leaves_out_untouched(call, exc, message):
    out = np.full(X4.shape, 3.0, np.float32)
    with pytest.raises(exc, match=message):
        call(out)
    assert (out == 3.0).all()


def test_one_compiled_signature_per_kernel():
    from coinfer.kernels import _pool
    from coinfer.kernels.buffer import elementwise
    for k in (elementwise._clamp, elementwise._add, elementwise._copy_block, *_pool._KERNELS.values()):
        assert len(k.signatures) <= 1, (k.py_func.__name__, k.signatures)
