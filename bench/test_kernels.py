"""Kernel study: coinfer's buffer (and image) kernels against onnxruntime, one thread.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest bench/test_kernels.py --benchmark-only``.

For each layer of ``coinfer.graph.studies.kernels.LAYERS`` (14 convs from
AlexNet, NIN, SqueezeNet and VGG-16, then a max-pool and two FCs), the buffer
kernel is timed by the ``benchmark`` fixture, and then the buffer kernel,
onnxruntime and, when ``coinfer.kernels.image`` provides the op, the image
kernel are timed in alternating rounds in this process, so that every ratio
compares runs made under the same machine state.  GFLOP/s, the ratios and the
share of this ISA's FMA peak (``ks.peak()``: units x lanes x 2 x the clock,
measured again after each layer's timings)
go into ``benchmark.extra_info``; bench/conftest.py prints the table, the ISA
and the peak, with the geometric means over the conv layers.  Before timing, the buffer
output is checked against onnxruntime's.

``COINFER_BENCH_MIN_TIME`` (seconds per timed round, default 0.1) and
``COINFER_BENCH_ROUNDS`` (default 5) trade run time for steadier figures.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from coinfer.graph.studies import kernels as ks

MIN_TIME = float(os.environ.get("COINFER_BENCH_MIN_TIME", "0.1"))
ROUNDS = int(os.environ.get("COINFER_BENCH_ROUNDS", "5"))

_IMAGE_OPS = ("conv2d", "max_pool2d", "fully_connected")


def _image_runner(layer, inputs):
    """The image-kernel runner, or None while coinfer.kernels.image lacks the op."""
    try:
        from coinfer.kernels import image

        if not all(hasattr(image, op) for op in _IMAGE_OPS):
            return None
        return ks.ours_runner(layer, inputs, layout="image")
    except (ImportError, AttributeError, NotImplementedError):
        return None


@pytest.mark.parametrize("layer", ks.LAYERS, ids=[lay.name for lay in ks.LAYERS])
def test_kernel_vs_onnxruntime(benchmark, kernel_study_rows, layer):
    inputs = ks.make_inputs(layer)
    buffer = ks.ours_runner(layer, inputs, layout="buffer")
    ort = ks.ort_runner(layer, inputs)
    image = _image_runner(layer, inputs)

    want = np.asarray(ort(), np.float64)
    got = np.asarray(buffer(), np.float64)
    tol = 1e-4 * np.abs(want).max() + 1e-6
    assert np.abs(got - want).max() <= tol, f"{layer.name}: buffer output differs from onnxruntime"

    benchmark(buffer)

    runners = {"buffer": buffer, "ort": ort}
    if image is not None:
        runners["image"] = image
    sec = ks.time_interleaved(runners, min_time=MIN_TIME, rounds=ROUNDS)
    peak = ks.peak(fresh=True)  # the clock right after the timings, under the same load
    gflops = {name: layer.flops() / s / 1e9 for name, s in sec.items()}
    row = {
        "layer": layer.name,
        "kind": layer.kind,
        "shape": layer.describe(),
        "gflops_buffer": gflops["buffer"],
        "gflops_ort": gflops["ort"],
        "gflops_image": gflops.get("image"),
        "ratio_buffer_ort": sec["ort"] / sec["buffer"],
        "ratio_image_ort": sec["ort"] / sec["image"] if "image" in sec else None,
        "isa": peak["isa"],
        "clock_ghz": peak["clock_ghz"],
        "peak_gflops": peak["peak_gflops"],
        "peak_share_buffer": ks.peak_share(gflops["buffer"], peak),
        "peak_share_image": ks.peak_share(gflops.get("image"), peak),
    }
    benchmark.extra_info.update(row)
    kernel_study_rows.append(row)


_PATHS = {"host": {}, "avx2": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}}
_COLD: dict = {}


@pytest.mark.parametrize("path", list(_PATHS))
def test_cold_compile(benchmark, study_table, path):
    """Seconds to import and first-call every kernel with an empty Numba cache, per ISA path."""
    if not _COLD:
        study_table("cold compile of the whole kernel set (empty Numba cache, one process)",
                    lambda: [f"{p:>5s} path ({v['isa']}): {v['wall_s']:.1f} s wall, {v['cpu_s']:.1f} s CPU"
                             for p, v in _COLD.items()])
    got = {}

    def run():
        got.update(ks.cold_compile(_PATHS[path]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    which = ks.peak()["isa"] if path == "host" else path
    _COLD[path] = {"isa": which, **got}
    benchmark.extra_info.update({"path": path, "isa": which, "cold_compile_s": got["wall_s"],
                                 "cold_compile_cpu_s": got["cpu_s"]})
