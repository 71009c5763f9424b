"""fully_connected in both layouts: buffer and image kernels against the float64
reference and onnxruntime Gemm; regions; bad input."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as kb
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as ref
from coinfer.kernels.buffer import fully_connected
from tests.kernels.helpers import padding_lanes_zero, regions_tile
from tests.onnx_peer import run_node
from tests.tolerance import assert_close

# === buffer (N, K) ================================================================
@st.composite
def fc_cases(draw):
    """(x, w, bias, relu): batch 1..9 (the batch-1 and 4-row kernels and their tails), K and M not multiples of 16."""
    n = draw(st.integers(1, 9))
    k = draw(st.integers(1, 70))
    m = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, k), dtype=np.float32)
    w = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal(m, dtype=np.float32) if draw(st.booleans()) else None
    return x, w, b, draw(st.booleans())


@given(case=fc_cases())
def test_buffer_fc_matches_reference(case):
    x, w, b, relu = case
    assert_close(fully_connected(x, w, b, relu=relu), ref.fully_connected(x, w, b, relu=relu),
                 f"fc {x.shape} {w.shape}")


@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (1, 9216, 37), (2, 4096, 9), (5, 33, 1)])
def test_buffer_fc_shapes(n, k, m):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s, dtype=np.float32) for s in [(n, k), (m, k), (m,)])
    assert_close(fully_connected(x, w, b), ref.fully_connected(x, w, b), f"fc {n}x{k} -> {m}")


@given(case=fc_cases(), parts=st.integers(1, 4), order_seed=st.integers(0, 1000))
def test_buffer_fc_channel_regions_tile_the_whole(case, parts, order_seed):
    x, w, b, relu = case
    whole = fully_connected(x, w, b, relu=relu)
    m = w.shape[0]
    rng = random.Random(order_seed)
    cuts = sorted(rng.sample(range(1, m), min(parts - 1, m - 1))) if m > 1 else []
    edges = [0, *cuts, m]
    regions = list(zip(edges, edges[1:]))
    rng.shuffle(regions)
    out = np.full_like(whole, np.nan)
    for reg in regions:
        fully_connected(x, w, b, relu=relu, out=out, channels=reg)
    np.testing.assert_array_equal(out, whole)


@given(case=fc_cases(), data=st.data())
def test_buffer_fc_region_leaves_the_rest_untouched(case, data):
    x, w, b, relu = case
    m = w.shape[0]
    c0 = data.draw(st.integers(0, m))
    c1 = data.draw(st.integers(c0, m))
    out = np.full((x.shape[0], m), -5.0, np.float32)
    fully_connected(x, w, b, relu=relu, out=out, channels=(c0, c1))
    expect = np.full(out.shape, -5.0)
    expect[:, c0:c1] = ref.fully_connected(x, w, b, relu=relu)[:, c0:c1]
    assert_close(out, expect, "fc region")
    fresh = fully_connected(x, w, b, relu=relu, channels=(c0, c1))
    assert not fresh[:, :c0].any() and not fresh[:, c1:].any()


def _ort_gemm(x, w, b):
    return run_node("Gemm", [x, w] + ([b] if b is not None else []), transB=1)


@settings(max_examples=15)
@given(case=fc_cases())
def test_buffer_fc_matches_onnxruntime(case):
    x, w, b, relu = case
    y = _ort_gemm(x, w, b)
    if relu:
        y = np.maximum(y, 0)
    assert_close(fully_connected(x, w, b, relu=relu), y, "fc vs onnxruntime")


# --- bad input: one test per rule -------------------------------------------------

BX = np.zeros((2, 10), np.float32)
BW = np.zeros((6, 10), np.float32)


def _buffer_raises(exc, *words, args=(BX, BW), **kw):
    with pytest.raises(exc) as info:
        fully_connected(*args, **kw)
    msg = str(info.value)
    assert "fully_connected" in msg
    for word in words:
        assert word in msg, msg


def test_buffer_fc_bad_dtype():
    _buffer_raises(TypeError, "x", "float32", args=(BX.astype(np.float64), BW))
    _buffer_raises(TypeError, "w", "float32", args=(BX, BW.astype(np.int32)))


def test_buffer_fc_bad_rank():
    _buffer_raises(ValueError, "x", "2-D", args=(BX[0], BW))
    _buffer_raises(ValueError, "w", "2-D", args=(BX, BW[None]))


def test_buffer_fc_size_mismatch():
    _buffer_raises(ValueError, "w", "10 columns", args=(BX, np.zeros((6, 9), np.float32)))


def test_buffer_fc_bad_bias():
    _buffer_raises(ValueError, "bias", "(6,)", args=(BX, BW, np.zeros(5, np.float32)))


def test_buffer_fc_region_out_of_range():
    _buffer_raises(ValueError, "channels", channels=(2, 7))


def test_buffer_fc_bad_out():
    _buffer_raises(ValueError, "out", "shape", out=np.zeros((2, 5), np.float32))
    _buffer_raises(ValueError, "out", "contiguous", out=np.zeros((2, 12), np.float32)[:, ::2])
    _buffer_raises(TypeError, "out", "float32", out=np.zeros((2, 6), np.float64))


# === image: (N, 1, KB, 1, 4) activations, (MB, K, 4) weights ======================

@given(st.integers(1, 3), st.integers(1, 70), st.integers(1, 40), st.booleans(), st.booleans(),
       st.integers(0, 2**16), st.data())
def test_image_fc_matches_reference(n, k, m, with_bias, relu, seed, data):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k), dtype=np.float32)
    w = rng.standard_normal((m, k), dtype=np.float32)
    bias = rng.standard_normal(m, dtype=np.float32) if with_bias else None
    xi, wi = layout.to_image(x.reshape(n, k, 1, 1)), layout.fc_to_image(w)
    y = ki.fully_connected(xi, wi, bias, relu=relu, out_channels=m)
    want = ref.fully_connected(x, w, bias, relu=relu)
    assert_close(layout.to_buffer(y, m).reshape(n, m), want, "fully_connected")
    assert padding_lanes_zero(y, m)
    assert_close(layout.to_buffer(y, m).reshape(n, m), kb.fully_connected(x, w, bias, relu=relu),
                 "fully_connected vs buffer")
    regions_tile(lambda **r: ki.fully_connected(xi, wi, bias, relu=relu, out_channels=m, **r),
                  y, data, m, rows=False)



# --- image: bad input -------------------------------------------------------------

def _img(n=1, h=6, cb=2, w=6):
    return np.zeros((n, h, cb, w, 4), np.float32)


FX = _img(n=2, h=1, cb=3, w=1)                    # 12 inputs
FW = np.zeros((2, 12, 4), np.float32)             # 8 outputs


FC_CASES = [
    (dict(x=_img(h=2, cb=3, w=1)), ValueError, r"fully_connected: x must be a channel-only image"),
    (dict(w=np.zeros((2, 12), np.float32)), ValueError, "fully_connected: w must be 3-D"),
    (dict(w=np.zeros((2, 7, 4), np.float32)), ValueError, "fully_connected: w has K=7 inputs"),
    (dict(w=np.zeros((2, 12, 3), np.float32)), ValueError, r"fully_connected: w must be \(MB, K, 4\)"),
    (dict(bias=np.zeros(9, np.float32)), ValueError, "fully_connected: out_channels=9 does not fit"),
    (dict(channels=(4, 6)), ValueError, "fully_connected: channels ends must be multiples"),
]


@pytest.mark.parametrize("change,exc,msg", FC_CASES, ids=[c[2] for c in FC_CASES])
def test_image_fc_rejects(change, exc, msg):
    args = dict(x=FX, w=FW, bias=None)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.fully_connected(args.pop("x"), args.pop("w"), args.pop("bias"), **args)
