"""lrn in both layouts: the float64 reference, onnxruntime, regions, bad input, NaN and inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.kernels import buffer as B
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as R
from tests.kernels.helpers import (BX, IX, LAYOUTS, assert_ieee, image_bands, in_layout, padding_lanes_zero, rand,
    regions_tile, sprinkle, tensor)
from tests.onnx_peer import run_node
from tests.tolerance import assert_close


# === buffer (NCHW) ===


lrn_params = st.fixed_dictionaries({
    "size": st.integers(1, 8),
    "alpha": st.sampled_from([1e-4, 1e-2, 0.3]),
    "beta": st.sampled_from([0.5, 0.75, 1.0]),
    "k": st.sampled_from([1.0, 2.0]),
})


nchw = st.tuples(st.integers(1, 3), st.integers(1, 11), st.integers(1, 6), st.integers(1, 7))


@given(nchw, lrn_params, st.integers(0, 2**16))
def test_buffer_lrn_matches_reference(shape, params, seed):
    x = 3 * rand(seed, *shape)
    assert_close(B.lrn(x, **params), R.lrn(x, **params), "lrn")


@given(nchw, lrn_params, st.integers(0, 2**16), st.data())
def test_buffer_lrn_regions_compose_to_whole(shape, params, seed, data):
    x = 3 * rand(seed, *shape)
    whole = B.lrn(x, **params)
    axis = data.draw(st.sampled_from(["rows", "channels"]))
    length = shape[2] if axis == "rows" else shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(0, length), max_size=3)))
    bounds = [0, *cuts, length]
    out = np.full(shape, np.nan, np.float32)
    for r in data.draw(st.permutations(list(zip(bounds[:-1], bounds[1:])))):
        assert B.lrn(x, **params, out=out, **{axis: r}) is out
    assert_close(out, whole, "lrn regions")


@given(nchw, st.integers(0, 2**16), st.data())
def test_buffer_lrn_region_leaves_other_cells_untouched(shape, seed, data):
    x = rand(seed, *shape)
    whole = B.lrn(x)
    r0 = data.draw(st.integers(0, shape[2]))
    r1 = data.draw(st.integers(r0, shape[2]))
    c0 = data.draw(st.integers(0, shape[1]))
    c1 = data.draw(st.integers(c0, shape[1]))
    out = np.full(shape, -7.0, np.float32)
    B.lrn(x, out=out, rows=(r0, r1), channels=(c0, c1))
    inside = np.zeros(shape, bool)
    inside[:, c0:c1, r0:r1] = True
    assert_close(out[inside], whole[inside], "lrn region")
    assert (out[~inside] == -7.0).all()
    fresh = B.lrn(x, rows=(r0, r1), channels=(c0, c1))
    assert (fresh[~inside] == 0.0).all()


def test_buffer_lrn_large_values_next_to_tiny_ones():
    # Big squares entering and leaving the window next to tiny ones.
    x = np.array([1e3, 1e-3, 1e3, 1e-3, 1e-3, 1e-3, 1e-3], np.float32).reshape(1, 7, 1, 1)
    assert_close(B.lrn(x, size=3, alpha=1.0, beta=0.75), R.lrn(x, size=3, alpha=1.0, beta=0.75), "lrn")


@settings(max_examples=15)
@given(nchw, lrn_params.filter(lambda p: p["size"] % 2 == 1), st.integers(0, 2**16))
def test_buffer_lrn_matches_onnxruntime(shape, params, seed):
    x = 3 * rand(seed, *shape)
    expect = run_node("LRN", [x], size=params["size"], alpha=params["alpha"], beta=params["beta"],
                     bias=params["k"])
    assert_close(B.lrn(x, **params), expect, "LRN")


def _lrn_in_place():
    x = BX.copy()
    B.lrn(x, out=x)


BUFFER_BAD = [
    ("lrn x 2-D", lambda: B.lrn(BX[0, 0]), ValueError, r"lrn: x must be 4-D"),
    ("lrn x empty", lambda: B.lrn(BX[:, :0]), ValueError, r"lrn: x .*empty"),
    ("lrn rows past end", lambda: B.lrn(BX, rows=(0, 7)), ValueError, r"lrn: rows must satisfy"),
    ("lrn channels reversed", lambda: B.lrn(BX, channels=(4, 3)), ValueError, r"lrn: channels must satisfy"),
    ("lrn out float64", lambda: B.lrn(BX, out=np.zeros(BX.shape)), TypeError, r"lrn: out must have dtype"),
    ("lrn out is x", lambda: _lrn_in_place(), ValueError, r"lrn: out must not overlap x"),
    ("lrn size 0", lambda: B.lrn(BX, size=0), ValueError, r"lrn: size must be >= 1"),
    ("lrn size float", lambda: B.lrn(BX, size=5.0), TypeError, r"lrn: size must be an int"),
    ("lrn k zero", lambda: B.lrn(BX, k=0.0), ValueError, r"lrn: k must be a finite positive"),
    ("lrn alpha string", lambda: B.lrn(BX, alpha="1e-4"), TypeError, r"lrn: alpha must be a number"),
    ("lrn beta nan", lambda: B.lrn(BX, beta=float("nan")), ValueError, r"lrn: beta must be a finite"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BUFFER_BAD], ids=[c[0] for c in BUFFER_BAD])
def test_buffer_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# === image (N, H, CB, W, 4) ===


@given(st.data(), st.integers(1, 7), st.sampled_from([(1e-4, 0.75, 1.0), (0.5, 0.6, 2.0), (1.0, 1.0, 0.5)]))
def test_image_lrn(data, size, params):
    x = tensor(data.draw)
    alpha, beta, k = params
    c = x.shape[1]
    xi = layout.to_image(x)
    y = ki.lrn(xi, c, size=size, alpha=alpha, beta=beta, k=k)
    assert_close(layout.to_buffer(y, c), R.lrn(x, size=size, alpha=alpha, beta=beta, k=k), "lrn")
    assert padding_lanes_zero(y, c)
    got_b = B.lrn(x, size=size, alpha=alpha, beta=beta, k=k)
    assert_close(layout.to_buffer(y, c), got_b, "lrn vs buffer")
    regions_tile(lambda **r: ki.lrn(xi, c, size=size, alpha=alpha, beta=beta, k=k, **r), y, data, c)


IMAGE_LRN_BAD = [
    (dict(c=None), TypeError, "lrn: c is required"),
    (dict(c=9), ValueError, "lrn: c=9 does not fit 2 channel blocks"),
    (dict(size=0), ValueError, "lrn: size must be >= 1"),
    (dict(k=0.0), ValueError, "lrn: k must be a finite positive number"),
    (dict(alpha="a"), TypeError, "lrn: alpha must be a number"),
    (dict(out=IX), ValueError, "lrn: out must not overlap x"),
]


@pytest.mark.parametrize("change,exc,msg", IMAGE_LRN_BAD, ids=[c[2] for c in IMAGE_LRN_BAD])
def test_image_lrn_rejects(change, exc, msg):
    args = dict(c=8)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.lrn(IX, args.pop("c"), **args)


# === NaN and infinities (both layouts, one rule with the reference) ===


@pytest.mark.parametrize("lay", LAYOUTS)
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 9])
def test_lrn_nan_and_inf_stay_in_their_windows(lay, size):
    """A NaN or inf in channel 4 reaches only the channels whose window holds it."""
    x = rand(size, 1, 12, 2, 3)
    x[0, 4, 0, 0] = np.nan
    x[0, 4, 1, 1] = np.inf
    y = in_layout(lay, "lrn", x, *([12] if lay == "image" else []), size=size, alpha=0.3, beta=0.75)
    assert_ieee(y, R.lrn(x, size=size, alpha=0.3, beta=0.75), f"lrn {lay} size {size}")
    lo, hi = (size - 1) // 2, size // 2
    touched = [c for c in range(12) if c - lo <= 4 <= c + hi]
    assert np.isnan(y[0, touched, 0, 0]).all() and not np.isnan(np.delete(y[0, :, 0, 0], touched)).any()


@pytest.mark.parametrize("lay", LAYOUTS)
@given(shape=nchw, params=lrn_params, seed=st.integers(0, 2**16))
def test_lrn_nan_and_inf_match_reference(lay, shape, params, seed):
    x = sprinkle(3 * rand(seed, *shape), seed, frac=0.05)
    args = [shape[1]] if lay == "image" else []
    assert_ieee(in_layout(lay, "lrn", x, *args, **params), R.lrn(x, **params), f"lrn {lay}")


@pytest.mark.parametrize("lay", LAYOUTS)
@given(shape=nchw, params=lrn_params, seed=st.integers(0, 2**16), data=st.data())
def test_lrn_channel_regions_are_bit_identical(lay, shape, params, seed, data):
    x = 3 * rand(seed, *shape)
    c = shape[1]
    if lay == "buffer":
        whole = B.lrn(x, **params)
        cuts = sorted(data.draw(st.lists(st.integers(0, c), max_size=3)))
        out = np.full(shape, np.nan, np.float32)
        for r in zip([0, *cuts], [*cuts, c]):
            B.lrn(x, **params, out=out, channels=r)
    else:
        xi = layout.to_image(x)
        whole = ki.lrn(xi, c, **params)
        chans = image_bands(data, 4 * xi.shape[2], 4, c, "channel cuts")
        out = np.full(xi.shape, np.nan, np.float32)
        for ch in chans:
            ki.lrn(xi, c, **params, out=out, channels=ch)
    np.testing.assert_array_equal(out, whole)
