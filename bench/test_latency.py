"""Cost per call of ``coinfer.graph.latency`` on a planned model.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 -m pytest bench/test_latency.py --benchmark-only -s

The first call of a (model, soc, strategy) plans from the model's per-host cost
table (measured once and cached, :mod:`coinfer.graph.costs.tables`); the study
times the calls after it:

- ``codl``: AlexNet (224x224) under ``snapdragon855``: the plan and its breakdown are kept, a call is a look-up;
- ``codl`` with a target: the same plus a copy that says whether the target is met;
- ``edgent``: B-AlexNet on ``raspberry_pi`` with a ``desktop_edge`` edge, the bandwidth changing every call
  (one of 64 values), so every call runs Edgent's static decision over the candidates;
- ``edgent over a trace``: the same over a link that follows ``hsdpa_bus_oslo``, at a new trace time every call
  (the plan's transfers integrated over the trace).
"""
import time

import numpy as np
import pytest

from coinfer.graph import latency
from coinfer.hw import Link
from coinfer.hw.link import load_shipped
from coinfer.kernels import isa

ROWS: list = []
BW = np.geomspace(1e5, 1e7, 64)


def _per_call(fn, n: int) -> float:
    """Median over 5 rounds of the mean seconds per call of ``n`` calls."""
    fn(0)
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        rounds.append((time.perf_counter() - t0) / n)
    return float(np.median(rounds))


CASES = {
    "codl alexnet snapdragon855": lambda i: latency("alexnet", "snapdragon855", "codl"),
    "codl alexnet snapdragon855, target": lambda i: latency("alexnet", "snapdragon855", "codl", target_s=0.05),
    "edgent branchy_alexnet raspberry_pi": lambda i: latency("branchy_alexnet", "raspberry_pi", "edgent",
                                                             bandwidth=BW[i % 64], rtt_s=0.02, target_s=0.3),
}


@pytest.fixture(scope="module")
def table(study_table):
    study_table(f"coinfer.graph.latency: microseconds per call on a planned model ({isa()})",
                lambda: [f"{'case':<46} {'us/call':>9}"] + [f"{n:<46} {us:>9.1f}" for n, us in ROWS])
    return ROWS


@pytest.mark.parametrize("case", list(CASES))
def test_latency_per_call(benchmark, table, case):
    fn = CASES[case]
    fn(0)  # plans (and measures the cost table the first time on this host)
    us = [0.0]

    def run():
        us[0] = _per_call(fn, 2000) * 1e6

    benchmark.pedantic(run, rounds=1, iterations=1)
    table.append((case, us[0]))
    benchmark.extra_info.update({"us_per_call": us[0], "isa": isa()})


def test_latency_per_call_over_a_trace(benchmark, table):
    link = Link(trace=load_shipped("hsdpa_bus_oslo"), rtt_s=0.02)
    fn = lambda i: latency("branchy_alexnet", "raspberry_pi", "edgent", link=link, at=float(i % 800),  # noqa: E731
                           target_s=0.3)
    us = [0.0]

    def run():
        us[0] = _per_call(fn, 2000) * 1e6

    benchmark.pedantic(run, rounds=1, iterations=1)
    table.append(("edgent branchy_alexnet raspberry_pi, trace link", us[0]))
    benchmark.extra_info.update({"us_per_call": us[0], "isa": isa()})
