"""conv2d in both layouts: buffer (NCHW) and image kernels against the float64
reference and onnxruntime; regions; bad input."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from coinfer.kernels import buffer as kb
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as ref
from coinfer.kernels.buffer import conv2d, prepack_weights
from tests.onnx_peer import run_node
from tests.tolerance import assert_close

SENTINEL = np.float32(7.25)


# === buffer (NCHW) ===

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
def test_buffer_conv_matches_reference(path, case):
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
def test_buffer_conv_edge_cases(path, xshape, wshape, kw):
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
def test_buffer_conv_regions_tile_the_whole(path, case, parts, axis, order_seed):
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
def test_buffer_conv_region_leaves_the_rest_untouched(case, data):
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


def test_buffer_conv_two_threads_fill_one_output():
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
def test_buffer_conv_matches_onnxruntime(case):
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

BX = np.zeros((1, 4, 6, 6), np.float32)
BW = np.zeros((8, 4, 3, 3), np.float32)


def _buffer_raises(exc, *words, **call):
    args = call.pop("args", (BX, BW))
    with pytest.raises(exc) as info:
        conv2d(*args, **call)
    msg = str(info.value)
    assert "conv2d" in msg
    for word in words:
        assert word in msg, msg


def test_buffer_bad_dtype():
    _buffer_raises(TypeError, "x", "float32", args=(BX.astype(np.float64), BW))
    _buffer_raises(TypeError, "w", "float32", args=(BX, BW.astype(np.float16)))


def test_buffer_bad_rank():
    _buffer_raises(ValueError, "x", "4-D", args=(BX[0], BW))
    _buffer_raises(ValueError, "w", "4-D", args=(BX, BW[0]))


def test_buffer_not_an_array():
    _buffer_raises(TypeError, "x", "ndarray", args=(BX.tolist(), BW))


def test_buffer_channel_mismatch():
    _buffer_raises(ValueError, "w", "input channels", args=(BX, np.zeros((8, 3, 3, 3), np.float32)))


def test_buffer_groups_must_divide_channels():
    _buffer_raises(ValueError, "groups", "input channels", args=(BX, np.zeros((6, 1, 3, 3), np.float32)), groups=3)
    _buffer_raises(ValueError, "groups", "output channels", args=(BX, np.zeros((5, 2, 3, 3), np.float32)), groups=2)
    _buffer_raises(ValueError, "groups", args=(BX, BW), groups=0)


def test_buffer_negative_padding():
    _buffer_raises(ValueError, "padding", padding=(1, -1))


def test_buffer_bad_stride_and_dilation():
    _buffer_raises(ValueError, "stride", stride=0)
    _buffer_raises(TypeError, "dilation", dilation=(1, 2, 3))


def test_buffer_empty_output():
    _buffer_raises(ValueError, "output", args=(BX, np.zeros((8, 4, 7, 7), np.float32)))


def test_buffer_region_out_of_range():
    _buffer_raises(ValueError, "rows", rows=(0, 5))
    _buffer_raises(ValueError, "channels", channels=(3, 2))
    _buffer_raises(TypeError, "rows", rows=3)


def test_buffer_bad_out():
    _buffer_raises(ValueError, "out", "shape", out=np.zeros((1, 8, 4, 5), np.float32))
    _buffer_raises(ValueError, "out", "contiguous", out=np.zeros((1, 8, 4, 8), np.float32)[..., ::2])
    _buffer_raises(TypeError, "out", "float32", out=np.zeros((1, 8, 4, 4), np.float64))


def test_buffer_bad_bias():
    _buffer_raises(ValueError, "bias", "(8,)", args=(BX, BW, np.zeros(7, np.float32)))
    _buffer_raises(TypeError, "bias", "float32", args=(BX, BW, np.zeros(8, np.float64)))


# === image (N, H, CB, W, 4) ===


@st.composite
def image_conv_cases(draw, depthwise=False):
    """A small conv problem: tensors in buffer layout plus the conv keywords."""
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 40))
    oc = c if depthwise else draw(st.integers(1, 40))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 2, 3, (1, 2), (3, 1)]))
    dilation = draw(st.sampled_from([1, 1, 2, (1, 2)]))
    padding = draw(st.one_of(
        st.integers(0, 2),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(*[st.integers(0, 3)] * 4),
    ))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    p = (padding,) * 4 if isinstance(padding, int) else (padding * 2 if len(padding) == 2 else padding)
    assume(h + p[0] + p[2] >= dh * (kh - 1) + 1 and w + p[1] + p[3] >= dw * (kw - 1) + 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((oc, 1 if depthwise else c, kh, kw), dtype=np.float32)
    bias = rng.standard_normal(oc, dtype=np.float32) if draw(st.booleans()) else None
    kw_args = dict(stride=stride, padding=padding, dilation=dilation, relu=draw(st.booleans()))
    return x, wt, bias, kw_args


def _filter_image(wt, depthwise):
    return layout.depthwise_to_image(wt) if depthwise else layout.filter_to_image(wt)


def _image_check_whole(case, depthwise):
    x, wt, bias, kw = case
    oc = wt.shape[0]
    y = ki.conv2d(layout.to_image(x), _filter_image(wt, depthwise), bias, out_channels=oc, **kw)
    groups = x.shape[1] if depthwise else 1
    want = ref.conv2d(x, wt, bias, groups=groups, **kw)
    assert y.shape == layout.image_shape(want.shape)
    assert_close(layout.to_buffer(y, oc), want, "conv2d vs reference")
    assert np.all(y[:, :, -1, :, oc - 4 * (y.shape[2] - 1):] == 0.0), "padding lanes must be zero"
    yb = kb.conv2d(x, wt, bias, groups=groups, **kw)
    assert_close(layout.to_buffer(y, oc), yb, "conv2d vs buffer kernel")


@given(image_conv_cases())
def test_image_conv_matches_reference(case):
    _image_check_whole(case, depthwise=False)


@given(image_conv_cases(depthwise=True))
def test_image_depthwise_matches_reference(case):
    _image_check_whole(case, depthwise=True)


def _image_cuts(draw, lo, hi, step=1):
    """Sorted cut points splitting [lo, hi) into pieces on multiples of ``step``."""
    inner = draw(st.lists(st.integers(lo, hi), max_size=3))
    pts = sorted({lo, hi, *[min(hi, lo + (v - lo) // step * step) for v in inner]})
    return list(zip(pts[:-1], pts[1:]))


@given(st.data(), st.booleans())
def test_image_regions_tile_the_output(data, depthwise):
    """Disjoint row x channel regions, computed in any order, give the whole output."""
    x, wt, bias, kw = data.draw(image_conv_cases(depthwise=depthwise))
    oc = wt.shape[0]
    xi, wi = layout.to_image(x), _filter_image(wt, depthwise)
    whole = ki.conv2d(xi, wi, bias, out_channels=oc, **kw)
    oh = whole.shape[1]
    rows = _image_cuts(data.draw, 0, oh)
    chans = [(a, min(b, oc)) for a, b in _image_cuts(data.draw, 0, 4 * whole.shape[2], 4)]
    regions = [(r, c) for r in rows for c in chans]
    order = data.draw(st.permutations(regions))
    out = np.full(whole.shape, SENTINEL, np.float32)
    for r, c in order:
        ki.conv2d(xi, wi, bias, out_channels=oc, out=out, rows=r, channels=c, **kw)
    np.testing.assert_array_equal(out, whole)


@given(st.data())
def test_image_region_leaves_other_cells_untouched(data):
    x, wt, bias, kw = data.draw(image_conv_cases())
    oc = wt.shape[0]
    xi, wi = layout.to_image(x), layout.filter_to_image(wt)
    whole = ki.conv2d(xi, wi, bias, out_channels=oc, **kw)
    oh, ocb = whole.shape[1], whole.shape[2]
    r0 = data.draw(st.integers(0, oh))
    r1 = data.draw(st.integers(r0, oh))
    b0 = data.draw(st.integers(0, ocb))
    b1 = data.draw(st.integers(b0, ocb))
    c1 = min(4 * b1, oc) if b1 > b0 else 4 * b0
    out = np.full(whole.shape, SENTINEL, np.float32)
    ki.conv2d(xi, wi, bias, out_channels=oc, out=out, rows=(r0, r1), channels=(4 * b0, c1), **kw)
    inside = np.zeros(whole.shape, bool)
    inside[:, r0:r1, b0:b1] = True
    np.testing.assert_array_equal(out[inside], whole[inside])
    assert np.all(out[~inside] == SENTINEL)


def test_image_bias_length_sets_out_channels():
    """Without out_channels, the bias length is the true channel count."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 6, 6), dtype=np.float32)
    wt = rng.standard_normal((6, 5, 3, 3), dtype=np.float32)
    bias = rng.standard_normal(6, dtype=np.float32)
    y = ki.conv2d(layout.to_image(x), layout.filter_to_image(wt), bias, padding=1)
    assert_close(layout.to_buffer(y, 6), ref.conv2d(x, wt, bias, padding=1))
    assert np.all(y[:, :, 1, :, 2:] == 0.0)


