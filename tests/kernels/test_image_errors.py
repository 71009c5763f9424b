"""Bad input to the image kernels raises ValueError/TypeError naming the op and the argument."""
import numpy as np
import pytest

from coinfer.kernels import image as ki


def img(n=1, h=6, cb=2, w=6):
    return np.zeros((n, h, cb, w, 4), np.float32)


X = img()                                         # 8 channels, 6x6


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
