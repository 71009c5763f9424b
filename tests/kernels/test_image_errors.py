"""Bad input to the image kernels raises ValueError/TypeError naming the op and the argument."""
import numpy as np
import pytest

from coinfer.kernels import image as ki


def img(n=1, h=6, cb=2, w=6):
    return np.zeros((n, h, cb, w, 4), np.float32)


X = img()                                         # 8 channels, 6x6
W = np.zeros((3, 3, 3, 8, 4), np.float32)         # 12 output channels, 3x3, 8 inputs
DW = np.zeros((2, 3, 3, 4), np.float32)           # depthwise, 8 channels
FX = img(n=2, h=1, cb=3, w=1)                     # 12 inputs
FW = np.zeros((2, 12, 4), np.float32)             # 8 outputs


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
def test_conv2d_rejects(change, exc, msg):
    args = dict(x=X, w=W, bias=None)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.conv2d(args.pop("x"), args.pop("w"), args.pop("bias"), **args)


POOL_CASES = [
    (ki.max_pool2d, dict(kernel=0), ValueError, "max_pool2d: kernel must be >= 1"),
    (ki.max_pool2d, dict(kernel=2, padding=2), ValueError, "max_pool2d: padding must be smaller than kernel"),
    (ki.max_pool2d, dict(kernel=7), ValueError, "max_pool2d: kernel .* does not fit input"),
    (ki.max_pool2d, dict(kernel=2, ceil_mode=2), TypeError, "max_pool2d: ceil_mode must be a bool"),
    (ki.max_pool2d, dict(kernel=2, channels=(0, 3)), ValueError, "max_pool2d: channels ends must be multiples"),
    (ki.avg_pool2d, dict(kernel=2, count_include_pad="no"), TypeError, "avg_pool2d: count_include_pad must be"),
    (ki.avg_pool2d, dict(kernel=2, rows=(2, 1)), ValueError, "avg_pool2d: rows must satisfy"),
]


@pytest.mark.parametrize("fn,kw,exc,msg", POOL_CASES, ids=[c[3] for c in POOL_CASES])
def test_pool_rejects(fn, kw, exc, msg):
    kernel = kw.pop("kernel")
    with pytest.raises(exc, match=msg):
        fn(X, kernel, **kw)


def test_global_avg_pool_rejects_buffer_layout():
    with pytest.raises(ValueError, match="global_avg_pool: x must be 5-D"):
        ki.global_avg_pool(np.zeros((1, 8, 6, 6), np.float32))


FC_CASES = [
    (dict(x=img(h=2, cb=3, w=1)), ValueError, r"fully_connected: x must be a channel-only image"),
    (dict(w=np.zeros((2, 12), np.float32)), ValueError, "fully_connected: w must be 3-D"),
    (dict(w=np.zeros((2, 7, 4), np.float32)), ValueError, "fully_connected: w has K=7 inputs"),
    (dict(w=np.zeros((2, 12, 3), np.float32)), ValueError, r"fully_connected: w must be \(MB, K, 4\)"),
    (dict(bias=np.zeros(9, np.float32)), ValueError, "fully_connected: out_channels=9 does not fit"),
    (dict(channels=(4, 6)), ValueError, "fully_connected: channels ends must be multiples"),
]


@pytest.mark.parametrize("change,exc,msg", FC_CASES, ids=[c[2] for c in FC_CASES])
def test_fully_connected_rejects(change, exc, msg):
    args = dict(x=FX, w=FW, bias=None)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.fully_connected(args.pop("x"), args.pop("w"), args.pop("bias"), **args)


def test_add_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"add: b must have the shape of a"):
        ki.add(X, img(cb=3))


def test_add_rejects_partially_overlapping_out():
    flat = np.zeros(X.size + 4, np.float32)
    a = flat[:X.size].reshape(X.shape)
    shifted = flat[4:].reshape(X.shape)
    with pytest.raises(ValueError, match="add: out must be an input itself or not overlap it"):
        ki.add(a, a, out=shifted)


def test_relu_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="relu: x must have dtype float32"):
        ki.relu(X.astype(np.float16))


CONCAT_CASES = [
    (dict(xs=[]), TypeError, "concat: xs must be a non-empty list"),
    (dict(channels=[8]), ValueError, "concat: channels must list one true channel count per input"),
    (dict(channels=[8, 9]), ValueError, r"concat: channels\[1\]=9 does not fit 1 channel blocks"),
    (dict(xs=[X, img(h=5, cb=1)]), ValueError, r"concat: xs\[1\] must have N, H, W"),
    (dict(out=np.zeros((1, 6, 2, 6, 4), np.float32)), ValueError, "concat: out must have shape"),
]


@pytest.mark.parametrize("change,exc,msg", CONCAT_CASES, ids=[c[2] for c in CONCAT_CASES])
def test_concat_rejects(change, exc, msg):
    args = dict(xs=[X, img(cb=1)], channels=[8, 3])
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.concat(args.pop("xs"), args.pop("channels"), **args)


LRN_CASES = [
    (dict(c=None), TypeError, "lrn: c is required"),
    (dict(c=9), ValueError, "lrn: c=9 does not fit 2 channel blocks"),
    (dict(size=0), ValueError, "lrn: size must be >= 1"),
    (dict(k=0.0), ValueError, "lrn: k must be a finite positive number"),
    (dict(alpha="a"), TypeError, "lrn: alpha must be a number"),
    (dict(out=X), ValueError, "lrn: out must not overlap x"),
]


@pytest.mark.parametrize("change,exc,msg", LRN_CASES, ids=[c[2] for c in LRN_CASES])
def test_lrn_rejects(change, exc, msg):
    args = dict(c=8)
    args.update(change)
    with pytest.raises(exc, match=msg):
        ki.lrn(X, args.pop("c"), **args)


def test_softmax_rejects_channel_count():
    with pytest.raises(ValueError, match="softmax: c=4 does not fit 2 channel blocks"):
        ki.softmax(X, 4)
