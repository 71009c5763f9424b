"""Shared pieces of the per-op kernel tests: random tensors, case generators for
pools and regions, and the bad-input fixtures (moved from the layout-named files)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.tolerance import assert_close

SENTINEL = np.float32(7.25)


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- buffer pools

@st.composite
def buffer_pool_case(draw):
    """Shapes, kernel, stride, ONNX 4-padding (< kernel), ceil_mode: includes kernels larger
    than the unpadded input, strides larger than the kernel, 1x1 outputs and batch > 1."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 10))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 10))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 7))
    return (n, c, h, w), (kh, kw), (sh, sw), pads, draw(st.booleans())


def run_pool(kind, x, k, s, p, cm, cip, **region):
    if kind == "max":
        return B.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, **region)
    return B.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, **region)


def ref_pool(kind, x, k, s, p, cm, cip):
    if kind == "max":
        return R.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm)
    return R.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)


# --- buffer regions (ReLU, Clip, Add, Concat, GlobalAveragePool)

def buffer_region_case(data, op, rank):
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


def buffer_bands(data, limit):
    """Disjoint (start, stop) bands covering [0, limit), possibly empty ones, in a drawn order."""
    inner = data.draw(st.lists(st.integers(0, limit), max_size=4), label="cuts")
    edges = sorted([0, limit, *inner])
    parts = list(zip(edges[:-1], edges[1:]))
    return data.draw(st.permutations(parts), label="order")


BUFFER_REGION_OPS = ["relu", "clip", "add", "add_relu", "concat", "global_avg_pool"]


# 2-D (N, K) tensors have channels (columns) only; global_avg_pool takes 4-D input.
BUFFER_SPLITS = [(op, dim, 4) for op in BUFFER_REGION_OPS for dim in ("rows", "channels")] + [
    (op, "channels", 2) for op in BUFFER_REGION_OPS if op != "global_avg_pool"]


# --- image regions

def image_region_case(data, op, channel_only=False):
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


