"""The kernel packages: public names, compiled signatures, and the window kernels' AVX2 build."""
from __future__ import annotations

import importlib
import sys

import pytest

from coinfer.kernels import buffer as B


def test_package_attributes_are_the_kernels():
    """``coinfer.kernels.buffer.<name>`` is the function, even where a submodule shares the name."""
    for name in B.__all__:
        f = getattr(B, name)
        assert callable(f) and not isinstance(f, type(sys)), name
    for name in ("lrn", "softmax", "resize"):
        mod = importlib.import_module(f"coinfer.kernels.buffer.{name}")
        assert getattr(B, name) is getattr(mod, name)
    assert "clip" in B.__all__ and B.clip is importlib.import_module("coinfer.kernels.buffer.elementwise").clip


def test_one_compiled_signature_per_kernel():
    from coinfer.kernels import _pool
    from coinfer.kernels.buffer import elementwise
    for k in (elementwise._clamp, elementwise._add, elementwise._copy_block, *_pool._KERNELS.values()):
        assert len(k.signatures) <= 1, (k.py_func.__name__, k.signatures)


def test_window_kernels_compile_one_signature_each():
    """Pools, depthwise conv, LRN and softmax: one compiled kernel per loop, serving both layouts."""
    from coinfer.graph.studies.kernels import call_every_kernel
    from coinfer.kernels import _depthwise, _lrn, _pool, _softmax

    call_every_kernel()
    kernels = [*_pool._KERNELS.values(), *_depthwise._KERNELS.values(), _lrn._lrn_planes, _lrn._lrn_texels,
               _softmax._softmax]
    for k in kernels:
        assert len(k.signatures) == 1, (k.py_func.__name__, k.signatures)


def test_window_kernels_on_the_avx2_path():
    """The AVX2 build of the vector loops (two ymm per value) in a subprocess: reference, NaN/inf, regions."""
    import json
    import os
    import subprocess
    from pathlib import Path

    from coinfer.kernels import isa

    if isa() not in ("avx2", "avx512"):
        pytest.skip("needs an x86-64 host with AVX2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env.update(NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="")
    proc = subprocess.run([sys.executable, "-m", "tests.kernels.window_isa_check"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"isa": "avx2", "fails": []}, result
