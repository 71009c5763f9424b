"""Image conv2d against the float64 reference and the buffer kernels, through the layout transforms."""
import numpy as np
import pytest
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


@st.composite
def conv_cases(draw, depthwise=False):
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


def _check_whole(case, depthwise):
    x, wt, bias, kw = case
    oc = wt.shape[0]
    y = ki.conv2d(layout.to_image(x), _filter_image(wt, depthwise), bias, out_channels=oc, **kw)
    groups = x.shape[1] if depthwise else 1
    want = ref.conv2d(x, wt, bias, groups=groups, **kw)
    assert y.shape == layout.image_shape(want.shape)
    assert_close(layout.to_buffer(y, oc), want, "conv2d vs reference")
    assert np.all(y[:, :, -1, :, oc - 4 * (y.shape[2] - 1):] == 0.0), "padding lanes must be zero"
    if kb is not None:
        yb = kb.conv2d(x, wt, bias, groups=groups, **kw)
        assert_close(layout.to_buffer(y, oc), yb, "conv2d vs buffer kernel")


@given(conv_cases())
def test_conv_matches_reference(case):
    _check_whole(case, depthwise=False)


@given(conv_cases(depthwise=True))
def test_depthwise_matches_reference(case):
    _check_whole(case, depthwise=True)


def _cuts(draw, lo, hi, step=1):
    """Sorted cut points splitting [lo, hi) into pieces on multiples of ``step``."""
    inner = draw(st.lists(st.integers(lo, hi), max_size=3))
    pts = sorted({lo, hi, *[min(hi, lo + (v - lo) // step * step) for v in inner]})
    return list(zip(pts[:-1], pts[1:]))


@given(st.data(), st.booleans())
def test_regions_tile_the_output(data, depthwise):
    """Disjoint row x channel regions, computed in any order, give the whole output."""
    x, wt, bias, kw = data.draw(conv_cases(depthwise=depthwise))
    oc = wt.shape[0]
    xi, wi = layout.to_image(x), _filter_image(wt, depthwise)
    whole = ki.conv2d(xi, wi, bias, out_channels=oc, **kw)
    oh = whole.shape[1]
    rows = _cuts(data.draw, 0, oh)
    chans = [(a, min(b, oc)) for a, b in _cuts(data.draw, 0, 4 * whole.shape[2], 4)]
    regions = [(r, c) for r in rows for c in chans]
    order = data.draw(st.permutations(regions))
    out = np.full(whole.shape, SENTINEL, np.float32)
    for r, c in order:
        ki.conv2d(xi, wi, bias, out_channels=oc, out=out, rows=r, channels=c, **kw)
    np.testing.assert_array_equal(out, whole)


@given(st.data())
def test_region_leaves_other_cells_untouched(data):
    x, wt, bias, kw = data.draw(conv_cases())
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


def test_bias_length_sets_out_channels():
    """Without out_channels, the bias length is the true channel count."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 6, 6), dtype=np.float32)
    wt = rng.standard_normal((6, 5, 3, 3), dtype=np.float32)
    bias = rng.standard_normal(6, dtype=np.float32)
    y = ki.conv2d(layout.to_image(x), layout.filter_to_image(wt), bias, padding=1)
    assert_close(layout.to_buffer(y, 6), ref.conv2d(x, wt, bias, padding=1))
    assert np.all(y[:, :, 1, :, 2:] == 0.0)


@pytest.mark.parametrize("name", ["alexnet.conv3", "squeezenet.fire2.squeeze", "alexnet.conv1"])
def test_kernel_study_layers(name):
    """A few benchmark layer shapes (full size) against the reference and onnxruntime."""
    from coinfer.graph.studies import kernels as ks

    layer = next(lay for lay in ks.CONV_LAYERS if lay.name == name)
    inp = ks.make_inputs(layer)
    y = layout.to_buffer(ks.ours_runner(layer, inp, layout="image")(), layer.k)
    want = ref.conv2d(inp["x"], inp["w"], inp["b"], stride=layer.stride, padding=layer.pad)
    assert_close(y, want, name)
    pytest.importorskip("onnxruntime")
    assert_close(y, ks.ort_runner(layer, inp)(), name + " vs onnxruntime")
