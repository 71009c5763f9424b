"""Image pooling, elementwise (ReLU, Clip, Add, Concat), LRN and softmax against the float64 reference and the buffer kernels."""
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as ref
from tests.tolerance import assert_close

try:
    from coinfer.kernels import buffer as kb
except ImportError:  # the buffer kernel set is optional for these tests
    kb = None

SENTINEL = np.float32(7.25)


def _tensor(draw, n=(1, 2), c=(1, 40), h=(1, 9), w=(1, 9)):
    shape = (draw(st.integers(*n)), draw(st.integers(*c)), draw(st.integers(*h)), draw(st.integers(*w)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(shape, dtype=np.float32)


def _padding_lanes_zero(img, c):
    return np.all(img[:, :, -1, :, c - 4 * (img.shape[2] - 1):] == 0.0)


def _regions_tile(fn, whole, data, c, rows=True):
    """Disjoint row x channel regions of ``fn`` in any order equal ``whole``."""
    def cuts(hi, step):
        pts = data.draw(st.lists(st.integers(0, hi // step), max_size=3))
        pts = sorted({0, hi, *[p * step for p in pts]})
        return list(zip(pts[:-1], pts[1:]))

    row_cuts = cuts(whole.shape[1], 1) if rows else [None]
    chan_cuts = [(a, min(b, c)) for a, b in cuts(4 * whole.shape[2], 4)]
    regions = data.draw(st.permutations([(r, ch) for r in row_cuts for ch in chan_cuts]))
    out = np.full(whole.shape, SENTINEL, np.float32)
    for r, ch in regions:
        if rows:
            fn(out=out, rows=r, channels=ch)
        else:
            fn(out=out, channels=ch)
    np.testing.assert_array_equal(out, whole)


@st.composite
def pool_cases(draw):
    x = _tensor(draw)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([None, 1, 2, 3, (2, 1)]))
    p = draw(st.tuples(st.integers(0, kh - 1), st.integers(0, kw - 1),
                       st.integers(0, kh - 1), st.integers(0, kw - 1)))
    ceil_mode = draw(st.booleans())
    assume(x.shape[2] + p[0] + p[2] >= kh and x.shape[3] + p[1] + p[3] >= kw)
    return x, dict(kernel=(kh, kw), stride=stride, padding=p, ceil_mode=ceil_mode)


@given(pool_cases(), st.data())
def test_max_pool(case, data):
    x, kw = case
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.max_pool2d(xi, **kw)
    assert_close(layout.to_buffer(y, c), ref.max_pool2d(x, **kw), "max_pool2d")
    assert _padding_lanes_zero(y, c)
    if kb is not None:
        assert_close(layout.to_buffer(y, c), kb.max_pool2d(x, **kw), "max_pool2d vs buffer")
    _regions_tile(lambda **r: ki.max_pool2d(xi, **kw, **r), y, data, c)


@given(pool_cases(), st.booleans(), st.data())
def test_avg_pool(case, include_pad, data):
    x, kw = case
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.avg_pool2d(xi, count_include_pad=include_pad, **kw)
    want = ref.avg_pool2d(x, count_include_pad=include_pad, **kw)
    assert_close(layout.to_buffer(y, c), want, "avg_pool2d")
    assert _padding_lanes_zero(y, c)
    if kb is not None:
        got_b = kb.avg_pool2d(x, count_include_pad=include_pad, **kw)
        assert_close(layout.to_buffer(y, c), got_b, "avg_pool2d vs buffer")
    _regions_tile(lambda **r: ki.avg_pool2d(xi, count_include_pad=include_pad, **kw, **r), y, data, c)


@given(st.data())
def test_global_avg_pool(data):
    x = _tensor(data.draw, h=(1, 12), w=(1, 12))
    y = ki.global_avg_pool(layout.to_image(x))
    assert y.shape == (x.shape[0], 1, (x.shape[1] + 3) // 4, 1, 4)
    assert_close(layout.to_buffer(y, x.shape[1]), ref.global_avg_pool(x), "global_avg_pool")
    assert _padding_lanes_zero(y, x.shape[1])
    if kb is not None:
        assert_close(layout.to_buffer(y, x.shape[1]), kb.global_avg_pool(x), "global_avg_pool vs buffer")


@given(st.data())
def test_relu_and_add(data):
    a = _tensor(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    b = rng.standard_normal(a.shape, dtype=np.float32)
    c = a.shape[1]
    ai, bi = layout.to_image(a), layout.to_image(b)
    assert_close(layout.to_buffer(ki.relu(ai), c), ref.relu(a), "relu")
    for fuse in (False, True):
        assert_close(layout.to_buffer(ki.add(ai, bi, relu=fuse), c), ref.add(a, b, relu=fuse), "add")
    in_place = ai.copy()
    ki.add(in_place, bi, relu=True, out=in_place)
    assert_close(layout.to_buffer(in_place, c), ref.add(a, b, relu=True), "add in place")
    if kb is not None:
        assert_close(layout.to_buffer(ki.relu(ai), c), kb.relu(a), "relu vs buffer")
        assert_close(layout.to_buffer(ki.add(ai, bi, relu=True), c), kb.add(a, b, relu=True), "add vs buffer")
    ki.relu(ai, out=ai)
    assert_close(layout.to_buffer(ai, c), ref.relu(a), "relu in place")
    assert _padding_lanes_zero(ai, c)


BOUNDS = st.sampled_from([(0.0, 6.0), (-0.5, 0.5), (0.25, 1.0), (-1.0, -0.25), (0.5, 0.5), (1.0, -1.0),
                          (-np.inf, 0.3), (-0.3, np.inf), (-np.inf, np.inf), (2.0, np.inf), (-np.inf, -2.0)])


@given(st.data(), BOUNDS, st.booleans())
def test_clip(data, bounds, channel_only):
    x = _tensor(data.draw, h=(1, 1) if channel_only else (1, 9), w=(1, 1) if channel_only else (1, 9))
    x *= np.float32(3.0)
    lo, hi = bounds
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.clip(xi, min=lo, max=hi, c=c)
    want = ref.clip(x, min=lo, max=hi)
    assert_close(layout.to_buffer(y, c), want, "clip")
    assert _padding_lanes_zero(y, c)
    if kb is not None:
        np.testing.assert_array_equal(layout.to_buffer(y, c), kb.clip(x, min=lo, max=hi))
    ki.clip(xi, min=lo, max=hi, c=c, out=xi)
    np.testing.assert_array_equal(xi, y)


def test_relu6_needs_no_channel_count():
    x = np.linspace(-9.0, 9.0, 5 * 2 * 3, dtype=np.float32).reshape(1, 5, 2, 3)
    y = ki.clip(layout.to_image(x), min=0.0, max=6.0)
    np.testing.assert_array_equal(layout.to_buffer(y, 5), np.clip(x, 0.0, 6.0))
    assert _padding_lanes_zero(y, 5)


@given(st.lists(st.integers(1, 10), min_size=1, max_size=4), st.integers(1, 2), st.integers(1, 5),
       st.integers(1, 5), st.integers(0, 2**16))
def test_concat(counts, n, h, w, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n, c, h, w), dtype=np.float32) for c in counts]
    y = ki.concat([layout.to_image(x) for x in xs], counts)
    total = sum(counts)
    assert y.shape == (n, h, (total + 3) // 4, w, 4)
    np.testing.assert_array_equal(layout.to_buffer(y, total), np.concatenate(xs, axis=1))
    assert _padding_lanes_zero(y, total)
    if kb is not None:
        np.testing.assert_array_equal(layout.to_buffer(y, total), kb.concat(xs, axis=1))


@given(st.data(), st.integers(1, 7), st.sampled_from([(1e-4, 0.75, 1.0), (0.5, 0.6, 2.0), (1.0, 1.0, 0.5)]))
def test_lrn(data, size, params):
    x = _tensor(data.draw)
    alpha, beta, k = params
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.lrn(xi, c, size=size, alpha=alpha, beta=beta, k=k)
    assert_close(layout.to_buffer(y, c), ref.lrn(x, size=size, alpha=alpha, beta=beta, k=k), "lrn")
    assert _padding_lanes_zero(y, c)
    if kb is not None:
        got_b = kb.lrn(x, size=size, alpha=alpha, beta=beta, k=k)
        assert_close(layout.to_buffer(y, c), got_b, "lrn vs buffer")
    _regions_tile(lambda **r: ki.lrn(xi, c, size=size, alpha=alpha, beta=beta, k=k, **r), y, data, c)


@given(st.data(), st.booleans())
def test_softmax(data, channel_only):
    x = _tensor(data.draw, h=(1, 1) if channel_only else (1, 6), w=(1, 1) if channel_only else (1, 6))
    x *= np.float32(4.0)
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.softmax(xi, c)
    assert_close(layout.to_buffer(y, c), ref.softmax(x), "softmax")
    assert _padding_lanes_zero(y, c)
    ki.softmax(xi, c, out=xi)
    np.testing.assert_array_equal(xi, y)
