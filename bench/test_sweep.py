"""A 64-point sweep, planning only, through a process pool and through a local Dask cluster.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 -m pytest bench/test_sweep.py --benchmark-only -s

2 models (B-AlexNet, B-LeNet) x 2 device profiles (raspberry_pi, nexus5_cpu) x 4 bandwidths x 4 targets,
Edgent's static planner with a desktop_edge edge and a 20 ms RTT.  The per-host cost tables are read (or
measured once) before the sweeps; each sweep writes Parquet; the two files must hold the same rows.
"""
import os
import time

import pytest

from coinfer.graph.studies import sweep as sw
from coinfer.kernels import isa

SPEC = {"axes": {"models": ["branchy_alexnet", "branchy_lenet"], "socs": ["raspberry_pi", "nexus5_cpu"],
                 "bandwidths": ["250kbps", "500kbps", "1Mbps", "4Mbps"], "targets_ms": [100, 200, 300, 500]},
        "run": {"mode": "plan", "edge": "desktop_edge", "rtt_ms": 20}}
WORKERS = int(os.environ.get("COINFER_SWEEP_WORKERS", "2"))
RESULTS: dict = {}


@pytest.fixture(scope="module")
def prepared(study_table):
    pytest.importorskip("dask.distributed")
    pytest.importorskip("pyarrow")
    spec = sw.Spec.from_dict(SPEC)
    study_table(f"coinfer sweep: 64 points, planning only, {WORKERS} workers ({isa()})", lambda: [
        f"{'scheduler':<12} {'points':>6} {'seconds':>8} {'identical to processes':>23}"] + [
        f"{k:<12} {len(v['rows']):>6} {v['s']:>8.2f} {str(v['rows'] == RESULTS['processes']['rows']):>23}"
        for k, v in RESULTS.items()])
    return spec, sw.prepare_tables(spec, progress=False)


@pytest.mark.parametrize("scheduler", ["processes", "local-dask"])
def test_sweep_64_points(benchmark, prepared, scheduler, tmp_path):
    spec, tables = prepared
    out = str(tmp_path / f"{scheduler}.parquet")

    def run():
        t0 = time.perf_counter()
        with sw.make_executor(scheduler, WORKERS) as ex:
            res = sw.run_sweep(spec, ex, out, tables=tables, progress=False, timeout=600)
        RESULTS[scheduler] = {"rows": sw.read_rows(out), "s": time.perf_counter() - t0}
        assert res["ran"] == 64 and not res["failed"]

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"points": 64, "seconds": RESULTS[scheduler]["s"], "isa": isa()})
    if scheduler != "processes" and "processes" in RESULTS:
        assert RESULTS[scheduler]["rows"] == RESULTS["processes"]["rows"]
