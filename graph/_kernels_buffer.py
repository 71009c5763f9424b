"""Kernel-study runners on the buffer kernel set."""
from __future__ import annotations

import numpy as np

from ..kernels import buffer as kb


def runner(layer, inputs):
    x = inputs["x"]
    out = np.empty(layer.out_shape(), np.float32)
    if layer.kind == "conv":
        w, b = inputs["w"], inputs["b"]
        return lambda: kb.conv2d(x, w, b, stride=layer.stride, padding=layer.pad, out=out)
    if layer.kind == "maxpool":
        return lambda: kb.max_pool2d(x, layer.r, stride=layer.stride, padding=layer.pad, out=out)
    w, b = inputs["w"], inputs["b"]
    return lambda: kb.fully_connected(x, w, b, out=out)
