"""fully_connected on channel-only images (ONNX Gemm with transB).

The input is ``(N, 1, KB, 1, 4)``: its K values are contiguous per batch row.
The weights are ``(MB, K, 4)`` from ``layout.fc_to_image``: block ``mb`` holds
outputs ``4*mb .. 4*mb+3`` for every input, 16 bytes per input.  One call
computes the output blocks of a channel region for every batch row.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import args as _args
from .._conv_simd import FASTMATH
from . import _common
from ._stack import carray, stack_f32

__all__ = ["fully_connected"]

_JB = 4              # output blocks per tile
_ACC = 16 * _JB      # accumulator lanes: (block, input within a step of 4, output lane)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _fc_tile(xe, wf, xb, wb, stride, k_in, res):
    """Partial sums of ``_JB`` output blocks (at ``wb + j*stride`` in w) for one batch row.

    A step takes 4 inputs: 16 filter values per block (4 inputs x 4 outputs,
    contiguous in w) times the 4 inputs each repeated over 4 lanes (``xe``).
    res[16*j + 4*q + k] is the sum over inputs i = q (mod 4) for output lane k
    of block j.
    """
    steps = k_in // 4
    acc = carray(stack_f32(_ACC), (_ACC,))
    for a in range(_ACC):
        acc[a] = 0.0
    for s in range(steps):
        for l in range(16):
            xv = xe[np.uint64(xb + 16 * s + l)]
            for j in range(_JB):
                acc[16 * j + l] += xv * wf[np.uint64(wb + j * stride + 16 * s + l)]
    for a in range(_ACC):
        res[a] = acc[a]


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _fc_region(xf, wf, bias, of, nb, kb, mb_all, k_in, b0, b1, oc, relu):
    """out[:, 0, b0:b1, 0, :] = x @ W.T + bias (then ReLU); lanes >= oc get 0.

    The arrays are flat: ``xf`` the input image (N, 1, KB, 1, 4), ``wf`` the weights
    (MB, K, 4), ``of`` the output image (N, 1, MB, 1, 4) (flat indices compile to
    less code than 5-D ones).  Tiles of ``_JB`` output blocks; each tile runs every
    batch row while its weights are in cache.  A tile never holds fewer blocks: near
    the end it starts earlier and recomputes blocks (or, with fewer than ``_JB``
    blocks in w, repeats one block), so every output is computed by the same
    instructions whatever the region, and regions tile the output exactly.
    """
    k4 = k_in * 4
    # Each input repeated over the 4 output lanes, so a step is one contiguous product.
    xe = np.empty(nb * k4, np.float32)
    for n in range(nb):
        for i in range(k_in):
            v = xf[n * kb * 4 + i]
            for k in range(4):
                xe[n * k4 + 4 * i + k] = v
    tail = 4 * (k_in // 4)
    res = np.empty(_ACC, np.float32)
    bt = b0
    while bt < b1:
        if mb_all >= _JB:
            first = min(bt, mb_all - _JB)
            stride = k4
            stop = min(first + _JB, b1)
        else:
            first = bt
            stride = 0
            stop = bt + 1
        for n in range(nb):
            xb = n * k4
            _fc_tile(xe, wf, xb, first * k4, stride, k_in, res)
            for b in range(bt, stop):
                j = b - first if stride else 0
                wb = b * k4
                for k in range(4):
                    t = res[16 * j + k] + res[16 * j + 4 + k] + res[16 * j + 8 + k] + res[16 * j + 12 + k]
                    for i in range(tail, k_in):
                        t += xe[xb + 4 * i + k] * wf[wb + 4 * i + k]
                    ch = 4 * b + k
                    v = t + bias[ch]
                    if relu and v < 0.0:  # false for NaN: ReLU keeps NaN
                        v = np.float32(0.0)
                    of[(n * mb_all + b) * 4 + k] = v if ch < oc else np.float32(0.0)
        bt = stop


def checked(x, w, bias, relu, out, channels, out_channels) -> tuple:
    """The argument checks of :func:`fully_connected` -> (x, w, padded bias, out, b0, b1, M, relu)."""
    op = "fully_connected"
    x = _common.image(op, "x", x)
    if x.shape[1] != 1 or x.shape[3] != 1:
        raise ValueError(f"{op}: x must be a channel-only image (N, 1, KB, 1, 4), got {x.shape}")
    w = _args.array(op, "w", w, 3)
    mb, k_in, four = w.shape
    if four != 4 or min(w.shape) < 1:
        raise ValueError(f"{op}: w must be (MB, K, 4) with no empty axis, got {w.shape}")
    kb = x.shape[2]
    if not 4 * kb - 3 <= k_in <= 4 * kb:
        raise ValueError(
            f"{op}: w has K={k_in} inputs but x has {kb} channel blocks "
            f"(expected K in {4 * kb - 3}..{4 * kb})"
        )
    if out_channels is None and isinstance(bias, np.ndarray) and bias.ndim == 1:
        out_channels = bias.shape[0]
    m = _common.channels_of(op, "out_channels", out_channels, mb, 4 * mb)
    bias_p = _common.bias_vector(op, bias, m, mb)
    relu = _common.flag(op, "relu", relu)
    b0, b1 = _common.block_region(op, channels, mb, m)
    shape = (x.shape[0], 1, mb, 1, 4)
    out = _args.output(op, out, shape, (b0, b1) == (0, mb))
    return x, w, bias_p, out, b0, b1, m, int(relu)


def fully_connected(x, w, bias=None, *, relu=False, out=None, channels=None,
                    out_channels=None) -> np.ndarray:
    """Gemm with transB on a channel-only image x (N, 1, KB, 1, 4) -> (N, 1, MB, 1, 4).

    ``w`` is (MB, K, 4) with K the true input length (``4*KB - 3 <= K <= 4*KB``).
    ``bias`` is a plain (M,) vector.  The true output count M is ``out_channels``,
    else the length of ``bias``, else ``4*MB``; lanes past it are exact zeros.
    ``channels=(c0, c1)`` (multiples of 4; c1 may be M) computes only those outputs.
    """
    x, w, bias_p, out, b0, b1, m, relu = checked(x, w, bias, relu, out, channels, out_channels)
    if b0 < b1:
        _fc_region(x.reshape(-1), w.reshape(-1), bias_p, out.reshape(-1), x.shape[0], x.shape[2], w.shape[0],
                   w.shape[1], b0, b1, m, relu)
    return out
