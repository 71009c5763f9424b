"""Clip with min > max (ONNX: min(max(x, min), max), so every element becomes max) and with
min == max, in both layouts, whole and by region: NaN stays NaN, as in the reference and
onnxruntime."""
import numpy as np
import pytest

from coinfer.kernels import buffer, image, layout, reference


@pytest.mark.parametrize("lo, hi", [(1.0, -1.0), (0.5, 0.5), (2.0, -np.inf), (np.inf, 3.0)])
@pytest.mark.parametrize("region", [{}, {"rows": (1, 3)}, {"channels": (4, 6)}])
def test_clip_min_above_max_both_layouts(lo, hi, region):
    x = np.random.default_rng(0).standard_normal((1, 6, 4, 3)).astype(np.float32)
    x[0, :, 0, 0] = np.nan
    x[0, 5, 1, :] = np.inf
    want = reference.clip(x, min=lo, max=hi).astype(np.float32)
    r0, r1 = region.get("rows", (0, 4))
    c0, c1 = region.get("channels", (0, 6))
    y = buffer.clip(x, min=lo, max=hi, out=np.zeros_like(x), **region)
    yi = layout.to_buffer(image.clip(layout.to_image(x), min=lo, max=hi, c=6,
                                     out=np.zeros(layout.image_shape(x.shape), np.float32), **region), 6)
    for got in (y, yi):
        part, ref = got[:, c0:c1, r0:r1], want[:, c0:c1, r0:r1]
        np.testing.assert_array_equal(np.isnan(part), np.isnan(ref))
        np.testing.assert_array_equal(np.nan_to_num(part), np.nan_to_num(ref))
