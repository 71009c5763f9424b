"""The entries: one C-callable function per kernel family (see ``call``), compiled on first use.

Each ``make_*(salt)`` returns the Python function Numba compiles as a ``cfunc`` of
``call.SIG``.  It rebuilds the arrays of one call from ``iargs`` (addresses and
sizes, in the order the binders of ``buffer`` / ``image`` / ``_window`` pack them),
calls the kernels' ``@njit`` internals with the same argument types the Python
kernels use (so their compiled code is shared, and every output is the same, bit
for bit), and returns 0, or ``EKERNEL`` if an internal raised.  ``salt`` (a hash of
the kernel sources) is part of Numba's cache key; ``salt < 0`` never holds.

Arrays are float32 unless said; ``(addr, n)`` is a flat array of n elements.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.np.numpy_support import carray

from .. import _lrn, _softmax
from .._rowloops import add_rows, clamp_rows
from .._simd import VW
from ..buffer.elementwise import _copy_block
from ..buffer.fc import fc_kernel
from ..image.elementwise import _copy_channels
from ..image.fc import _fc_region
from ..image.softmax import _channel_softmax
from .call import EKERNEL, f32, i64, readonly


@njit(nogil=True, cache=True)
def zero_lanes(out, r0, r1, blk, k0):
    """out[:, r0:r1, blk, :, k0:] = 0 on an image: the padding lanes of its last block."""
    for n in range(out.shape[0]):
        for r in range(r0, r1):
            for x in range(out.shape[3]):
                for k in range(k0, 4):
                    out[n, r, blk, x, k] = 0.0


@njit(nogil=True, cache=True)
def pad_rows(x, xp, lo, pl):
    """xp = input rows [lo, lo + xp rows) of image x, columns padded by ``pl`` on the left,
    zeros outside x (``image.conv``'s padded input rows, as a copy)."""
    nb, h, cb, wd, _ = x.shape
    rows, xw = xp.shape[1], xp.shape[3]
    for n in range(nb):
        for i in range(rows):
            r = lo + i
            for b in range(cb):
                for j in range(xw):
                    c = j - pl
                    inside = 0 <= r < h and 0 <= c < wd
                    for k in range(4):
                        xp[n, i, b, j, k] = x[n, r, b, c, k] if inside else np.float32(0.0)


def make_fc(salt):
    """Fully connected.  a[0] = 0 buffer: (x, nx, w, nw, bias, nbias, out, nout, N, K, M, c0, c1, relu);
    a[0] = 1 image: (x, N, KB, w, MB, K, bias, nbias, out, b0, b1, m, relu)."""

    def fc_entry(ia, fa):
        if salt < 0:
            return EKERNEL
        if ia[0] == 0:
            a = carray(ia, (15,))
            try:
                fc_kernel(carray(f32(a[1]), (a[2],)), carray(f32(a[3]), (a[4],)), carray(f32(a[5]), (a[6],)),
                          carray(f32(a[7]), (a[8],)), a[9], a[10], a[11], a[12], a[13], a[14])
            except Exception:
                return EKERNEL
            return 0
        a = carray(ia, (14,))
        x = carray(f32(a[1]), (a[2] * a[3] * 4,))
        w = carray(f32(a[4]), (a[5] * a[6] * 4,))
        out = carray(f32(a[9]), (a[2] * a[5] * 4,))
        try:
            _fc_region(x, w, carray(f32(a[7]), (a[8],)), out, a[2], a[3], a[5], a[6], a[10], a[11], a[12], a[13])
        except Exception:
            return EKERNEL
        return 0

    return fc_entry


@njit(nogil=True, cache=True)
def repack(x, c, h, w, out, b):
    """An image of an (N, C, H, W) tensor -> the image of its reshape to 2-D (A, B) (flatten): the
    element at flat NCHW index e goes to (e // B, e % B); padding lanes are zero."""
    hw = h * w
    chw = c * hw
    for i in range(out.shape[0]):
        for j in range(out.shape[2] * 4):
            v = np.float32(0.0)
            if j < b:
                e = i * b + j
                n = e // chw
                r = e % chw
                ch = r // hw
                q = r % hw
                v = x[n, q // w, ch >> 2, q % w, ch & 3]
            out[i, 0, j >> 2, 0, j & 3] = v


def make_elementwise(salt):
    """Element-wise loops on 3-D views (A, B, L) (``coinfer.kernels._rowloops``).

    a[0] = 0 clamp: (x, out, A, B, L, use_lo, use_hi, b0, b1, e0, e1), f = (lo, hi), then the
    padding lanes (flag, r0, r1, blk, k0) of out seen as the image (N, H, CB, W, 4);
    a[0] = 1 add: (x, y, out, A, B, L, relu, b0, b1, e0, e1);
    a[0] = 2 image reshape: (x, N, H, CB, W, C, out, A, B4, B) (``repack``).
    """

    def elementwise_entry(ia, fa):
        if salt < 0:
            return EKERNEL
        op = ia[0]
        try:
            if op == 0:
                a = carray(ia, (21,))
                shape = (a[3], a[4], a[5])
                out = carray(f32(a[2]), shape)
                clamp_rows(carray(f32(a[1]), shape), out, np.float32(fa[0]), np.float32(fa[1]), a[6] != 0,
                           a[7] != 0, a[8], a[9], a[10], a[11])
                if a[12]:
                    zero_lanes(carray(f32(a[2]), (a[17], a[18], a[19], a[20], 4)), a[13], a[14], a[15], a[16])
            elif op == 1:
                a = carray(ia, (12,))
                shape = (a[4], a[5], a[6])
                add_rows(carray(f32(a[1]), shape), carray(f32(a[2]), shape), carray(f32(a[3]), shape), a[7] != 0,
                         a[8], a[9], a[10], a[11])
            else:
                a = carray(ia, (11,))
                repack(carray(f32(a[1]), (a[2], a[3], a[4], a[5], 4)), a[6], a[3], a[5],
                       carray(f32(a[7]), (a[8], 1, a[9], 1, 4)), a[10])
        except Exception:
            return EKERNEL
        return 0

    return elementwise_entry


def make_lrn(salt):
    """LRN (``coinfer.kernels._lrn``), f = (k, alpha/size, beta) as float32 values.

    a[0] = 0 NCHW planes: (x, out, n, tmp, nb, nc, hw, lo, hi, mode, q0, q1, c0, c1);
    a[0] = 1 texels: (x, out, n, tmp, nb, h, cb, w4, nc, lo, hi, mode, r0, r1, b0, b1), then the
    padding lanes (flag, r0, r1, blk, k0) of out seen as the image (nb, h, cb, w4 / 4, 4).
    """

    def lrn_entry(ia, fa):
        if salt < 0:
            return EKERNEL
        k, alpha_n, beta = np.float32(fa[0]), np.float32(fa[1]), np.float32(fa[2])
        try:
            if ia[0] == 0:
                a = carray(ia, (15,))
                xf = carray(f32(a[1]), (a[3],))
                of = carray(f32(a[2]), (a[3],))
                _lrn._lrn_planes(xf, of, carray(f32(a[4]), (VW,)), a[5], a[6], a[7], a[8], a[9], k, alpha_n, beta,
                                 a[10], a[11], a[12], a[13], a[14])
            else:
                a = carray(ia, (22,))
                xf = carray(f32(a[1]), (a[3],))
                of = carray(f32(a[2]), (a[3],))
                _lrn._lrn_texels(xf, of, carray(f32(a[4]), (VW,)), a[5], a[6], a[7], a[8], a[9], a[10], a[11], k,
                                 alpha_n, beta, a[12], a[13], a[14], a[15], a[16])
                if a[17]:
                    zero_lanes(carray(f32(a[2]), (a[5], a[6], a[7], a[8] // 4, 4)), a[18], a[19], a[20], a[21])
        except Exception:
            return EKERNEL
        return 0

    return lrn_entry


#: Words per sub-call of the softmax and concat entries.
SUBCALL = 22


def make_softmax(salt):
    """Softmax: a = (x, out, ncalls, then ncalls records of SUBCALL words, then the padding lanes
    (flag, r0, r1, blk, k0, N, H, CB, W) of out as an image).  A record is (0, P, Q, R, L, B, q0,
    q1, r0, r1, b0, b1): ``_softmax`` on the 5-D view (P, Q, R, L, B) over that box; or (1, N, H,
    CB, W, nc, r0, r1): an image's softmax over its ``nc`` channels, rows [r0, r1)."""

    def softmax_entry(ia, fa):
        if salt < 0:
            return EKERNEL
        ncalls = ia[2]
        a = carray(ia, (3 + ncalls * SUBCALL + 9,))
        try:
            for i in range(ncalls):
                c = 3 + i * SUBCALL
                if a[c] == 0:
                    view = (a[c + 1], a[c + 2], a[c + 3], a[c + 4], a[c + 5])
                    _softmax._softmax(carray(f32(a[0]), view), carray(f32(a[1]), view), a[c + 6], a[c + 7],
                                      a[c + 8], a[c + 9], a[c + 10], a[c + 11])
                else:
                    shape = (a[c + 1], a[c + 2], a[c + 3], a[c + 4], 4)
                    _channel_softmax(carray(f32(a[0]), shape), carray(f32(a[1]), shape), a[c + 5], a[c + 6],
                                     a[c + 7])
            t = 3 + ncalls * SUBCALL
            if a[t]:
                zero_lanes(carray(f32(a[1]), (a[t + 5], a[t + 6], a[t + 7], a[t + 8], 4)), a[t + 1], a[t + 2],
                           a[t + 3], a[t + 4])
        except Exception:
            return EKERNEL
        return 0

    return softmax_entry


def make_concat(salt):
    """Concat: a = (out, ncalls, then ncalls records of SUBCALL words, then the padding lanes
    (flag, r0, r1, blk, k0, N, H, CB, W) of out as an image).  A record is (0, src, S0..S3, D0..D3,
    idx (3 x 4)): ``_copy_block`` from the 4-D view S of src into the view D of out; or (1, src,
    N, H, XCB, W, OCB, s0, d0, cnt, r0, r1): ``_copy_channels`` between images."""

    def concat_entry(ia, fa):
        if salt < 0:
            return EKERNEL
        ncalls = ia[1]
        a = carray(ia, (2 + ncalls * SUBCALL + 9,))
        try:
            for i in range(ncalls):
                c = 2 + i * SUBCALL
                if a[c] == 0:
                    src = carray(f32(a[c + 1]), (a[c + 2], a[c + 3], a[c + 4], a[c + 5]))
                    dst = carray(f32(a[0]), (a[c + 6], a[c + 7], a[c + 8], a[c + 9]))
                    _copy_block(src, dst, a[c + 10:c + 22].reshape((3, 4)))
                else:
                    src = carray(f32(a[c + 1]), (a[c + 2], a[c + 3], a[c + 4], a[c + 5], 4))
                    dst = carray(f32(a[0]), (a[c + 2], a[c + 3], a[c + 6], a[c + 5], 4))
                    _copy_channels(src, dst, a[c + 7], a[c + 8], a[c + 9], a[c + 10], a[c + 11])
            t = 2 + ncalls * SUBCALL
            if a[t]:
                zero_lanes(carray(f32(a[0]), (a[t + 5], a[t + 6], a[t + 7], a[t + 8], 4)), a[t + 1], a[t + 2],
                           a[t + 3], a[t + 4])
        except Exception:
            return EKERNEL
        return 0

    return concat_entry
