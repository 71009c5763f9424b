"""The instruction-set paths of the conv and FC kernels, and Numba's cache across them.

The AVX2 tiles run here on any x86-64 host: a subprocess compiles the kernels with
``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=`` (Haswell's own features, AVX2 + FMA)
and runs ``tests.kernels.isa_check``.  A private Numba cache directory shows that
code built for one target is never loaded for another.  These subprocesses
compile cold: about 20 s on the 2-core test machine.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coinfer.kernels import isa, target

ROOT = Path(__file__).resolve().parents[2]
_FORCE = {"haswell": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""},
          "sandybridge": {"NUMBA_CPU_NAME": "sandybridge", "NUMBA_CPU_FEATURES": ""},
          "host": {}}


def _check(cpu: str, cache_dir, *parts) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env.update(_FORCE[cpu], NUMBA_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-m", "tests.kernels.isa_check", *parts], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["fails"] == [], result
    return result


def test_isa_names_the_compiled_target():
    assert isa() in target.ISAS
    name, features = target.target()
    assert name and isinstance(features, str)
    assert target.vector_lanes() in (4, 8, 16)
    assert target.peak_flops_per_cycle() >= 2 * target.vector_lanes()


def test_avx2_path_and_cache_keyed_by_target(tmp_path):
    if not isa() == "avx512" and not isa() == "avx2":
        pytest.skip("needs an x86-64 host with AVX2")
    host = _check("host", tmp_path, "fc")
    assert host["isa"] == isa() and host["misses"] == 1
    # Same cache directory: the host's FC build must not be handed to the AVX2 run.
    avx2 = _check("haswell", tmp_path)
    assert avx2["isa"] == "avx2" and avx2["tile"] == [6, 16]
    assert avx2["hits"] == 0 and avx2["misses"] == 3
    again = _check("haswell", tmp_path, "fc")
    assert again["hits"] == 1 and again["misses"] == 0


def test_no_fma_target_still_correct(tmp_path):
    """Sandy Bridge has AVX but no FMA: multiply-adds become a multiply and an add."""
    result = _check("sandybridge", tmp_path, "fc")
    assert result["isa"] == "generic"
