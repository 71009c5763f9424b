"""LRN across channels on either layout (the loops; ``buffer.lrn`` and ``image.lrn`` check arguments).

For channel c the window is [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to
the channels, and ``y = x * (k + alpha/size * sum(x^2 over window))^-beta`` (ONNX LRN).

Each output sums its window's squares directly, in channel order, so NaN and
inf stay where IEEE puts them (a NaN or inf only reaches the channels whose
window holds it; a running sum would carry it on) and every channel region
reproduces the whole output bit for bit.

- NCHW: a channel plane is contiguous, so a block of ``VW`` floats of output
  plane c sums that block of each window plane.
- Images: a block holds ``VW // 4`` pixels of one channel block; the window
  sum for every lane comes from the squares of this block and its two
  neighbours, shifted by channel (``vshift_*``); windows up to 7 channels
  (sizes 1..7) take this path, larger ones a scalar loop.

The power is ``1 / (sqrt(b) * sqrt(sqrt(b)))`` for beta = 0.75 (AlexNet's and
GoogLeNet's LRN), ``1 / sqrt(b)`` for 0.5, ``1 / b`` for 1 and ``b ** -beta``
lane by lane otherwise.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit

from ._simd import (VW, vadd, vdiv, vfma, vload, vload_in, vmul, vshift_m1, vshift_m2, vshift_m3, vshift_p1,
                    vshift_p2, vshift_p3, vsplat, vsqrt, vstore, vstore_first)

__all__ = ["lrn_planes", "lrn_texels"]

#: How ``(k + alpha/size * s)^-beta`` is computed (see the module doc).
POW_075, POW_05, POW_1, POW_ANY = 0, 1, 2, 3


def _pow_mode(beta: float) -> int:
    return {0.75: POW_075, 0.5: POW_05, 1.0: POW_1}.get(beta, POW_ANY)


@njit(nogil=True, cache=True, inline="always")
def _factor(s, k, alpha_n, beta, mode, tmp):
    """(k + alpha_n * s) ** -beta, lane by lane (tmp: VW floats of scratch)."""
    b = vfma(vsplat(alpha_n), s, vsplat(k))
    one = vsplat(np.float32(1.0))
    if mode == POW_075:
        r = vsqrt(b)
        return vdiv(one, vmul(r, vsqrt(r)))
    if mode == POW_05:
        return vdiv(one, vsqrt(b))
    if mode == POW_1:
        return vdiv(one, b)
    vstore(tmp, 0, b)
    for q in range(VW):
        tmp[q] = tmp[q] ** -beta
    return vload(tmp, 0)


@njit(nogil=True, cache=True)
def _lrn_planes(xf, of, tmp, nb, nc, hw, lo, hi, k, alpha_n, beta, mode, q0, q1, c0, c1):
    """Floats [q0, q1) of output planes c0..c1-1 (each plane ``hw`` floats) of ``nb`` images."""
    for n in range(nb):
        for c in range(c0, c1):
            cs, ce = max(c - lo, 0), min(c + hi + 1, nc)
            base = (n * nc + c) * hw
            for q in range(q0, q1, VW):
                safe = (n * nc + ce - 1) * hw + q + VW <= xf.size
                s = vsplat(np.float32(0.0))
                for c2 in range(cs, ce):
                    src = (n * nc + c2) * hw + q
                    v = vload(xf, src) if safe else vload_in(xf, src, 0, xf.size, np.float32(0.0))
                    s = vfma(v, v, s)
                src = base + q
                xv = vload(xf, src) if safe else vload_in(xf, src, 0, xf.size, np.float32(0.0))
                y = vmul(xv, _factor(s, k, alpha_n, beta, mode, tmp))
                if q + VW <= q1:
                    vstore(of, src, y)
                else:
                    vstore_first(of, src, y, q1 - q)


@njit(nogil=True, cache=True, inline="always")
def _squares(xf, src, ok):
    """x^2 of the block at ``src``, or zeros when ``ok`` is false (a block outside the tensor)."""
    if not ok:
        return vsplat(np.float32(0.0))
    v = vload(xf, src)
    return vmul(v, v)


@njit(nogil=True, cache=True)
def _lrn_texels(xf, of, tmp, nb, h, cb, w4, nc, lo, hi, k, alpha_n, beta, mode, r0, r1, b0, b1):
    """Rows [r0, r1) x channel blocks [b0, b1) of an image (N, H, CB, W, 4); ``w4`` = 4*W floats."""
    zero = np.float32(0.0)
    for n in range(nb):
        for hh in range(r0, r1):
            row = (n * h + hh) * cb
            for b in range(b0, b1):
                src0 = (row + b) * w4
                later = (row + b1) * w4  # blocks b+1.. of this row are written after this one
                for q in range(0, w4, VW):
                    src = src0 + q
                    if lo <= 3 and hi <= 3:
                        if q + VW <= w4:
                            cur = _squares(xf, src, True)
                            prev = _squares(xf, src - w4, b > 0)
                            nxt = _squares(xf, src + w4, b + 1 < cb)
                            xv = vload(xf, src)
                        else:  # the row's last block of texels: read only this row
                            xv = vload_in(xf, src, src0, src0 + w4, zero)
                            cur = vmul(xv, xv)
                            prev = vsplat(zero)
                            nxt = vsplat(zero)
                            if b > 0:
                                v = vload_in(xf, src - w4, src0 - w4, src0, zero)
                                prev = vmul(v, v)
                            if b + 1 < cb:
                                v = vload_in(xf, src + w4, src0 + w4, src0 + 2 * w4, zero)
                                nxt = vmul(v, v)
                        s = vsplat(zero)
                        if lo >= 3:
                            s = vadd(s, vshift_m3(prev, cur))
                        if lo >= 2:
                            s = vadd(s, vshift_m2(prev, cur))
                        if lo >= 1:
                            s = vadd(s, vshift_m1(prev, cur))
                        s = vadd(s, cur)
                        if hi >= 1:
                            s = vadd(s, vshift_p1(cur, nxt))
                        if hi >= 2:
                            s = vadd(s, vshift_p2(cur, nxt))
                        if hi >= 3:
                            s = vadd(s, vshift_p3(cur, nxt))
                        y = vmul(xv, _factor(s, k, alpha_n, beta, mode, tmp))
                        if q + VW <= w4 or src + VW <= later:
                            vstore(of, src, y)
                        else:
                            vstore_first(of, src, y, w4 - q)
                    else:  # windows wider than 7 channels
                        for t in range(min(VW, w4 - q)):
                            c = 4 * b + t % 4
                            if c >= nc:
                                of[np.uint64(src + t)] = zero
                                continue
                            sq = zero
                            for c2 in range(max(c - lo, 0), min(c + hi + 1, nc)):
                                v = xf[np.uint64((row + c2 // 4) * w4 + q + (t // 4) * 4 + c2 % 4)]
                                sq += v * v
                            base = k + alpha_n * sq
                            of[np.uint64(src + t)] = xf[np.uint64(src + t)] * base ** -beta


def _params(size, alpha, beta, k):
    lo, hi = (size - 1) // 2, size // 2
    return lo, hi, np.float32(k), np.float32(alpha / size), np.float32(beta), _pow_mode(beta)


_local = threading.local()


def _tmp() -> np.ndarray:
    """``VW`` floats of per-thread scratch for :func:`_factor`'s general power."""
    buf = getattr(_local, "tmp", None)
    if buf is None:
        buf = _local.tmp = np.zeros(VW, np.float32)
    return buf


def lrn_planes(x, out, size, alpha, beta, k, region):
    """LRN of NCHW ``x`` into ``out`` (checked, C-contiguous), output rows [r0, r1) of channels [c0, c1)."""
    nb, nc, h, w = x.shape
    r0, r1, c0, c1 = region
    tmp = _tmp()
    _lrn_planes(x.reshape(-1), out.reshape(-1), tmp, nb, nc, h * w, *_params(size, alpha, beta, k),
                r0 * w, r1 * w, c0, c1)


def lrn_texels(x, out, nc, size, alpha, beta, k, region):
    """LRN of an image ``x`` with ``nc`` true channels into ``out``, rows [r0, r1) of blocks [b0, b1)."""
    nb, h, cb, w, _ = x.shape
    tmp = _tmp()
    _lrn_texels(x.reshape(-1), out.reshape(-1), tmp, nb, h, cb, 4 * w, nc, *_params(size, alpha, beta, k),
                *region)
