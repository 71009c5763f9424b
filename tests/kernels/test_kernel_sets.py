"""The kernel packages: public names and compiled signatures."""
from __future__ import annotations

import importlib
import sys

import numpy as np

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
