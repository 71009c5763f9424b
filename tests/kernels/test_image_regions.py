"""Image ReLU, Clip, Add, Concat and GlobalAveragePool by output region.

A region ``rows=(r0, r1)`` x ``channels=(c0, c1)`` (concat: ``out_region``)
computes exactly that part of the output image: disjoint regions covering it,
in any order, give the whole result, cells outside the computed regions are
left untouched, and padding lanes of the last block come out exactly zero.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.tolerance import assert_close

OPS = ["relu", "clip", "clip_off_zero", "add", "add_relu", "concat", "global_avg_pool"]


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def case(data, op, channel_only=False):
    """(call(out, rows, channels) on images, float64 reference (NCHW), true output channels)."""
    n = data.draw(st.integers(1, 2), label="n")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    h, w = (1, 1) if channel_only else (data.draw(st.integers(1, 6), label="h"),
                                        data.draw(st.integers(1, 6), label="w"))
    if op == "concat":
        counts = data.draw(st.lists(st.integers(1, 10), min_size=1, max_size=4), label="counts")
        xs = [rand(seed + i, n, k, h, w) for i, k in enumerate(counts)]
        imgs = [layout.to_image(x) for x in xs]

        def call(out, rows=None, channels=None):
            return ki.concat(imgs, counts, out, rows=rows, out_region=channels)
        return call, R.concat(xs, axis=1), sum(counts)
    c = data.draw(st.integers(1, 40), label="c")
    x = rand(seed, n, c, h, w)
    xi = layout.to_image(x)
    if op == "relu":
        return (lambda out, **reg: ki.relu(xi, out=out, **reg)), R.relu(x), c
    if op in ("clip", "clip_off_zero"):
        if op == "clip":  # 0 inside [min, max], or min >= max with max 0 or not
            lo = data.draw(st.floats(-1.5, 0.0, width=32), label="min")
            hi = data.draw(st.floats(-0.5, 1.5, width=32), label="max")
        else:  # 0 outside [min, max]: padding lanes must be zeroed explicitly
            lo, hi = data.draw(st.sampled_from([(0.25, 1.0), (-1.0, -0.5), (0.5, 0.5), (2.0, 1.0)]),
                               label="bounds")
        give_c = data.draw(st.booleans(), label="give_c")
        extra = {"c": c} if give_c else {}

        def call(out, rows=None, channels=None):
            kw = dict(extra)
            if not give_c:
                channels = (0, c) if channels is None else channels  # its end names the count
            return ki.clip(xi, min=lo, max=hi, out=out, rows=rows, channels=channels, **kw)
        return call, R.clip(x, min=lo, max=hi), c
    if op in ("add", "add_relu"):
        y, relu = layout.to_image(rand(seed + 1, n, c, h, w)), op == "add_relu"
        return (lambda out, **reg: ki.add(xi, y, relu=relu, out=out, **reg)), \
            R.add(x, layout.to_buffer(y, c), relu=relu), c
    return (lambda out, **reg: ki.global_avg_pool(xi, out=out, **reg)), R.global_avg_pool(x), c


def bands(data, limit, step, end, label):
    """Disjoint (start, stop) bands covering [0, limit) with inner cuts at multiples of ``step``;
    the last stop is ``end``."""
    inner = data.draw(st.lists(st.integers(0, limit // step), max_size=3), label=label)
    edges = sorted({0, limit, *[p * step for p in inner]})
    return [(a, min(b, end)) for a, b in zip(edges[:-1], edges[1:])]


def padding_lanes_zero(img, c):
    return np.all(img[:, :, -1, :, c - 4 * (img.shape[2] - 1):] == 0.0)


@pytest.mark.parametrize("channel_only", [False, True], ids=["4d", "channel_only"])
@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_regions_in_any_order_give_the_whole(op, channel_only, data):
    call, ref, c = case(data, op, channel_only)
    whole = call(None)
    assert whole.dtype == np.float32 and whole.shape[2] == (c + 3) // 4
    assert_close(layout.to_buffer(whole, c), ref, op)
    assert padding_lanes_zero(whole, c)
    _, h, cb, _, _ = whole.shape
    rows = bands(data, h, 1, h, "row cuts")
    chans = bands(data, 4 * cb, 4, c, "channel cuts")
    parts = data.draw(st.permutations([(r, ch) for r in rows for ch in chans]), label="order")
    skip = data.draw(st.sampled_from([None, *range(len(parts))]), label="skip")
    out = np.full(whole.shape, np.nan, np.float32)
    expected = whole.copy()
    for i, (r, ch) in enumerate(parts):
        if i == skip:  # never computed: must stay as it was
            expected[:, r[0]:r[1], ch[0] // 4:(ch[1] + 3) // 4] = np.nan
            continue
        assert call(out, rows=r, channels=ch) is out
    assert call(out, rows=(h, h), channels=(0, c)) is out  # empty regions touch nothing
    assert call(out, rows=(0, h), channels=(0, 0)) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_new_output_is_zero_outside_the_region(op, data):
    call, _, c = case(data, op)
    whole = call(None)
    _, h, cb, _, _ = whole.shape
    r0 = data.draw(st.integers(0, h), label="r0")
    r1 = data.draw(st.integers(r0, h), label="r1")
    b0 = data.draw(st.integers(0, cb), label="b0")
    b1 = data.draw(st.integers(b0, cb), label="b1")
    c1 = c if b1 == cb > b0 else 4 * b1
    y = call(None, rows=(r0, r1), channels=(4 * b0, c1))
    expected = np.zeros_like(whole)
    expected[:, r0:r1, b0:b1] = whole[:, r0:r1, b0:b1]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("op", ["relu", "clip", "add"])
@pytest.mark.parametrize("dim", ["rows", "channels"])
@given(data=st.data())
def test_region_in_place(op, dim, data):
    """out is the input itself: the region gets the result, the rest keeps the input."""
    c = data.draw(st.integers(1, 40), label="c")
    shape = (data.draw(st.integers(1, 2)), c, data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    xi = layout.to_image(rand(data.draw(st.integers(0, 2**16)), *shape))
    fn = {"relu": lambda a, **k: ki.relu(a, **k),
          "clip": lambda a, **k: ki.clip(a, min=0.2, max=0.6, c=c, **k),
          "add": lambda a, **k: ki.add(a, xi, relu=True, **k)}[op]
    whole = fn(xi)
    if dim == "rows":
        lo = data.draw(st.integers(0, shape[2]), label="lo")
        hi = data.draw(st.integers(lo, shape[2]), label="hi")
        reg, sel = (lo, hi), (slice(None), slice(lo, hi))
    else:
        cb = xi.shape[2]
        lo = data.draw(st.integers(0, cb), label="lo")
        hi = data.draw(st.integers(lo, cb), label="hi")
        reg, sel = (4 * lo, c if hi == cb > lo else 4 * hi), (slice(None), slice(None), slice(lo, hi))
    buf = xi.copy()
    assert fn(buf, out=buf, **{dim: reg}) is buf
    expected = xi.copy()
    expected[sel] = whole[sel]
    np.testing.assert_array_equal(buf, expected)
    assert padding_lanes_zero(buf, c)


def test_clip_keeps_padding_lanes_zero():
    x = rand(3, 1, 5, 2, 3)  # 5 channels: lanes 1..3 of block 1 are padding
    xi = layout.to_image(x)
    for lo, hi in [(0.5, 2.0), (-2.0, -1.0), (3.0, 1.0)]:
        y = ki.clip(xi, min=lo, max=hi, c=5)
        assert padding_lanes_zero(y, 5)
        assert_close(layout.to_buffer(y, 5), R.clip(x, min=lo, max=hi), "clip")
        out = np.full(y.shape, np.nan, np.float32)
        ki.clip(xi, min=lo, max=hi, out=out, rows=(0, 1), channels=(4, 5))  # the end is the count
        np.testing.assert_array_equal(out[:, :1, 1], y[:, :1, 1])
        assert np.isnan(out[:, 1:]).all() and np.isnan(out[:, :, 0]).all()
        ki.clip(xi, min=lo, max=hi, out=out, channels=(0, 4))  # no padding lanes: no count needed
        np.testing.assert_array_equal(out[:, :, 0], y[:, :, 0])


def test_concat_region_spans_inputs():
    xs = [rand(i, 2, k, 3, 4) for i, k in enumerate((3, 5, 2))]
    imgs = [layout.to_image(x) for x in xs]
    y = ki.concat(imgs, [3, 5, 2])
    out = np.full(y.shape, np.nan, np.float32)
    ki.concat(imgs, [3, 5, 2], out, rows=(1, 3), out_region=(4, 10))  # the last two inputs and padding
    np.testing.assert_array_equal(out[:, 1:, 1:], y[:, 1:, 1:])
    assert np.isnan(out[:, :1]).all() and np.isnan(out[:, :, :1]).all()
    ki.concat(imgs, [3, 5, 2], out, out_region=(0, 12))  # the end may be the last block's end
    np.testing.assert_array_equal(out, y)


def test_global_avg_pool_rows_is_its_single_row():
    xi = layout.to_image(rand(0, 1, 6, 3, 3))
    out = np.full((1, 1, 2, 1, 4), np.nan, np.float32)
    ki.global_avg_pool(xi, out=out, rows=(0, 0))
    ki.global_avg_pool(xi, out=out, rows=(1, 1), channels=(0, 6))
    assert np.isnan(out).all()
    ki.global_avg_pool(xi, out=out, rows=(0, 1), channels=(4, 6))
    np.testing.assert_array_equal(out[:, :, 1], ki.global_avg_pool(xi)[:, :, 1])
    assert np.isnan(out[:, :, 0]).all()


X = np.zeros((1, 6, 2, 5, 4), np.float32)  # 8 channels (or 5..8), 6 rows
CALLS = {
    "relu": lambda **k: ki.relu(X, **k),
    "clip": lambda **k: ki.clip(X, min=-1.0, max=1.0, **k),
    "add": lambda **k: ki.add(X, X, **k),
    "global_avg_pool": lambda **k: ki.global_avg_pool(X, **k),
    "concat": lambda **k: ki.concat([X, X[:, :, :1].copy()], [7, 3], **k),
}
BAD_REGIONS = [
    ("relu", dict(rows=(0, 7)), ValueError, r"relu: rows must satisfy 0 <= start <= stop <= 6"),
    ("relu", dict(rows=(3, 2)), ValueError, "relu: rows must satisfy"),
    ("relu", dict(channels=(2, 8)), ValueError, "relu: channels ends must be multiples of 4"),
    ("relu", dict(channels=(0, 3)), ValueError, "relu: channels ends must be multiples of 4"),
    ("relu", dict(channels=(0, 12)), ValueError, r"relu: channels must satisfy 0 <= start <= stop <= 8"),
    ("relu", dict(channels=4), TypeError, "relu: channels must be a pair of ints"),
    ("clip", dict(rows=(-1, 2)), ValueError, "clip: rows must satisfy"),
    ("clip", dict(channels=(4, 6), c=7), ValueError, r"clip: channels ends must be multiples of 4 .*count 7"),
    ("clip", dict(c=9), ValueError, "clip: c=9 does not fit 2 channel blocks"),
    ("add", dict(rows=(0, 9)), ValueError, "add: rows must satisfy"),
    ("add", dict(channels=(1, 4)), ValueError, "add: channels ends must be multiples of 4"),
    ("global_avg_pool", dict(rows=(0, 2)), ValueError, r"global_avg_pool: rows must satisfy 0 <= start <= stop <= 1"),
    ("global_avg_pool", dict(channels=(0, 2)), ValueError, "global_avg_pool: channels ends must be multiples"),
    ("concat", dict(rows=(0, 7)), ValueError, "concat: rows must satisfy"),
    ("concat", dict(out_region=(2, 8)), ValueError, "concat: out_region ends must be multiples of 4"),
    ("concat", dict(out_region=(0, 9)), ValueError, "concat: out_region ends must be multiples of 4"),
    ("concat", dict(out_region=(0, 16)), ValueError, r"concat: out_region must satisfy 0 <= start <= stop <= 12"),
    ("concat", dict(out_region=[0]), TypeError, "concat: out_region must be a pair of ints"),
]


@pytest.mark.parametrize("op,kw,exc,msg", BAD_REGIONS, ids=[c[3] for c in BAD_REGIONS])
def test_bad_regions_raise(op, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        CALLS[op](**kw)


def test_clip_off_zero_needs_the_channel_count():
    msg = "clip: c .* is required when 0 is outside"
    with pytest.raises(TypeError, match=msg):
        ki.clip(X, min=0.5, max=1.0)
    with pytest.raises(TypeError, match=msg):
        ki.clip(X, min=-2.0, max=-1.0, rows=(0, 3))
    ki.clip(X, min=0.5, max=1.0, channels=(0, 4))  # the padded block is not in the region
    ki.clip(X, min=0.5, max=1.0, channels=(4, 7))  # the region's end is the count


def test_concat_out_must_not_overlap_an_input():
    big = np.zeros((1, 6, 3, 5, 4), np.float32)
    inside = big.reshape(-1)[:120].reshape(1, 6, 1, 5, 4)  # contiguous, shares big's memory
    with pytest.raises(ValueError, match=r"concat: out must not overlap xs\[1\]"):
        ki.concat([X, inside], [7, 3], big, out_region=(0, 4))
