"""coinfer.kernels.layout (C transforms) against plain-numpy formulations of DESIGN.md's layouts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.kernels import layout as L

nchw = st.tuples(st.integers(1, 3), st.integers(1, 10), st.integers(1, 5), st.integers(1, 6))


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def blocks(c):
    return (c + 3) // 4


def np_to_image(x):
    """NCHW -> (N, H, CB, W, 4): channel 4*b + k goes to lane k of block b; padding lanes zero."""
    n, c, h, w = x.shape
    cb = blocks(c)
    padded = np.zeros((n, cb * 4, h, w), np.float32)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, cb, 4, h, w).transpose(0, 3, 1, 4, 2))


def np_to_buffer(img, c):
    n, h, cb, w, _ = img.shape
    return np.ascontiguousarray(img.transpose(0, 2, 4, 1, 3).reshape(n, cb * 4, h, w)[:, :c])


def draw_region(data, limit):
    r0 = data.draw(st.integers(0, limit))
    return r0, data.draw(st.integers(r0, limit))


@given(nchw, st.integers(0, 2**16))
def test_to_image_whole(shape, seed):
    x = rand(seed, *shape)
    img = L.to_image(x)
    assert img.shape == L.image_shape(shape) == np_to_image(x).shape
    np.testing.assert_array_equal(img, np_to_image(x))
    np.testing.assert_array_equal(L.to_buffer(img, shape[1]), x)


def test_image_texel_mapping_of_design():
    # Texel (x, y) of the logical image [N*H, CB*W, 4] holds n=y//H, h=y%H, w=x%W, c=4*(x//W)+k.
    n, c, h, w = 2, 6, 3, 5
    x = rand(0, n, c, h, w)
    tex = L.to_image(x).reshape(n * h, blocks(c) * w, 4)
    for yy in range(n * h):
        for xx in range(blocks(c) * w):
            for k in range(4):
                ch = 4 * (xx // w) + k
                want = x[yy // h, ch, yy % h, xx % w] if ch < c else 0.0
                assert tex[yy, xx, k] == want


@given(nchw, st.integers(0, 2**16), st.data())
def test_to_image_region(shape, seed, data):
    n, c, h, w = shape
    x = rand(seed, *shape)
    r0, r1 = draw_region(data, h)
    c0, c1 = draw_region(data, c)
    before = rand(seed + 1, *L.image_shape(shape))
    out = before.copy()
    assert L.to_image(x, out=out, rows=(r0, r1), channels=(c0, c1)) is out
    # Lanes written: channels [c0, c1), plus the padding lanes when the region reaches channel c.
    lane = np.arange(blocks(c) * 4).reshape(blocks(c), 4)
    stop = blocks(c) * 4 if c1 == c else c1
    sel = ((lane >= c0) & (lane < stop))[None, None, :, None, :]
    expect = before.copy()
    expect[:, r0:r1] = np.where(sel, np_to_image(x)[:, r0:r1], before[:, r0:r1])
    np.testing.assert_array_equal(out, expect)


@given(nchw, st.integers(0, 2**16), st.data())
def test_to_image_regions_compose_and_zero_padding_lanes(shape, seed, data):
    n, c, h, w = shape
    x = rand(seed, *shape)
    out = np.full(L.image_shape(shape), np.nan, np.float32)
    axis = data.draw(st.sampled_from(["rows", "channels"]))
    limit = h if axis == "rows" else c
    bounds = [0, *sorted(data.draw(st.lists(st.integers(0, limit), max_size=3))), limit]
    for r in data.draw(st.permutations(list(zip(bounds[:-1], bounds[1:])))):
        L.to_image(x, out=out, **{axis: r})
    np.testing.assert_array_equal(out, np_to_image(x))  # padding lanes are zero, not nan


@given(nchw, st.integers(0, 2**16), st.data())
def test_to_buffer_region(shape, seed, data):
    n, c, h, w = shape
    img = np_to_image(rand(seed, *shape))
    r0, r1 = draw_region(data, h)
    c0, c1 = draw_region(data, c)
    before = rand(seed + 1, *shape)
    out = before.copy()
    assert L.to_buffer(img, c, out=out, rows=(r0, r1), channels=(c0, c1)) is out
    expect = before.copy()
    expect[:, c0:c1, r0:r1] = np_to_buffer(img, c)[:, c0:c1, r0:r1]
    np.testing.assert_array_equal(out, expect)
    fresh = L.to_buffer(img, c, rows=(r0, r1), channels=(c0, c1))
    expect0 = np.zeros(shape, np.float32)
    expect0[:, c0:c1, r0:r1] = np_to_buffer(img, c)[:, c0:c1, r0:r1]
    np.testing.assert_array_equal(fresh, expect0)


def test_to_buffer_accepts_any_c_that_fits_the_blocks():
    x = rand(3, 1, 8, 2, 3)
    img = L.to_image(x)
    for c in (5, 6, 7, 8):
        np.testing.assert_array_equal(L.to_buffer(img, c), np_to_buffer(img, c))


@given(st.tuples(st.integers(1, 9), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)),
       st.integers(0, 2**16))
def test_filter_to_image(shape, seed):
    w = rand(seed, *shape)
    oc, ic, kh, kw = shape
    ob = blocks(oc)
    padded = np.zeros((ob * 4, ic, kh, kw), np.float32)
    padded[:oc] = w
    # f[b, y, x, i, k] = w[4b + k, i, y, x]
    expect = padded.reshape(ob, 4, ic, kh, kw).transpose(0, 3, 4, 2, 1)
    np.testing.assert_array_equal(L.filter_to_image(w), expect)


@given(st.tuples(st.integers(1, 10), st.integers(1, 4), st.integers(1, 4)), st.integers(0, 2**16))
def test_depthwise_to_image(shape, seed):
    c, kh, kw = shape
    w = rand(seed, c, 1, kh, kw)
    padded = np.zeros((blocks(c) * 4, kh, kw), np.float32)
    padded[:c] = w[:, 0]
    expect = padded.reshape(blocks(c), 4, kh, kw).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(L.depthwise_to_image(w), expect)


@given(st.integers(1, 11), st.integers(1, 9), st.integers(0, 2**16))
def test_fc_to_image(m, k, seed):
    w = rand(seed, m, k)
    padded = np.zeros((blocks(m) * 4, k), np.float32)
    padded[:m] = w
    expect = padded.reshape(blocks(m), 4, k).transpose(0, 2, 1)
    np.testing.assert_array_equal(L.fc_to_image(w), expect)


def test_transforms_accept_non_contiguous_input():
    x = rand(4, 2, 6, 4, 5)[:, ::2]
    np.testing.assert_array_equal(L.to_image(x), np_to_image(np.ascontiguousarray(x)))
    w = rand(5, 6, 3, 2, 2).transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(L.filter_to_image(w), L.filter_to_image(np.ascontiguousarray(w)))


@st.composite
def boxes(draw):
    """Two arrays and a same-shaped box (tuple of step-1 slices) in each."""
    nd = draw(st.integers(1, 4))
    box = [draw(st.integers(0, 4)) for _ in range(nd)]
    src_shape = [b + draw(st.integers(0, 3)) for b in box]
    dst_shape = [b + draw(st.integers(0, 3)) for b in box]
    s0 = [draw(st.integers(0, s - b)) for s, b in zip(src_shape, box)]
    d0 = [draw(st.integers(0, s - b)) for s, b in zip(dst_shape, box)]
    si = tuple(slice(a, a + b) for a, b in zip(s0, box))
    di = tuple(slice(a, a + b) for a, b in zip(d0, box))
    return tuple(src_shape), tuple(dst_shape), si, di


@given(boxes(), st.booleans(), st.integers(0, 2**16))
def test_copy_region(case, strided_src, seed):
    src_shape, dst_shape, si, di = case
    src = rand(seed, *src_shape)
    if strided_src:  # a non-contiguous source base: every other element of a wider array
        wide = rand(seed, *src_shape[:-1], 2 * src_shape[-1])
        src = wide[..., ::2]
    dst = rand(seed + 1, *dst_shape)
    expect = dst.copy()
    expect[di] = src[si]
    assert L.copy_region(src, dst, si, di) is None
    np.testing.assert_array_equal(dst, expect)


def test_copy_region_into_image_view():
    # Halo rows of an image moved between two images.
    a = L.to_image(rand(6, 1, 5, 8, 4))
    b = np.zeros_like(a)
    L.copy_region(a, b, (slice(None), slice(2, 5)), (slice(None), slice(0, 3)))
    np.testing.assert_array_equal(b[:, :3], a[:, 2:5])
    assert not b[:, 3:].any()


# Bad input


def test_layout_rejects_bad_dtype_rank_and_type():
    with pytest.raises(TypeError, match="to_image"):
        L.to_image(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="to_image"):
        L.to_image(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="to_image"):
        L.to_image([[[[1.0]]]])
    with pytest.raises(TypeError, match="to_buffer"):
        L.to_buffer(np.zeros((1, 2, 1, 3, 4), np.int32), 4)
    with pytest.raises(ValueError, match="to_buffer"):
        L.to_buffer(np.zeros((1, 2, 1, 3, 3), np.float32), 4)  # last axis not 4
    with pytest.raises(ValueError, match="to_buffer"):
        L.to_buffer(np.zeros((1, 2, 2, 3, 4), np.float32), 4)  # c does not fit 2 blocks
    with pytest.raises(TypeError, match="to_buffer"):
        L.to_buffer(np.zeros((1, 2, 1, 3, 4), np.float32), 4.0)
    with pytest.raises(ValueError, match="filter_to_image"):
        L.filter_to_image(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="filter_to_image"):
        L.filter_to_image(np.zeros((2, 3, 3, 3), np.float64))
    with pytest.raises(ValueError, match="depthwise_to_image"):
        L.depthwise_to_image(np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="fc_to_image"):
        L.fc_to_image(np.zeros((0, 3), np.float32))


def test_layout_rejects_bad_out_and_regions():
    x = rand(8, 1, 5, 3, 4)
    shape = L.image_shape(x.shape)
    with pytest.raises(ValueError, match="out"):
        L.to_image(x, out=np.zeros((1, 3, 1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="out"):
        L.to_image(x, out=np.zeros(shape, np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        L.to_image(x, out=np.zeros(shape[::-1], np.float32).T)
    ro = np.zeros(shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        L.to_image(x, out=ro)
    with pytest.raises(ValueError, match="rows"):
        L.to_image(x, rows=(0, 4))
    with pytest.raises(ValueError, match="channels"):
        L.to_image(x, channels=(3, 2))
    with pytest.raises(TypeError, match="rows"):
        L.to_image(x, rows=3)
    img = L.to_image(x)
    with pytest.raises(ValueError, match="channels"):
        L.to_buffer(img, 5, channels=(0, 6))
    with pytest.raises(ValueError, match="out"):
        L.to_buffer(img, 5, out=np.zeros((1, 5, 3, 5), np.float32))


def test_copy_region_rejects_bad_input():
    a, b = rand(9, 4, 4), np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="copy_region"):
        L.copy_region(a, b, (slice(0, 2),), (slice(0, 3),))
    with pytest.raises(TypeError, match="copy_region"):
        L.copy_region(a.astype(np.float64), b, (slice(0, 2),), (slice(0, 2),))
    b.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        L.copy_region(a, b, (slice(0, 2),), (slice(0, 2),))
