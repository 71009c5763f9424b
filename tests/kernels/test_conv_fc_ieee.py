"""NaN and infinities through conv and FC in both layouts, with and without the fused ReLU.

The rule is IEEE arithmetic, as the float64 reference computes it: NaN
propagates (ReLU keeps NaN: ``np.maximum(NaN, 0)`` is NaN), +inf and -inf
give inf, or NaN where they meet each other or a zero weight; padding is zeros.
The convs cover a 1x1 read in place, wide and narrow outputs and a stride.
"""
import numpy as np
import pytest

from coinfer.kernels import buffer as kb
from coinfer.kernels import image as ki
from coinfer.kernels import layout
from coinfer.kernels import reference as ref
from tests.kernels.isa_check import CONVS, ieee_close

SPECIALS = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf}


def _conv_problem(geometry, special, where, seed=1):
    c, h, w, oc, k, s, p = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((oc, c, k, k), dtype=np.float32)
    b = rng.standard_normal(oc, dtype=np.float32)
    if where == "x":
        x[0, c // 2, h // 2, w // 3] = SPECIALS[special]
        x[0, 0, h - 1, w - 1] = SPECIALS[special]
    else:
        wt[oc // 2, c - 1, k // 2, 0] = SPECIALS[special]
    return x, wt, b, dict(stride=s, padding=p)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("where", ["x", "w"])
@pytest.mark.parametrize("special", list(SPECIALS))
@pytest.mark.parametrize("geometry", CONVS, ids=["1x1", "wide", "narrow", "strided"])
def test_conv_specials_match_reference(geometry, special, where, relu):
    x, wt, b, kw = _conv_problem(geometry, special, where)
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.conv2d(x, wt, b, relu=relu, **kw)
    assert not np.isfinite(want).all()
    y = kb.conv2d(x, wt, b, relu=relu, **kw)
    assert ieee_close(y, want), "buffer conv"
    oc = wt.shape[0]
    yi = ki.conv2d(layout.to_image(x), layout.filter_to_image(wt), b, relu=relu, out_channels=oc, **kw)
    assert ieee_close(layout.to_buffer(yi, oc), want), "image conv"
    assert np.all(yi[:, :, -1, :, oc % 4 or 4:] == 0.0), "padding lanes must stay zero"


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("special", list(SPECIALS))
@pytest.mark.parametrize("n", [1, 3])
def test_fc_specials_match_reference(n, special, relu):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 40), dtype=np.float32)
    w = rng.standard_normal((13, 40), dtype=np.float32)
    b = rng.standard_normal(13, dtype=np.float32)
    x[n - 1, 17] = SPECIALS[special]
    w[5, 33] = SPECIALS[special]
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.fully_connected(x, w, b, relu=relu)
    assert ieee_close(kb.fully_connected(x, w, b, relu=relu), want), "buffer fc"
    yi = ki.fully_connected(layout.to_image(x.reshape(n, 40, 1, 1)), layout.fc_to_image(w), b, relu=relu)
    assert ieee_close(layout.to_buffer(yi, 13).reshape(n, 13), want), "image fc"


def test_relu_keeps_nan_and_clamps_minus_inf():
    """A 1x1 identity conv: ReLU maps NaN -> NaN, -inf -> 0, +inf -> +inf, -0.5 -> 0."""
    x = np.array([np.nan, -np.inf, np.inf, -0.5, 2.0], np.float32).reshape(1, 1, 1, 5)
    w = np.ones((1, 1, 1, 1), np.float32)
    want = np.array([np.nan, 0.0, np.inf, 0.0, 2.0])
    y = kb.conv2d(x, w, relu=True).reshape(-1)
    assert ieee_close(y, want)
    yi = ki.conv2d(layout.to_image(x), layout.filter_to_image(w), relu=True, out_channels=1)
    assert ieee_close(layout.to_buffer(yi, 1).reshape(-1), want)
    # Without ReLU, -inf stays -inf (no clamp at -FLT_MAX).
    yi = ki.conv2d(layout.to_image(x), layout.filter_to_image(w), out_channels=1)
    assert ieee_close(layout.to_buffer(yi, 1).reshape(-1), x.reshape(-1))
