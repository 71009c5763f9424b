"""Buffer conv2d against the float64 reference and onnxruntime; regions; bad input."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from coinfer.kernels import reference as ref
from coinfer.kernels.buffer import conv2d, prepack_weights
from tests.onnx_peer import run_node
from tests.tolerance import assert_close

# The weights as given (packed on the call) and packed beforehand.
PATHS = ["plain", "prepacked"]
# The path fixture is the same for all examples of a test.
with_path = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=PATHS)
def path(request):
    return request.param


def _weights(path, w, kw):
    return prepack_weights(w, kw.get("groups", 1)) if path == "prepacked" else w


def _rand(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


@st.composite
def conv_cases(draw, max_groups=3):
    """(x, w, bias, kwargs) with a non-empty output: any padding form, stride, dilation, groups."""
    groups = draw(st.integers(1, max_groups))
    depthwise = groups > 1 and draw(st.booleans())
    cg = 1 if depthwise else draw(st.integers(1, 5))
    c = cg * groups
    og = draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 11))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    form = draw(st.sampled_from(["int", "pair", "quad"]))
    if form == "int":
        padding = draw(st.integers(0, 3))
        pads = (padding,) * 4
    elif form == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        pads = padding * 2
    else:
        padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
        pads = padding
    # The smallest input that still gives one output pixel, then a little more.
    min_h = max(1, dh * (kh - 1) + 1 - pads[0] - pads[2])
    min_w = max(1, dw * (kw - 1) + 1 - pads[1] - pads[3])
    h = draw(st.integers(min_h, min_h + 9))
    w = draw(st.integers(min_w, min_w + 40))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = _rand(rng, (n, c, h, w))
    wt = _rand(rng, (og * groups, cg, kh, kw))
    bias = _rand(rng, (og * groups,)) if draw(st.booleans()) else None
    stride = sh if sh == sw and draw(st.booleans()) else (sh, sw)
    dilation = dh if dh == dw else (dh, dw)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  relu=draw(st.booleans()))
    return x, wt, bias, kwargs


@with_path
@given(case=conv_cases())
def test_conv_matches_reference(path, case):
    x, w, b, kw = case
    assert_close(conv2d(x, _weights(path, w, kw), b, **kw), ref.conv2d(x, w, b, **kw),
                 f"conv2d {x.shape} {w.shape} {kw}")


@pytest.mark.parametrize(
    "xshape, wshape, kw",
    [
        ((1, 3, 1, 1), (5, 3, 1, 1), {}),                                   # 1x1 everything
        ((1, 3, 2, 2), (4, 3, 5, 5), dict(padding=2)),                      # kernel > input, 1x1 out
        ((2, 5, 9, 11), (6, 5, 2, 2), dict(stride=3)),                      # stride > kernel
        ((1, 6, 7, 8), (6, 1, 3, 3), dict(groups=6, padding=1)),            # depthwise
        ((1, 4, 9, 9), (8, 1, 3, 3), dict(groups=4, stride=2, padding=(0, 1, 2, 1))),  # dw x2
        ((1, 6, 9, 10), (9, 2, 3, 3), dict(groups=3, dilation=2, padding=2)),
        ((1, 3, 23, 23), (7, 3, 11, 11), dict(stride=4)),                   # AlexNet conv1-like
        ((2, 13, 13, 13), (19, 13, 3, 3), dict(padding=1, relu=True)),      # C not multiple of 4
        ((1, 10, 9, 40), (17, 10, 1, 1), dict(relu=True)),                  # 1x1 with a pixel tail
        ((1, 9, 5, 5), (33, 9, 1, 1), dict(stride=2)),                      # strided 1x1
    ],
)
def test_conv_edge_cases(path, xshape, wshape, kw):
    rng = np.random.default_rng(7)
    x, w, b = _rand(rng, xshape), _rand(rng, wshape), _rand(rng, wshape[:1])
    assert_close(conv2d(x, _weights(path, w, kw), b, **kw), ref.conv2d(x, w, b, **kw), f"{xshape} {wshape} {kw}")


def _split(rng: random.Random, n: int, parts: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), min(parts - 1, n - 1))) if n > 1 else []
    edges = [0, *cuts, n]
    return [(a, b) for a, b in zip(edges, edges[1:])]


@with_path
@given(case=conv_cases(), parts=st.integers(1, 4), axis=st.sampled_from(["rows", "channels"]),
       order_seed=st.integers(0, 1000))
def test_conv_regions_tile_the_whole(path, case, parts, axis, order_seed):
    x, w, b, kw = case
    w = _weights(path, w, kw)
    whole = conv2d(x, w, b, **kw)
    limit = whole.shape[2] if axis == "rows" else whole.shape[1]
    rng = random.Random(order_seed)
    regions = _split(rng, limit, parts)
    rng.shuffle(regions)
    out = np.full_like(whole, np.nan)
    for reg in regions:
        conv2d(x, w, b, out=out, **{axis: reg}, **kw)
    np.testing.assert_array_equal(out, whole)


@given(case=conv_cases(), data=st.data())
def test_conv_region_leaves_the_rest_untouched(case, data):
    x, w, b, kw = case
    ref_y = ref.conv2d(x, w, b, **kw)
    _, oc, oh, _ = ref_y.shape
    r0 = data.draw(st.integers(0, oh))
    r1 = data.draw(st.integers(r0, oh))
    c0 = data.draw(st.integers(0, oc))
    c1 = data.draw(st.integers(c0, oc))
    out = np.full(ref_y.shape, 123.0, np.float32)
    got = conv2d(x, w, b, out=out, rows=(r0, r1), channels=(c0, c1), **kw)
    assert got is out
    expect = np.full(ref_y.shape, 123.0)
    expect[:, c0:c1, r0:r1] = ref_y[:, c0:c1, r0:r1]
    assert_close(out, expect, "region")
    # A new output is zero outside the region.
    fresh = conv2d(x, w, b, rows=(r0, r1), channels=(c0, c1), **kw)
    mask = np.ones(ref_y.shape, bool)
    mask[:, c0:c1, r0:r1] = False
    assert not fresh[mask].any()


def test_conv_two_threads_fill_one_output():
    rng = np.random.default_rng(3)
    x, w, b = _rand(rng, (1, 16, 30, 30)), _rand(rng, (24, 16, 3, 3)), _rand(rng, (24,))
    whole = conv2d(x, w, b, padding=1)
    for _ in range(3):
        out = np.zeros_like(whole)
        threads = [
            threading.Thread(target=conv2d, args=(x, w, b), kwargs=dict(padding=1, out=out, rows=reg))
            for reg in [(0, 13), (13, 30)]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        np.testing.assert_array_equal(out, whole)


def _ort_conv(x, w, b, stride, pads, dilation, groups):
    ins = [x, w] + ([b] if b is not None else [])
    return run_node("Conv", ins, kernel_shape=list(w.shape[2:]), strides=list(stride), pads=list(pads),
                    dilations=list(dilation), group=groups)


@settings(max_examples=15)
@given(case=conv_cases())
def test_conv_matches_onnxruntime(case):
    x, w, b, kw = case
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    p = kw["padding"]
    pads = (p,) * 4 if isinstance(p, int) else (p * 2 if len(p) == 2 else p)
    # ONNX pads are (top, left, bottom, right) as (x1_begin, x2_begin, x1_end, x2_end).
    y_ort = _ort_conv(x, w, b, pair(kw["stride"]), pads, pair(kw["dilation"]), kw["groups"])
    if kw["relu"]:
        y_ort = np.maximum(y_ort, 0)
    assert_close(conv2d(x, w, b, **kw), y_ort, f"vs onnxruntime {x.shape} {w.shape} {kw}")


# --- bad input: one test per rule -------------------------------------------------

X = np.zeros((1, 4, 6, 6), np.float32)
W = np.zeros((8, 4, 3, 3), np.float32)


def _raises(exc, *words, **call):
    args = call.pop("args", (X, W))
    with pytest.raises(exc) as info:
        conv2d(*args, **call)
    msg = str(info.value)
    assert "conv2d" in msg
    for word in words:
        assert word in msg, msg


def test_bad_dtype():
    _raises(TypeError, "x", "float32", args=(X.astype(np.float64), W))
    _raises(TypeError, "w", "float32", args=(X, W.astype(np.float16)))


def test_bad_rank():
    _raises(ValueError, "x", "4-D", args=(X[0], W))
    _raises(ValueError, "w", "4-D", args=(X, W[0]))


def test_not_an_array():
    _raises(TypeError, "x", "ndarray", args=(X.tolist(), W))


def test_channel_mismatch():
    _raises(ValueError, "w", "input channels", args=(X, np.zeros((8, 3, 3, 3), np.float32)))


def test_groups_must_divide_channels():
    _raises(ValueError, "groups", "input channels", args=(X, np.zeros((6, 1, 3, 3), np.float32)), groups=3)
    _raises(ValueError, "groups", "output channels", args=(X, np.zeros((5, 2, 3, 3), np.float32)), groups=2)
    _raises(ValueError, "groups", args=(X, W), groups=0)


def test_negative_padding():
    _raises(ValueError, "padding", padding=(1, -1))


def test_bad_stride_and_dilation():
    _raises(ValueError, "stride", stride=0)
    _raises(TypeError, "dilation", dilation=(1, 2, 3))


def test_empty_output():
    _raises(ValueError, "output", args=(X, np.zeros((8, 4, 7, 7), np.float32)))


def test_region_out_of_range():
    _raises(ValueError, "rows", rows=(0, 5))
    _raises(ValueError, "channels", channels=(3, 2))
    _raises(TypeError, "rows", rows=3)


def test_bad_out():
    _raises(ValueError, "out", "shape", out=np.zeros((1, 8, 4, 5), np.float32))
    _raises(ValueError, "out", "contiguous", out=np.zeros((1, 8, 4, 8), np.float32)[..., ::2])
    _raises(TypeError, "out", "float32", out=np.zeros((1, 8, 4, 4), np.float64))


def test_bad_bias():
    _raises(ValueError, "bias", "(8,)", args=(X, W, np.zeros(7, np.float32)))
    _raises(TypeError, "bias", "float32", args=(X, W, np.zeros(8, np.float64)))
