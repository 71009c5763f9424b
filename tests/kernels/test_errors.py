"""Bad input to the buffer pool / elementwise / LRN / softmax / resize kernels.

Each rule raises ValueError or TypeError with a message naming the op and the
argument; none reaches a kernel (no IndexError, no crash).
"""
from __future__ import annotations

import numpy as np
import pytest

from coinfer.kernels import buffer as B

X = np.ones((2, 5, 6, 7), np.float32)


def readonly(shape):
    a = np.zeros(shape, np.float32)
    a.flags.writeable = False
    return a


def fortran(shape):
    return np.asfortranarray(np.zeros(shape, np.float32))


POOL_OUT = (2, 5, 3, 3)  # max_pool2d(X, 2)

CASES = [
    # --- input array: type, dtype, rank, empty axes
    ("max_pool2d x list", lambda: B.max_pool2d(X.tolist(), 2), TypeError, r"max_pool2d: x .*ndarray"),
    ("max_pool2d x float64", lambda: B.max_pool2d(X.astype(np.float64), 2), TypeError, r"max_pool2d: x .*float32.*float64"),
    ("avg_pool2d x 3-D", lambda: B.avg_pool2d(X[0], 2), ValueError, r"avg_pool2d: x must be 4-D"),
    ("avg_pool2d x empty", lambda: B.avg_pool2d(X[:, :0], 2), ValueError, r"avg_pool2d: x .*empty"),
    ("global_avg_pool x int", lambda: B.global_avg_pool(X.astype(np.int32)), TypeError, r"global_avg_pool: x"),
    ("global_avg_pool x 2-D", lambda: B.global_avg_pool(X[0, 0]), ValueError, r"global_avg_pool: x must be 4-D"),
    ("global_avg_pool x empty", lambda: B.global_avg_pool(X[:, :, :0]), ValueError, r"global_avg_pool: x .*empty"),
    ("relu x float16", lambda: B.relu(X.astype(np.float16)), TypeError, r"relu: x .*float32"),
    ("relu x scalar", lambda: B.relu(np.float32(1.0)), TypeError, r"relu: x .*ndarray"),
    ("relu x 0-D", lambda: B.relu(np.array(1.0, np.float32)), ValueError, r"relu: x .*at least 1 axis"),
    ("add b float64", lambda: B.add(X, X.astype(np.float64)), TypeError, r"add: b .*float32"),
    ("lrn x 2-D", lambda: B.lrn(X[0, 0]), ValueError, r"lrn: x must be 4-D"),
    ("lrn x empty", lambda: B.lrn(X[:, :0]), ValueError, r"lrn: x .*empty"),
    ("softmax x int", lambda: B.softmax(np.ones((2, 3), np.int64)), TypeError, r"softmax: x .*float32"),
    ("softmax x 0-D", lambda: B.softmax(np.array(1.0, np.float32)), ValueError, r"softmax: x .*at least 1 axis"),
    ("resize x 3-D", lambda: B.resize(X[0], (3, 3)), ValueError, r"resize: x must be 4-D"),
    ("resize x empty", lambda: B.resize(X[:0], (3, 3)), ValueError, r"resize: x .*empty"),
    # --- pool geometry
    ("max_pool2d kernel 0", lambda: B.max_pool2d(X, 0), ValueError, r"max_pool2d: kernel must be >= 1"),
    ("max_pool2d kernel float", lambda: B.max_pool2d(X, 2.0), TypeError, r"max_pool2d: kernel must be an int"),
    ("max_pool2d kernel triple", lambda: B.max_pool2d(X, (2, 2, 2)), TypeError, r"max_pool2d: kernel"),
    ("avg_pool2d stride 0", lambda: B.avg_pool2d(X, 2, stride=0), ValueError, r"avg_pool2d: stride must be >= 1"),
    ("avg_pool2d stride negative pair", lambda: B.avg_pool2d(X, 2, stride=(1, -1)), ValueError, r"avg_pool2d: stride"),
    ("max_pool2d padding negative", lambda: B.max_pool2d(X, 3, padding=-1), ValueError, r"max_pool2d: padding must be non-negative"),
    ("max_pool2d padding 3-tuple", lambda: B.max_pool2d(X, 3, padding=(1, 1, 1)), TypeError, r"max_pool2d: padding must be"),
    ("avg_pool2d padding >= kernel", lambda: B.avg_pool2d(X, 2, padding=(0, 0, 2, 0)), ValueError, r"avg_pool2d: padding must be smaller than kernel"),
    ("max_pool2d kernel larger than padded input", lambda: B.max_pool2d(X, (9, 2)), ValueError, r"max_pool2d: kernel .* does not fit"),
    ("max_pool2d ceil_mode string", lambda: B.max_pool2d(X, 2, ceil_mode="yes"), TypeError, r"max_pool2d: ceil_mode must be a bool"),
    ("avg_pool2d count_include_pad 2", lambda: B.avg_pool2d(X, 2, count_include_pad=2), TypeError, r"avg_pool2d: count_include_pad must be a bool"),
    # --- regions
    ("max_pool2d rows past end", lambda: B.max_pool2d(X, 2, rows=(0, 4)), ValueError, r"max_pool2d: rows must satisfy"),
    ("max_pool2d rows reversed", lambda: B.max_pool2d(X, 2, rows=(2, 1)), ValueError, r"max_pool2d: rows must satisfy"),
    ("avg_pool2d rows negative", lambda: B.avg_pool2d(X, 2, rows=(-1, 2)), ValueError, r"avg_pool2d: rows must satisfy"),
    ("avg_pool2d channels past end", lambda: B.avg_pool2d(X, 2, channels=(0, 6)), ValueError, r"avg_pool2d: channels must satisfy"),
    ("max_pool2d channels int", lambda: B.max_pool2d(X, 2, channels=3), TypeError, r"max_pool2d: channels must be a pair"),
    ("max_pool2d rows floats", lambda: B.max_pool2d(X, 2, rows=(0.0, 1.0)), TypeError, r"max_pool2d: rows must be a pair"),
    ("lrn rows past end", lambda: B.lrn(X, rows=(0, 7)), ValueError, r"lrn: rows must satisfy"),
    ("lrn channels reversed", lambda: B.lrn(X, channels=(4, 3)), ValueError, r"lrn: channels must satisfy"),
    # --- out
    ("max_pool2d out wrong shape", lambda: B.max_pool2d(X, 2, out=np.zeros((2, 5, 3, 4), np.float32)), ValueError, r"max_pool2d: out must have shape \(2, 5, 3, 3\)"),
    ("max_pool2d out float64", lambda: B.max_pool2d(X, 2, out=np.zeros(POOL_OUT)), TypeError, r"max_pool2d: out must have dtype float32"),
    ("avg_pool2d out non-contiguous", lambda: B.avg_pool2d(X, 2, out=fortran(POOL_OUT)), ValueError, r"avg_pool2d: out must be C-contiguous"),
    ("avg_pool2d out read-only", lambda: B.avg_pool2d(X, 2, out=readonly(POOL_OUT)), ValueError, r"avg_pool2d: out must be writeable"),
    ("max_pool2d out list", lambda: B.max_pool2d(X, 2, out=[0.0]), TypeError, r"max_pool2d: out must be a numpy.ndarray"),
    ("max_pool2d out overlaps x", lambda: _pool_into_input(), ValueError, r"max_pool2d: out must not overlap x"),
    ("global_avg_pool out wrong shape", lambda: B.global_avg_pool(X, out=np.zeros((2, 5), np.float32)), ValueError, r"global_avg_pool: out must have shape"),
    ("relu out wrong shape", lambda: B.relu(X, out=np.zeros((2, 5, 6), np.float32)), ValueError, r"relu: out must have shape"),
    ("relu out non-contiguous", lambda: B.relu(X, out=fortran(X.shape)), ValueError, r"relu: out must be C-contiguous"),
    ("add out read-only", lambda: B.add(X, X, out=readonly(X.shape)), ValueError, r"add: out must be writeable"),
    ("concat out wrong shape", lambda: B.concat([X, X], out=np.zeros(X.shape, np.float32)), ValueError, r"concat: out must have shape"),
    ("lrn out float64", lambda: B.lrn(X, out=np.zeros(X.shape)), TypeError, r"lrn: out must have dtype"),
    ("lrn out is x", lambda: _lrn_in_place(), ValueError, r"lrn: out must not overlap x"),
    ("relu out overlaps x partially", lambda: _shifted("relu"), ValueError, r"relu: out must be an input itself or not overlap"),
    ("add out overlaps b partially", lambda: _shifted("add"), ValueError, r"add: out must be an input itself or not overlap"),
    ("softmax out overlaps x partially", lambda: _shifted("softmax"), ValueError, r"softmax: out must be x itself or not overlap"),
    ("concat out overlaps an input", lambda: _shifted("concat"), ValueError, r"concat: out must not overlap an input"),
    ("softmax out wrong shape", lambda: B.softmax(X, out=np.zeros((2, 5), np.float32)), ValueError, r"softmax: out must have shape"),
    ("resize out wrong shape", lambda: B.resize(X, (3, 3), out=np.zeros((2, 5, 3, 4), np.float32)), ValueError, r"resize: out must have shape \(2, 5, 3, 3\)"),
    ("resize out overlaps x", lambda: _resize_in_place(), ValueError, r"resize: out must not overlap x"),
    # --- per-op arguments
    ("add shapes differ", lambda: B.add(X, X[:, :4]), ValueError, r"add: b must have the shape of a"),
    ("add relu string", lambda: B.add(X, X, relu="no"), TypeError, r"add: relu must be a bool"),
    ("concat empty list", lambda: B.concat([]), TypeError, r"concat: xs must be a non-empty list"),
    ("concat not a list", lambda: B.concat(X), TypeError, r"concat: xs must be a non-empty list"),
    ("concat shapes differ off axis", lambda: B.concat([X, X[:, :, :3]], axis=1), ValueError, r"concat: xs\[1\] shape"),
    ("concat ranks differ", lambda: B.concat([X, X[0]], axis=1), ValueError, r"concat: xs\[1\] shape"),
    ("concat axis out of range", lambda: B.concat([X, X], axis=4), ValueError, r"concat: axis must be in \[-4, 3\]"),
    ("concat axis float", lambda: B.concat([X, X], axis=1.0), TypeError, r"concat: axis must be an int"),
    ("concat xs dtype", lambda: B.concat([X, X.astype(np.float64)]), TypeError, r"concat: xs\[1\] .*float32"),
    ("lrn size 0", lambda: B.lrn(X, size=0), ValueError, r"lrn: size must be >= 1"),
    ("lrn size float", lambda: B.lrn(X, size=5.0), TypeError, r"lrn: size must be an int"),
    ("lrn k zero", lambda: B.lrn(X, k=0.0), ValueError, r"lrn: k must be a finite positive"),
    ("lrn alpha string", lambda: B.lrn(X, alpha="1e-4"), TypeError, r"lrn: alpha must be a number"),
    ("lrn beta nan", lambda: B.lrn(X, beta=float("nan")), ValueError, r"lrn: beta must be a finite"),
    ("softmax axis out of range", lambda: B.softmax(X[0, 0], axis=2), ValueError, r"softmax: axis must be in \[-2, 1\]"),
    ("softmax axis None", lambda: B.softmax(X, axis=None), TypeError, r"softmax: axis must be an int"),
    ("resize mode unknown", lambda: B.resize(X, (3, 3), mode="nearest"), ValueError, r"resize: mode must be one of"),
    ("resize size zero", lambda: B.resize(X, (0, 3)), ValueError, r"resize: size must be >= 1"),
    ("resize size triple", lambda: B.resize(X, (3, 3, 3)), TypeError, r"resize: size must be an int or a pair"),
]


def _shifted(op):
    """Call ``op`` with out one element past its input inside the same buffer."""
    buf = np.zeros(2 * X.size + 1, np.float32)
    x, out = buf[:X.size].reshape(X.shape), buf[1:X.size + 1].reshape(X.shape)
    if op == "relu":
        B.relu(x, out=out)
    elif op == "add":
        B.add(X, x, out=out)
    elif op == "softmax":
        B.softmax(x, out=out)
    else:
        B.concat([x[:1], x[1:]], axis=0, out=out)


def _pool_into_input():
    x = X.copy()
    B.max_pool2d(x, 2, out=x.reshape(-1)[:np.prod(POOL_OUT)].reshape(POOL_OUT))


def _lrn_in_place():
    x = X.copy()
    B.lrn(x, out=x)


def _resize_in_place():
    x = X.copy()
    B.resize(x, (6, 7), out=x)


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_bad_input_leaves_out_untouched():
    out = np.full((2, 5, 3, 3), 3.0, np.float32)
    with pytest.raises(ValueError):
        B.max_pool2d(X, 2, out=out, rows=(0, 9))
    assert (out == 3.0).all()