def image_bands(data, limit, step, end, label):
    """Disjoint (start, stop) bands covering [0, limit) with inner cuts at multiples of ``step``;
    the last stop is ``end``."""
    inner = data.draw(st.lists(st.integers(0, limit // step), max_size=3), label=label)
    edges = sorted({0, limit, *[p * step for p in inner]})
    return [(a, min(b, end)) for a, b in zip(edges[:-1], edges[1:])]


def padding_lanes_zero(img, c):
    return np.all(img[:, :, -1, :, c - 4 * (img.shape[2] - 1):] == 0.0)


IMAGE_REGION_OPS = ["relu", "clip", "clip_off_zero", "add", "add_relu", "concat", "global_avg_pool"]


# --- image ops

def tensor(draw, n=(1, 2), c=(1, 40), h=(1, 9), w=(1, 9)):
    shape = (draw(st.integers(*n)), draw(st.integers(*c)), draw(st.integers(*h)), draw(st.integers(*w)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(shape, dtype=np.float32)


def regions_tile(fn, whole, data, c, rows=True):
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
def image_pool_cases(draw):
    x = tensor(draw)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([None, 1, 2, 3, (2, 1)]))
    p = draw(st.tuples(st.integers(0, kh - 1), st.integers(0, kw - 1),
                       st.integers(0, kh - 1), st.integers(0, kw - 1)))
    ceil_mode = draw(st.booleans())
    assume(x.shape[2] + p[0] + p[2] >= kh and x.shape[3] + p[1] + p[3] >= kw)
    return x, dict(kernel=(kh, kw), stride=stride, padding=p, ceil_mode=ceil_mode)


# --- bad input (buffer)

BX = np.ones((2, 5, 6, 7), np.float32)
X4 = BX
X2 = np.ones((2, 5), np.float32)
X3 = np.ones((2, 5, 6), np.float32)


def readonly(shape):
    a = np.zeros(shape, np.float32)
    a.flags.writeable = False
    return a


def fortran(shape):
    return np.asfortranarray(np.zeros(shape, np.float32))


POOL_OUT = (2, 5, 3, 3)  # max_pool2d(BX, 2)


def shifted(op):
    """Call ``op`` with out one element past its input inside the same buffer."""
    buf = np.zeros(2 * BX.size + 1, np.float32)
    x, out = buf[:BX.size].reshape(BX.shape), buf[1:BX.size + 1].reshape(BX.shape)
    if op == "relu":
        B.relu(x, out=out)
    elif op == "add":
        B.add(BX, x, out=out)
    elif op == "softmax":
        B.softmax(x, out=out)
    else:
        B.concat([x[:1], x[1:]], axis=0, out=out)


# --- bad input (image)

def img(n=1, h=6, cb=2, w=6):
    return np.zeros((n, h, cb, w, 4), np.float32)

IX = img()  # 8 channels, 6x6


IRX = np.zeros((1, 6, 2, 5, 4), np.float32)  # 8 channels (or 5..8), 6 rows
IMAGE_CALLS = {
    "relu": lambda **k: ki.relu(IRX, **k),
    "clip": lambda **k: ki.clip(IRX, min=-1.0, max=1.0, **k),
    "add": lambda **k: ki.add(IRX, IRX, **k),
    "global_avg_pool": lambda **k: ki.global_avg_pool(IRX, **k),
    "concat": lambda **k: ki.concat([IRX, IRX[:, :, :1].copy()], [7, 3], **k),
}


# --- NaN and infinities


def sprinkle(x, seed, frac=0.15, specials=(np.nan, np.inf, -np.inf)):
    """A copy of ``x`` with a fraction of its cells set to NaN, +inf or -inf."""
    rng = np.random.default_rng(seed)
    y = x.copy()
    mask = rng.random(x.shape) < frac
    y[mask] = rng.choice(np.array(specials, np.float32), size=int(mask.sum()))
    return y


def assert_ieee(y, ref, what=""):
    """NaN and +-inf exactly where the float64 reference has them; finite cells within tolerance."""
    y = np.asarray(y, np.float64)
    ref = np.asarray(ref, np.float64)
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != {ref.shape}"
    for name, pred in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        bad = pred(y) != pred(ref)
        assert not bad.any(), f"{what}: {name} differs at {np.argwhere(bad)[:5].tolist()}"
    fin = np.isfinite(ref)
    if fin.any():
        assert_close(y[fin], ref[fin], what)


LAYOUTS = ("buffer", "image")


def in_layout(name, op, x, *args, c_out=None, **kw):
    """Kernel ``op`` of kernel set ``name`` on NCHW ``x`` -> NCHW float32 result.

    For images x goes through ``layout.to_image`` and the result back through
    ``to_buffer`` with ``c_out`` channels (x's by default).
    """
    if name == "buffer":
        return getattr(B, op)(x, *args, **kw)
    y = getattr(ki, op)(layout.to_image(x), *args, **kw)
    return layout.to_buffer(y, c_out if c_out is not None else x.shape[1])


# --- test bodies shared by the per-op files (each file parametrizes them with its op)


def check_buffer_regions_in_any_order(op, dim, rank, data):
    call, ref = buffer_region_case(data, op, rank)
    whole = call(None)
    assert whole.dtype == np.float32
    assert_close(whole, ref, op)
    limit = whole.shape[2] if dim == "rows" else whole.shape[1]
    parts = buffer_bands(data, limit)
    skip = data.draw(st.sampled_from([None, *range(len(parts))]), label="skip")
    out = np.full(whole.shape, np.nan, np.float32)
    expected = whole.copy()
    for i, (lo, hi) in enumerate(parts):
        if i == skip:
            cut(expected, dim, lo, hi)[...] = np.nan  # never computed: must stay as it was
            continue
        assert call(out, **{dim: (lo, hi)}) is out
    np.testing.assert_array_equal(out, expected)


def check_buffer_row_and_channel_region(op, data):
    call, _ = buffer_region_case(data, op, 4)
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


def check_buffer_region_in_place(op, dim, data):
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


def check_raises(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def check_bad_region_leaves_out_untouched(call, exc, message):
    out = np.full(X4.shape, 3.0, np.float32)
    with pytest.raises(exc, match=message):
        call(out)
    assert (out == 3.0).all()


def check_image_regions_in_any_order(op, channel_only, data):
    call, ref, c = image_region_case(data, op, channel_only)
    whole = call(None)
    assert whole.dtype == np.float32 and whole.shape[2] == (c + 3) // 4
    assert_close(layout.to_buffer(whole, c), ref, op)
    assert padding_lanes_zero(whole, c)
    _, h, cb, _, _ = whole.shape
    rows = image_bands(data, h, 1, h, "row cuts")
    chans = image_bands(data, 4 * cb, 4, c, "channel cuts")
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


def check_image_new_output_zero_outside(op, data):
    call, _, c = image_region_case(data, op)
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


def check_image_region_in_place(op, dim, data):
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


def check_image_bad_region(op, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        IMAGE_CALLS[op](**kw)


def check_buffer_pool_matches_reference(kind, case, cip, seed):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    assert_close(run_pool(kind, x, k, s, p, cm, cip), ref_pool(kind, x, k, s, p, cm, cip), kind)


def check_buffer_pool_regions_compose(kind, case, cip, seed, data):
    """Disjoint row or channel regions, in any order, into one out equal the whole output."""
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    whole = run_pool(kind, x, k, s, p, cm, cip)
    axis = data.draw(st.sampled_from(["rows", "channels"]))
    length = whole.shape[2] if axis == "rows" else whole.shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(0, length), max_size=3)))
    bounds = [0, *cuts, length]
    regions = list(zip(bounds[:-1], bounds[1:]))
    order = data.draw(st.permutations(regions))
    out = np.full(whole.shape, np.nan, np.float32)
    for r in order:
        res = run_pool(kind, x, k, s, p, cm, cip, out=out, **{axis: r})
        assert res is out
    np.testing.assert_array_equal(out, whole)


def check_buffer_pool_region_untouched(kind, case, seed, data):
    shape, k, s, p, cm = case
    x = rand(seed, *shape)
    whole = run_pool(kind, x, k, s, p, cm, True)
    _, oc, oh, _ = whole.shape
    r0 = data.draw(st.integers(0, oh))
    r1 = data.draw(st.integers(r0, oh))
    c0 = data.draw(st.integers(0, oc))
    c1 = data.draw(st.integers(c0, oc))
    out = np.full(whole.shape, -7.0, np.float32)
    run_pool(kind, x, k, s, p, cm, True, out=out, rows=(r0, r1), channels=(c0, c1))
    inside = np.zeros(whole.shape, bool)
    inside[:, c0:c1, r0:r1] = True
    np.testing.assert_array_equal(out[inside], whole[inside])
    assert (out[~inside] == -7.0).all()
    # Without out, a region call returns zeros outside the region.
    fresh = run_pool(kind, x, k, s, p, cm, True, rows=(r0, r1), channels=(c0, c1))
    assert (fresh[~inside] == 0.0).all()


def check_image_pool_rejects(fn, kw, exc, msg):
    kernel = kw.pop("kernel")
    with pytest.raises(exc, match=msg):
        fn(IX, kernel, **kw)
