"""Softmax over channels on image tensors (ONNX Softmax along axis 1).

Each pixel (n, h, w) is normalised over its ``c`` true channels, which lie in
lanes ``c % 4`` of blocks ``c // 4``; a channel-only image (N, 1, CB, 1, 4)
holds logits.  The maximum is subtracted before exponentiating; padding lanes
are written as zeros.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _common
from .elementwise import _same_out

__all__ = ["softmax"]


@njit(nogil=True, fastmath=True, cache=True)
def _softmax(x, out, nc):
    nb, h, cb, w, _ = x.shape
    m = np.empty(w, np.float32)
    s = np.empty(w, np.float32)
    for n in range(nb):
        for ih in range(h):
            xr = x[n, ih]
            yr = out[n, ih]
            for i in range(w):
                m[i] = xr[0, i, 0]
                s[i] = 0.0
            for c in range(1, nc):
                for i in range(w):
                    m[i] = max(m[i], xr[c >> 2, i, c & 3])
            for c in range(nc):
                for i in range(w):
                    e = np.exp(xr[c >> 2, i, c & 3] - m[i])
                    yr[c >> 2, i, c & 3] = e
                    s[i] += e
            for i in range(w):
                s[i] = np.float32(1.0) / s[i]
            for c in range(nc):
                for i in range(w):
                    yr[c >> 2, i, c & 3] *= s[i]
            for c in range(nc, 4 * cb):
                for i in range(w):
                    yr[c >> 2, i, c & 3] = 0.0


def softmax(x, c, out=None) -> np.ndarray:
    """Softmax over the ``c`` true channels of an image x (N, H, CB, W, 4), per pixel.

    ``out`` may be ``x`` itself.
    """
    op = "softmax"
    x = _common.image(op, "x", x)
    nc = _common.channels_of(op, "c", c, x.shape[2])
    out = _same_out(op, out, x.shape, x)
    _softmax(x, out, nc)
    return out
