"""A compact check of the window kernels (pools, depthwise conv, LRN, softmax) on whatever ISA
this process compiles for.

Run as ``python -m tests.kernels.window_isa_check``; tests/kernels/test_kernel_sets.py
runs it with ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=`` so the AVX2 build of
``kernels/_simd.py`` (two ymm registers per vector value) runs on any host.
Every op, in both layouts, on shapes that take the stride-1, stride-2 and scalar
paths, is compared with the float64 reference on inputs holding NaN and
infinities, and split into row and channel regions (bit-identical to the whole
output).  Prints one JSON line: the ISA and the failures.
"""
from __future__ import annotations

import json

import numpy as np

from coinfer.kernels import buffer as kb
from coinfer.kernels import image as ki
from coinfer.kernels import isa, layout
from coinfer.kernels import reference as ref
from tests.kernels.isa_check import ieee_close


def _check(fails, name, run_buffer, run_image, want, c_out, h_out):
    """Whole output vs the reference, then two rows regions and two channel regions of each layout."""
    for lay, run in (("buffer", run_buffer), ("image", run_image)):
        whole = run()
        got = whole if lay == "buffer" else layout.to_buffer(whole, c_out)
        if not ieee_close(got.reshape(want.shape), want):
            fails.append(f"{name} {lay} vs reference")
        half_c = 4 * max(1, c_out // 8) if lay == "image" else max(1, c_out // 2)
        for key, parts in (("rows", [(0, h_out // 2), (h_out // 2, h_out)]),
                           ("channels", [(0, min(half_c, c_out)), (min(half_c, c_out), c_out)])):
            out = np.full(whole.shape, 7.0, np.float32)
            for part in parts:
                run(out=out, **{key: part})
            if out.tobytes() != whole.tobytes():
                fails.append(f"{name} {lay} {key} regions")


def main() -> None:
    rng = np.random.default_rng(0)
    fails: list[str] = []
    for c, h, w in ((5, 9, 13), (8, 20, 37)):
        x = rng.standard_normal((1, c, h, w), dtype=np.float32)
        x[0, 0, 1, 2], x[0, c - 1, h - 1, 0], x[0, c // 2, 0, w - 1] = np.nan, np.inf, -np.inf
        xi = layout.to_image(x)
        for k, s, p in ((3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 0)):
            kw = dict(stride=s, padding=p)
            for op in ("max_pool2d", "avg_pool2d"):
                want = getattr(ref, op)(x, k, **kw)
                _check(fails, f"{op} {(c, h, w, k, s, p)}",
                       lambda op=op, kw=kw, **r: getattr(kb, op)(x, k, **kw, **r),
                       lambda op=op, kw=kw, **r: getattr(ki, op)(xi, k, **kw, **r), want, c, want.shape[2])
            for mult in (1, 2):
                wt = rng.standard_normal((c * mult, 1, k, k), dtype=np.float32)
                b = rng.standard_normal(c * mult, dtype=np.float32)
                want = ref.conv2d(x, wt, b, groups=c, relu=True, **kw)
                wi = layout.depthwise_to_image(wt)
                _check(fails, f"depthwise x{mult} {(c, h, w, k, s, p)}",
                       lambda wt=wt, b=b, kw=kw, **r: kb.conv2d(x, wt, b, groups=c, relu=True, **kw, **r),
                       lambda wi=wi, b=b, kw=kw, m=mult, **r: ki.conv2d(
                           xi, wi, b, groups=c, out_channels=c * m, relu=True, **kw, **r),
                       want, c * mult, want.shape[2])
        want = ref.lrn(x, size=5, alpha=0.3)
        _check(fails, f"lrn {(c, h, w)}", lambda **r: kb.lrn(x, size=5, alpha=0.3, **r),
               lambda **r: ki.lrn(xi, c, size=5, alpha=0.3, **r), want, c, h)
        want = ref.softmax(x, axis=3)
        _check(fails, f"softmax axis 3 {(c, h, w)}", lambda **r: kb.softmax(x, axis=3, **r),
               lambda **r: ki.softmax(xi, c, axis=3, **r), want, c, h)
        want = ref.global_avg_pool(x)
        for lay, got in (("buffer", kb.global_avg_pool(x)), ("image", layout.to_buffer(ki.global_avg_pool(xi), c))):
            if not ieee_close(got, want):
                fails.append(f"global_avg_pool {(c, h, w)} {lay}")
    print(json.dumps({"isa": isa(), "fails": fails}))


if __name__ == "__main__":
    with np.errstate(invalid="ignore", over="ignore"):
        main()
