"""Shared pieces of the per-op kernel tests: random tensors, case generators for
pools and regions, and the bad-input fixtures (moved from the layout-named files)."""
from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R

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
        from tests.tolerance import assert_close
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
