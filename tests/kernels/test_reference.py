"""The float64 reference against onnxruntime, one-node models, one thread."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import reference as ref
from tests.onnx_peer import resize_linear as ort_resize_linear
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


def ort_run(op: str, inputs: list, **attrs) -> np.ndarray:
    """Run one ONNX node (opset 19) in onnxruntime on float32 inputs; return its output."""
    return run_node(op, inputs, **attrs)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 9))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    ceil_mode = draw(st.booleans())
    return (n, c, h, w), (kh, kw), (sh, sw), pads, ceil_mode


@given(pool_case(), st.integers(0, 2**16))
def test_max_pool_matches_onnxruntime(case, seed):
    shape, k, s, p, cm = case
    x = rand(np.random.default_rng(seed), *shape)
    y = ref.max_pool2d(x, k, stride=s, padding=p, ceil_mode=cm)
    expect = ort_run("MaxPool", [x], kernel_shape=list(k), strides=list(s),
                     pads=[p[0], p[1], p[2], p[3]], ceil_mode=int(cm))
    assert_close(y, expect, "MaxPool")


@given(pool_case(), st.booleans(), st.integers(0, 2**16))
def test_avg_pool_matches_onnxruntime(case, cip, seed):
    shape, k, s, p, cm = case
    x = rand(np.random.default_rng(seed), *shape)
    y = ref.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)
    expect = ort_run("AveragePool", [x], kernel_shape=list(k), strides=list(s),
                     pads=list(p), ceil_mode=int(cm), count_include_pad=int(cip))
    assert_close(y, expect, "AveragePool")


def test_pool_ceil_mode_drops_window_starting_in_end_padding():
    # H=5, k=2, s=2, pads 1/1: ceil gives 4 windows but the 4th starts in the end padding.
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 1, 5)
    y = ref.max_pool2d(x, (1, 2), stride=(1, 2), padding=(0, 1, 0, 1), ceil_mode=True)
    assert y.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(y.ravel(), [1, 3, 5])
    # Ceil-mode window past the end padding: count_include_pad divides by the cells up to the padding end.
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 1, 4)
    y = ref.avg_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1, 0, 1), ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(y.ravel(), [1.0, 3.0, 2.0])


def test_global_avg_pool_matches_onnxruntime():
    x = rand(np.random.default_rng(0), 2, 3, 5, 7)
    assert_close(ref.global_avg_pool(x), ort_run("GlobalAveragePool", [x]), "GlobalAveragePool")


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans())
    cg = 1 if depthwise else draw(st.integers(1, 3))
    c = cg * groups
    oc = groups * (1 if depthwise else draw(st.integers(1, 3)))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, eh - pads[0] - pads[2]), 8))
    w = draw(st.integers(max(1, ew - pads[1] - pads[3]), 8))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (draw(st.integers(1, 2)), c, h, w), (oc, cg, kh, kw), s, pads, (dh, dw), groups


@given(conv_case(), st.booleans(), st.integers(0, 2**16))
def test_conv_matches_onnxruntime(case, relu, seed):
    xs, ws, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    y = ref.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, relu=relu)
    expect = ort_run("Conv", [x, w, b], kernel_shape=list(ws[2:]), strides=list(s), pads=list(p),
                     dilations=list(d), group=g)
    if relu:
        expect = np.maximum(expect, 0)
    assert_close(y, expect, "Conv")


def test_conv_padding_forms_agree():
    rng = np.random.default_rng(1)
    x, w = rand(rng, 1, 2, 5, 6), rand(rng, 3, 2, 3, 3)
    a = ref.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(a, ref.conv2d(x, w, padding=(1, 1)))
    np.testing.assert_array_equal(a, ref.conv2d(x, w, padding=(1, 1, 1, 1)))


@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 7), st.booleans(), st.booleans(),
       st.integers(0, 2**16))
def test_gemm_matches_onnxruntime(n, k, m, with_bias, relu, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rand(rng, n, k), rand(rng, m, k), rand(rng, m)
    y = ref.fully_connected(x, w, b if with_bias else None, relu=relu)
    ins = [x, w, b] if with_bias else [x, w]
    expect = ort_run("Gemm", ins, transB=1)
    if relu:
        expect = np.maximum(expect, 0)
    assert_close(y, expect, "Gemm")


@given(st.integers(1, 9), st.sampled_from([1, 3, 5, 7]), st.sampled_from([1e-4, 1e-2, 0.5]),
       st.sampled_from([0.5, 0.75, 1.0]), st.sampled_from([1.0, 2.0]), st.integers(0, 2**16))
def test_lrn_matches_onnxruntime(c, size, alpha, beta, k, seed):
    # onnxruntime accepts odd sizes only; even sizes are checked in test_lrn_even_size_window.
    x = 3 * rand(np.random.default_rng(seed), 2, c, 3, 4)
    y = ref.lrn(x, size=size, alpha=alpha, beta=beta, k=k)
    expect = ort_run("LRN", [x], size=size, alpha=alpha, beta=beta, bias=k)
    assert_close(y, expect, "LRN")


@pytest.mark.parametrize("size", [2, 4, 6])
def test_lrn_even_size_window(size):
    # ONNX window for channel c: [c - floor((size-1)/2), c + ceil((size-1)/2)].
    x = rand(np.random.default_rng(size), 1, 7, 2, 3).astype(np.float64)
    lo, hi = (size - 1) // 2, size // 2
    expect = np.empty_like(x)
    for c in range(7):
        s = (x[:, max(0, c - lo):min(7, c + hi + 1)] ** 2).sum(axis=1)
        expect[:, c] = x[:, c] / (2.0 + 0.1 / size * s) ** 0.75
    assert_close(ref.lrn(x, size=size, alpha=0.1, beta=0.75, k=2.0), expect, "LRN even")


@given(st.sampled_from([(3, 10), (2, 5, 3, 4), (1, 1000)]), st.integers(0, 2**16), st.data())
def test_softmax_matches_onnxruntime(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = 10 * rand(np.random.default_rng(seed), *shape)
    assert_close(ref.softmax(x, axis=axis), ort_run("Softmax", [x], axis=axis), "Softmax")


@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 13), st.integers(1, 13),
       st.integers(0, 2**16))
def test_resize_bilinear_matches_onnxruntime(h, w, oh, ow, seed):
    x = rand(np.random.default_rng(seed), 1, 2, h, w)
    assert_close(ref.resize(x, (oh, ow)), ort_resize_linear(x, (oh, ow)), "Resize")


def test_resize_area_integer_factor_is_block_mean():
    x = rand(np.random.default_rng(2), 2, 3, 6, 8)
    expect = x.astype(np.float64).reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    assert_close(ref.resize(x, (3, 4), mode="area"), expect, "area")


def test_resize_area_preserves_mean_and_constants():
    x = rand(np.random.default_rng(3), 1, 2, 7, 11)
    y = ref.resize(x, (3, 4), mode="area")
    assert_close(y.mean(axis=(2, 3)), x.astype(np.float64).mean(axis=(2, 3)), "area mean")
    c = np.full((1, 1, 5, 9), 2.5, np.float32)
    assert_close(ref.resize(c, (3, 4), mode="area"), np.full((1, 1, 3, 4), 2.5), "area const")
    assert_close(ref.resize(c, (8, 13), mode="area"), np.full((1, 1, 8, 13), 2.5), "area up")


def test_elementwise_and_concat():
    rng = np.random.default_rng(4)
    a, b = rand(rng, 2, 3, 4, 5), rand(rng, 2, 3, 4, 5)
    np.testing.assert_array_equal(ref.relu(a), np.maximum(a.astype(np.float64), 0))
    np.testing.assert_array_equal(ref.add(a, b, relu=True), np.maximum(a.astype(np.float64) + b, 0))
    assert_close(ref.add(a, b), ort_run("Add", [a, b]), "Add")
    assert_close(ref.concat([a, b], axis=1), ort_run("Concat", [a, b], axis=1), "Concat")
    assert ref.concat([a, b], axis=3).dtype == np.float64
