"""Kernel-study runners on the image kernel set (conversions done once, outside the call)."""
from __future__ import annotations

import numpy as np

from ..kernels import image as ki
from ..kernels import layout


def runner(layer, inputs):
    if layer.kind == "fc":
        n, k = inputs["x"].shape
        x_img = layout.to_image(inputs["x"].reshape(n, k, 1, 1))
        w_img = layout.fc_to_image(inputs["w"])
        b = inputs["b"]
        out = np.zeros(layout.image_shape((n, layer.fc_out, 1, 1)), np.float32)
        return lambda: ki.fully_connected(x_img, w_img, b, out=out, out_channels=layer.fc_out)
    x_img = layout.to_image(inputs["x"])
    out = np.zeros(layout.image_shape(layer.out_shape()), np.float32)
    if layer.kind == "conv":
        w_img = layout.filter_to_image(inputs["w"])
        b = inputs["b"]
        return lambda: ki.conv2d(x_img, w_img, b, stride=layer.stride, padding=layer.pad, out=out, out_channels=layer.k)
    return lambda: ki.max_pool2d(x_img, layer.r, stride=layer.stride, padding=layer.pad, out=out)
