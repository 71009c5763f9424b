"""image.prepack_filter: a filter packed once gives the plain filter image's output bit for bit."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.kernels import image as ki
from coinfer.kernels import layout


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 3), st.integers(0, 2**16))
def test_packed_filter_equals_plain_filter(c, oc, k, seed):
    rng = np.random.default_rng(seed)
    x = layout.to_image(rng.standard_normal((1, c, 6, 7), dtype=np.float32))
    wi = layout.filter_to_image(rng.standard_normal((oc, c, k, k), dtype=np.float32))
    packed = ki.prepack_filter(wi)
    assert isinstance(packed, ki.PackedFilter) and packed.shape == wi.shape
    kw = dict(padding=1, relu=True, out_channels=oc)
    want = ki.conv2d(x, wi, **kw)
    assert ki.conv2d(x, packed, **kw).tobytes() == want.tobytes()
    ob = want.shape[2]
    part = ki.conv2d(x, packed, **kw, rows=(0, 2))
    ki.conv2d(x, packed, **kw, rows=(2, want.shape[1]), out=part)
    assert part.tobytes() == want.tobytes()
    if ob > 1:
        part = ki.conv2d(x, packed, **kw, channels=(0, 4))
        ki.conv2d(x, packed, **kw, channels=(4, oc), out=part)
        assert part.tobytes() == want.tobytes()


def test_prepack_filter_rejects_bad_input():
    with pytest.raises(TypeError, match="prepack_filter: w"):
        ki.prepack_filter([1, 2])
    with pytest.raises(TypeError, match="prepack_filter: w must have dtype float32"):
        ki.prepack_filter(np.zeros((1, 1, 1, 4, 4)))
    with pytest.raises(ValueError, match="prepack_filter: w must be a filter image"):
        ki.prepack_filter(np.zeros((1, 1, 1, 4, 3), np.float32))
    packed = ki.prepack_filter(np.zeros((1, 3, 3, 8, 4), np.float32))
    x = layout.to_image(np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="conv2d: w has 8 input channels but x has 1 channel blocks"):
        ki.conv2d(x, packed)
    with pytest.raises(ValueError, match="conv2d: groups must be 1"):
        ki.conv2d(layout.to_image(np.zeros((1, 8, 5, 5), np.float32)), packed, groups=2)
