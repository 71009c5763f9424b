"""fully_connected on float32 buffers: ``out = x @ w.T + bias`` (ONNX Gemm, transB=1).

``w`` is (M, K), the row-major layout Gemm stores, so every output is a dot
product of two contiguous rows.  A batch of one is a matrix-vector product
whose cost is reading ``w`` once: ``_gemv`` streams 8 weight rows at a time
against the (cache-resident) input.  Larger batches take 4 inputs by 4 weight
rows per pass (``_gemm4x4``), so each weight vector loaded feeds 4 products.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from .._conv_simd import FASTMATH, WIDTH, vfma, vload, vsum, vzero

_OP = "fully_connected"


@njit(nogil=True, fastmath=FASTMATH, cache=True, inline="always")
def _finish(v, b, relu):
    v += b
    if relu and v < 0.0:
        v = 0.0
    return v


@njit(nogil=True, fastmath=FASTMATH, cache=True, inline="always")
def _gemv(x, xo, w, bias, out, oo, K, c0, c1, relu):
    """out[oo + m] for m in [c0, c1): the dot of x[xo:xo+K] with weight row m."""
    kv = K // WIDTH * WIDTH
    for m0 in range(c0, c1, 8):
        mv = min(8, c1 - m0)
        # Rows past the range repeat the last one, so no read leaves w.
        w0 = m0 * K
        w1 = (m0 + min(1, mv - 1)) * K
        w2 = (m0 + min(2, mv - 1)) * K
        w3 = (m0 + min(3, mv - 1)) * K
        w4 = (m0 + min(4, mv - 1)) * K
        w5 = (m0 + min(5, mv - 1)) * K
        w6 = (m0 + min(6, mv - 1)) * K
        w7 = (m0 + min(7, mv - 1)) * K
        s0 = vzero(); s1 = vzero(); s2 = vzero(); s3 = vzero()
        s4 = vzero(); s5 = vzero(); s6 = vzero(); s7 = vzero()
        for k in range(0, kv, WIDTH):
            xv = vload(x, xo + k)
            s0 = vfma(xv, vload(w, w0 + k), s0)
            s1 = vfma(xv, vload(w, w1 + k), s1)
            s2 = vfma(xv, vload(w, w2 + k), s2)
            s3 = vfma(xv, vload(w, w3 + k), s3)
            s4 = vfma(xv, vload(w, w4 + k), s4)
            s5 = vfma(xv, vload(w, w5 + k), s5)
            s6 = vfma(xv, vload(w, w6 + k), s6)
            s7 = vfma(xv, vload(w, w7 + k), s7)
        sums = (vsum(s0), vsum(s1), vsum(s2), vsum(s3), vsum(s4), vsum(s5), vsum(s6), vsum(s7))
        for i in range(mv):
            v = sums[i]
            wi = (m0 + i) * K
            for k in range(kv, K):
                v += x[xo + k] * w[wi + k]
            out[oo + m0 + i] = _finish(v, bias[m0 + i], relu)


@njit(nogil=True, fastmath=FASTMATH, cache=True, inline="always")
def _gemm4x4(x, w, bias, out, N, K, M, n0, c0, c1, relu):
    """Rows [n0, n0 + 4) of out (clipped to N), columns [c0, c1)."""
    nv = min(4, N - n0)
    kv = K // WIDTH * WIDTH
    x0 = n0 * K
    x1 = (n0 + min(1, nv - 1)) * K
    x2 = (n0 + min(2, nv - 1)) * K
    x3 = (n0 + min(3, nv - 1)) * K
    for m0 in range(c0, c1, 4):
        mv = min(4, c1 - m0)
        w0 = m0 * K
        w1 = (m0 + min(1, mv - 1)) * K
        w2 = (m0 + min(2, mv - 1)) * K
        w3 = (m0 + min(3, mv - 1)) * K
        s00 = vzero(); s01 = vzero(); s02 = vzero(); s03 = vzero()
        s10 = vzero(); s11 = vzero(); s12 = vzero(); s13 = vzero()
        s20 = vzero(); s21 = vzero(); s22 = vzero(); s23 = vzero()
        s30 = vzero(); s31 = vzero(); s32 = vzero(); s33 = vzero()
        for k in range(0, kv, WIDTH):
            b0 = vload(w, w0 + k); b1 = vload(w, w1 + k)
            b2 = vload(w, w2 + k); b3 = vload(w, w3 + k)
            a = vload(x, x0 + k)
            s00 = vfma(a, b0, s00); s01 = vfma(a, b1, s01); s02 = vfma(a, b2, s02); s03 = vfma(a, b3, s03)
            a = vload(x, x1 + k)
            s10 = vfma(a, b0, s10); s11 = vfma(a, b1, s11); s12 = vfma(a, b2, s12); s13 = vfma(a, b3, s13)
            a = vload(x, x2 + k)
            s20 = vfma(a, b0, s20); s21 = vfma(a, b1, s21); s22 = vfma(a, b2, s22); s23 = vfma(a, b3, s23)
            a = vload(x, x3 + k)
            s30 = vfma(a, b0, s30); s31 = vfma(a, b1, s31); s32 = vfma(a, b2, s32); s33 = vfma(a, b3, s33)
        sums = (
            vsum(s00), vsum(s01), vsum(s02), vsum(s03),
            vsum(s10), vsum(s11), vsum(s12), vsum(s13),
            vsum(s20), vsum(s21), vsum(s22), vsum(s23),
            vsum(s30), vsum(s31), vsum(s32), vsum(s33),
        )
        for i in range(nv):
            xi = (n0 + i) * K
            for j in range(mv):
                v = sums[i * 4 + j]
                wj = (m0 + j) * K
                for k in range(kv, K):
                    v += x[xi + k] * w[wj + k]
                out[(n0 + i) * M + m0 + j] = _finish(v, bias[m0 + j], relu)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def fc_kernel(x, w, bias, out, N, K, M, c0, c1, relu):
    """Columns [c0, c1) of ``out`` (N x M, flattened) for all N inputs."""
    for n0 in range(0, N, 4):
        if N - n0 == 1:
            _gemv(x, n0 * K, w, bias, out, n0 * M, K, c0, c1, relu)
        else:
            _gemm4x4(x, w, bias, out, N, K, M, n0, c0, c1, relu)


def checked(x, w, bias, relu, out, channels) -> tuple:
    """The argument checks of :func:`fully_connected` -> (x, w, bias, out, N, K, M, c0, c1, relu)."""
    x = _args.array(_OP, "x", x, 2)
    w = _args.array(_OP, "w", w, 2)
    n, k = x.shape
    m, kw = w.shape
    if kw != k:
        raise ValueError(f"{_OP}: w must have {k} columns to match x {x.shape}, got w {w.shape}")
    if k < 1 or m < 1:
        raise ValueError(f"{_OP}: x and w must not be empty, got x {x.shape}, w {w.shape}")
    b = _args.bias(_OP, bias, m)
    c0, c1 = _args.region(_OP, "channels", channels, m)
    out = _args.output(_OP, out, (n, m), (c0, c1) == (0, m))
    return x, w, b, out, n, k, m, c0, c1, int(bool(relu))


def fully_connected(x, w, bias=None, *, relu=False, out=None, channels=None):
    """``x`` (N, K) times ``w`` (M, K) transposed, plus ``bias`` (M,) -> (N, M).

    ``channels=(c0, c1)`` computes only output columns [c0, c1); other cells of
    ``out`` are left untouched (a new output is zero there).
    """
    x, w, b, out, n, k, m, c0, c1, relu = checked(x, w, bias, relu, out, channels)
    if n == 0 or c0 == c1:
        return out
    fc_kernel(x.reshape(-1), w.reshape(-1), b, out.reshape(-1), n, k, m, c0, c1, relu)
    return out
