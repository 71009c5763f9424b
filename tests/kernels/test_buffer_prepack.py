"""buffer.prepack_weights: weights packed once give the plain OIHW weights' output bit for bit."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.kernels import buffer as kb


@given(st.integers(1, 3), st.integers(1, 12), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 2]),
       st.integers(0, 2**16))
def test_packed_weights_equal_plain_weights(groups, per_group, k, stride, pad, seed):
    rng = np.random.default_rng(seed)
    c, oc = 3 * groups, per_group * groups
    x = rng.standard_normal((1, c, 9, 30), dtype=np.float32)
    w = rng.standard_normal((oc, 3, k, k), dtype=np.float32)
    b = rng.standard_normal(oc, dtype=np.float32)
    packed = kb.prepack_weights(w, groups)
    assert isinstance(packed, kb.PackedWeights) and packed.shape == w.shape
    kw = dict(stride=stride, padding=pad, groups=groups, relu=True)
    want = kb.conv2d(x, w, b, **kw)
    assert kb.conv2d(x, packed, b, **kw).tobytes() == want.tobytes()
    oh = want.shape[2]
    part = kb.conv2d(x, packed, b, **kw, rows=(0, oh // 2))
    kb.conv2d(x, packed, b, **kw, rows=(oh // 2, oh), channels=(0, oc // 2), out=part)
    kb.conv2d(x, packed, b, **kw, rows=(oh // 2, oh), channels=(oc // 2, oc), out=part)
    assert part.tobytes() == want.tobytes()


def test_prepack_weights_rejects_bad_input():
    with pytest.raises(TypeError, match="prepack_weights: w must be a numpy.ndarray"):
        kb.prepack_weights([1.0])
    with pytest.raises(ValueError, match="prepack_weights: w must be 4-D"):
        kb.prepack_weights(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="divisible by groups=2"):
        kb.prepack_weights(np.zeros((3, 1, 3, 3), np.float32), 2)
    with pytest.raises(TypeError, match="prepack_weights: groups"):
        kb.prepack_weights(np.zeros((2, 1, 3, 3), np.float32), 0)
    packed = kb.prepack_weights(np.zeros((4, 2, 3, 3), np.float32), 2)
    with pytest.raises(ValueError, match="conv2d: w was packed for groups=2, got groups=1"):
        kb.conv2d(np.zeros((1, 4, 5, 5), np.float32), packed)