@pytest.mark.parametrize("name", ["alexnet.conv3", "squeezenet.fire2.squeeze", "alexnet.conv1"])
def test_image_kernel_study_layers(name):
    """A few benchmark layer shapes (full size) against the reference and onnxruntime."""
    from coinfer.graph.studies import kernels as ks

    layer = next(lay for lay in ks.CONV_LAYERS if lay.name == name)
    inp = ks.make_inputs(layer)
    y = layout.to_buffer(ks.ours_runner(layer, inp, layout="image")(), layer.k)
    want = ref.conv2d(inp["x"], inp["w"], inp["b"], stride=layer.stride, padding=layer.pad)
    assert_close(y, want, name)
    pytest.importorskip("onnxruntime")
    assert_close(y, ks.ort_runner(layer, inp)(), name + " vs onnxruntime")


# --- image: bad input -------------------------------------------------------------

def _img(n=1, h=6, cb=2, w=6):
    return np.zeros((n, h, cb, w, 4), np.float32)


X = _img()                                        # 8 channels, 6x6
W = np.zeros((3, 3, 3, 8, 4), np.float32)         # 12 output channels, 3x3, 8 inputs
DW = np.zeros((2, 3, 3, 4), np.float32)           # depthwise, 8 channels


CONV_CASES = [
    # (kwargs changes, exception, message fragment)
    (dict(x=[[0.0]]), TypeError, "conv2d: x must be a numpy.ndarray"),
    (dict(x=X.astype(np.float64)), TypeError, "conv2d: x must have dtype float32"),
    (dict(x=np.zeros((1, 6, 2, 6), np.float32)), ValueError, "conv2d: x must be 5-D"),
    (dict(x=np.zeros((1, 6, 2, 6, 3), np.float32)), ValueError, "conv2d: x must be an image"),
    (dict(w=np.zeros((3, 3, 8), np.float32)), ValueError, "conv2d: w must be a filter image"),
    (dict(w=np.zeros((3, 3, 3, 4, 4), np.float32)), ValueError, "conv2d: w has 4 input channels"),
    (dict(w=np.zeros((3, 3, 3, 8, 2), np.float32)), ValueError, "conv2d: w must end in a texel axis"),
    (dict(w=np.zeros((3, 3, 3, 4), np.float32)), ValueError, "conv2d: depthwise filter must have 2"),
    (dict(groups=2), ValueError, "conv2d: groups must be 1"),
    (dict(w=DW, groups=3), ValueError, "conv2d: groups=3 does not fit"),
    (dict(w=DW, groups=8, out_channels=7), ValueError, "conv2d: depthwise out_channels 7 must equal groups 8"),
    (dict(out_channels=7), ValueError, "conv2d: out_channels=7 does not fit"),
    (dict(out_channels=2.5), TypeError, "conv2d: out_channels must be an int"),
    (dict(bias=np.zeros(12, np.float32), out_channels=11), ValueError, r"conv2d: bias must have shape \(11,\)"),
    (dict(bias=np.zeros(12, np.float64)), TypeError, "conv2d: bias must have dtype float32"),
    (dict(stride=0), ValueError, "conv2d: stride must be >= 1"),
    (dict(stride=1.5), TypeError, "conv2d: stride must be an int or a pair"),
    (dict(dilation=(1, 0)), ValueError, "conv2d: dilation must be >= 1"),
    (dict(padding=-1), ValueError, "conv2d: padding must be non-negative"),
    (dict(padding=(1, 2, 3)), TypeError, "conv2d: padding must be an int"),
    (dict(dilation=4), ValueError, "conv2d: kernel .* does not fit input"),
    (dict(relu="yes"), TypeError, "conv2d: relu must be a bool"),
    (dict(rows=(0, 5)), ValueError, "conv2d: rows must satisfy"),
    (dict(rows=3), TypeError, "conv2d: rows must be a pair"),
    (dict(channels=(2, 8)), ValueError, "conv2d: channels ends must be multiples of 4"),
    (dict(channels=(0, 16)), ValueError, "conv2d: channels must satisfy"),
    (dict(out=np.zeros((1, 4, 3, 4, 4), np.float64)), TypeError, "conv2d: out must have dtype"),
    (dict(out=np.zeros((1, 4, 2, 4, 4), np.float32)), ValueError, "conv2d: out must have shape"),
    (dict(out=np.zeros((1, 4, 3, 4, 8), np.float32)[..., ::2]), ValueError, "conv2d: out must be C-contiguous"),
]


@pytest.mark.parametrize("change,exc,msg", CONV_CASES, ids=[c[2] for c in CONV_CASES])
def test_image_conv2d_rejects(change, exc, msg):
    args = dict(x=X, w=W, bias=None)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.conv2d(args.pop("x"), args.pop("w"), args.pop("bias"), **args)
