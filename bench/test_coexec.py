"""Co-execution study: five strategies on five models on SoC.host(), side by side.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/test_coexec.py --benchmark-only

For every model the strategies share one profiling pass and run interleaved in
one process on one SoC.  The table gives median latency, host replay of the
recorded trace, speedup over the best single processor, the sharing overhead
(transform + map + unmap + sync as a share of busy time), and chain count.
A Chrome/Perfetto trace of ``codl`` on alexnet is written to
``bench/out/codl_alexnet.trace.json``.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.strategies import STRATEGIES, make_plan
from coinfer.graph.costs.measured import MeasuredCosts
from coinfer.graph.studies.coexec import load_model
from coinfer.hw import SoC

MODELS = ["alexnet", "squeezenet", "vgg16", "resnet18", "mobilenet_v1"]
ROUNDS = int(os.environ.get("COINFER_BENCH_ROUNDS", "7"))
OUT = Path(__file__).resolve().parent / "out"
RESULTS: dict = {}


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


_prepared: dict = {}


def prepared(name, soc):
    if name not in _prepared:
        g = load_model(name)
        x = np.random.default_rng(0).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)
        costs = MeasuredCosts(g, soc, progress=False)
        _prepared.clear()  # keep one model's buffers and weights alive at a time
        _prepared[name] = (g, x, costs, {})
    return _prepared[name]


def table_lines() -> list:
    if not RESULTS:
        return []
    head = (f"{'model':<13} {'strategy':<13} {'median ms':>10} {'replay ms':>10} {'replay/wall':>11} "
            f"{'speedup':>8} {'sharing':>8} {'chains':>7} {'splits':>7} {'max|err|':>9}")
    lines = [head, "-" * len(head)]
    for model in MODELS:
        rows = RESULTS.get(model, {})
        singles = [rows[s]["median_ms"] for s in ("cpu", "gpu") if s in rows]
        if not rows or not singles:
            continue
        best = min(singles)
        for s in STRATEGIES:
            if s not in rows:
                continue
            r = rows[s]
            lines.append(f"{model:<13} {s:<13} {r['median_ms']:>10.2f} {r['replay_ms']:>10.2f} "
                         f"{r['replay_ms'] / r['last_ms']:>11.3f} {best / r['median_ms']:>7.2f}x "
                         f"{100 * r['sharing']:>7.1f}% {r['chains']:>7d} {r['splits']:>7d} {r['err']:>9.1e}")
    lines.append("speedup = best single-processor median / strategy median, measured in this run; "
                 "replay/wall = host replay of the last run's trace / that run's wall time")
    return lines


@pytest.fixture(scope="module", autouse=True)
def table(study_table):
    study_table("co-execution on SoC.host() (1 cpu thread on core 0, 1 gpu thread on core 1)", table_lines)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("model", MODELS)
def test_coexec(benchmark, soc, model, strategy):
    g, x, costs, outs = prepared(model, soc)
    plan = make_plan(strategy, g, costs)
    with Executor(g, plan, soc) as ex:
        ex.run(x)
        walls = []

        def once():
            y = ex.run(x)
            walls.append(ex.last_wall)
            return y

        y = benchmark.pedantic(once, rounds=ROUNDS, warmup_rounds=1, iterations=1)
        replay = soc.trace.replay("host")
        summ = soc.trace.summary()
        if model == "alexnet" and strategy == "codl":
            OUT.mkdir(exist_ok=True)
            soc.trace.to_chrome(str(OUT / "codl_alexnet.trace.json"))
    outs[strategy] = y
    ref = outs.get("cpu", y)
    err = float(np.abs(y - ref).max())
    med = float(np.median(walls[1:] if len(walls) > 1 else walls)) * 1e3
    RESULTS.setdefault(model, {})[strategy] = dict(
        median_ms=med, replay_ms=replay * 1e3, last_ms=walls[-1] * 1e3, sharing=summ["sharing_share"], chains=plan.n_chains,
        splits=plan.n_splits, err=err)
    benchmark.extra_info.update(model=model, strategy=strategy, median_ms=med, replay_ms=replay * 1e3,
                                sharing_share=summ["sharing_share"], chains=plan.n_chains,
                                splits=plan.n_splits, max_abs_err_vs_cpu=err,
                                predicted_ms=None if plan.predicted_s is None else plan.predicted_s * 1e3)
