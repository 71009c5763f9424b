"""A compact check of the conv and FC kernels on whatever ISA this process compiles for.

Run as ``python -m tests.kernels.isa_check [conv] [fc]`` (default both);
tests/kernels/test_isa.py runs it with ``NUMBA_CPU_NAME=haswell
NUMBA_CPU_FEATURES=`` to exercise the AVX2 tiles on any host.  Every conv
conv (1x1 read in place, wide, narrow, strided; weights plain and prepacked),
FC at batch 1 and 3, and image conv and FC are compared with the
float64 reference, split into row and channel regions (bit-identical to the
whole output), and fed NaN and infinities with ReLU.  Prints one JSON line: the ISA, the tiles, the
failures, and the Numba cache hits and misses of the entry kernels.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from coinfer.kernels import buffer as kb
from coinfer.kernels import image as ki
from coinfer.kernels import isa, layout
from coinfer.kernels import reference as ref

# (C, H, W, OC, K, stride, pad): 1x1 read in place, wide, narrow, strided.
CONVS = [(19, 7, 9, 13, 1, 1, 0), (5, 6, 40, 10, 3, 1, 1), (7, 9, 9, 21, 3, 1, 1),
         (3, 11, 11, 8, 5, 2, 0)]


def ieee_close(y, want) -> bool:
    """NaN where the reference has NaN, the same infinities, the rest within the project tolerance."""
    y, want = np.asarray(y, np.float64), np.asarray(want, np.float64)
    inf, finite = np.isinf(want), np.isfinite(want)
    if not (np.array_equal(np.isnan(y), np.isnan(want)) and np.array_equal(y[inf], want[inf])):
        return False
    tol = 1e-4 * (np.abs(want[finite]).max() if finite.any() else 0.0) + 1e-6
    return bool(np.all(np.abs(y[finite] - want[finite]) <= tol))


def _same(a, b) -> bool:
    return a.tobytes() == b.tobytes()


def _conv_cases(rng, fails):
    for c, h, w, oc, k, s, p in CONVS:
        x = rng.standard_normal((1, c, h, w), dtype=np.float32)
        x[0, 0, 1, 2], x[0, c - 1, h - 1, 0], x[0, c // 2, 0, w - 1] = np.nan, np.inf, -np.inf
        wt = rng.standard_normal((oc, c, k, k), dtype=np.float32)
        b = rng.standard_normal(oc, dtype=np.float32)
        kw = dict(stride=s, padding=p, relu=True)
        want = ref.conv2d(x, wt, b, **kw)
        whole = kb.conv2d(x, wt, b, **kw)
        oh = whole.shape[2]
        parts = kb.conv2d(x, wt, b, **kw, rows=(0, oh // 2))
        kb.conv2d(x, wt, b, **kw, rows=(oh // 2, oh), out=parts)
        chans = kb.conv2d(x, wt, b, **kw, channels=(0, 5))
        kb.conv2d(x, wt, b, **kw, channels=(5, oc), out=chans)
        name = f"buffer conv {(c, h, w, oc, k, s, p)}"
        if not ieee_close(whole, want):
            fails.append(name + " vs reference")
        if not (_same(whole, parts) and _same(whole, chans)):
            fails.append(name + " regions")
        if not _same(whole, kb.conv2d(x, kb.prepack_weights(wt), b, **kw)):
            fails.append(name + " prepacked weights")
        xi, wi = layout.to_image(x), ki.prepack_filter(layout.filter_to_image(wt))
        yi = ki.conv2d(xi, wi, b, out_channels=oc, **kw)
        ri = ki.conv2d(xi, wi, b, out_channels=oc, **kw, rows=(0, oh // 2))
        ki.conv2d(xi, wi, b, out_channels=oc, **kw, rows=(oh // 2, oh), out=ri)
        ci = ki.conv2d(xi, wi, b, out_channels=oc, **kw, channels=(0, 4))
        ki.conv2d(xi, wi, b, out_channels=oc, **kw, channels=(4, oc), out=ci)
        name = f"image conv {(c, h, w, oc, k, s, p)}"
        if not ieee_close(layout.to_buffer(yi, oc), want):
            fails.append(name + " vs reference")
        if not (_same(yi, ri) and _same(yi, ci)):
            fails.append(name + " regions")


def _fc_cases(rng, fails):
    for n in (1, 3):
        x = rng.standard_normal((n, 37), dtype=np.float32)
        x[0, 3], x[n - 1, 30] = np.nan, -np.inf
        w = rng.standard_normal((21, 37), dtype=np.float32)
        b = rng.standard_normal(21, dtype=np.float32)
        want = ref.fully_connected(x, w, b, relu=True)
        y = kb.fully_connected(x, w, b, relu=True)
        yc = kb.fully_connected(x, w, b, relu=True, channels=(0, 8))
        kb.fully_connected(x, w, b, relu=True, channels=(8, 21), out=yc)
        if not ieee_close(y, want) or not _same(y, yc):
            fails.append(f"buffer fc batch {n}")
        yi = ki.fully_connected(layout.to_image(x.reshape(n, 37, 1, 1)), layout.fc_to_image(w), b, relu=True)
        if not ieee_close(layout.to_buffer(yi, 21).reshape(n, 21), want):
            fails.append(f"image fc batch {n}")


def _cache_stats() -> dict:
    from coinfer.kernels.buffer import _conv_pixels, fc
    from coinfer.kernels.image import _conv_tiles

    fns = [_conv_pixels.conv_pixels, fc.fc_kernel, _conv_tiles.conv_region]
    return {"hits": sum(sum(f.stats.cache_hits.values()) for f in fns),
            "misses": sum(sum(f.stats.cache_misses.values()) for f in fns)}


def main(parts) -> None:
    from coinfer.kernels import _tiles

    rng = np.random.default_rng(0)
    fails: list[str] = []
    with np.errstate(invalid="ignore", over="ignore"):
        if "conv" in parts:
            _conv_cases(rng, fails)
        if "fc" in parts:
            _fc_cases(rng, fails)
    print(json.dumps({"isa": isa(), "tile": [_tiles.WIDE_MR, _tiles.WIDE_LANES],
                      "fails": fails, **_cache_stats()}))


if __name__ == "__main__":
    main(set(sys.argv[1:]) or {"conv", "fc"})
