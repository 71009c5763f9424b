"""Co-execution study: five strategies on five models on SoC.host(), side by side.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/test_coexec.py --benchmark-only

A thin wrapper over :func:`coinfer.graph.studies.coexec.run_strategies` (the
study ``coinfer run`` prints): per model, the strategies share one profiling
pass and run in one process on one SoC, each ``COINFER_BENCH_ROUNDS`` times
after a warm-up.  The benchmark times the whole study of a model; each
strategy's figures (median latency, host replay of the recorded trace,
speedup over the best single processor, sharing overhead, chains, splits,
error against the cpu output) go to ``benchmark.extra_info`` and the printed
table.  A Chrome/Perfetto trace of ``codl`` on alexnet is written to
``bench/out/codl_alexnet.trace.json``.
"""
import os
from pathlib import Path

import pytest

from coinfer.graph.coexec.strategies import STRATEGIES, sample_input
from coinfer.graph.studies.coexec import comparison_lines, load_model, run_strategies
from coinfer.hw import SoC

MODELS = ["alexnet", "squeezenet", "vgg16", "resnet18", "mobilenet_v1"]
ROUNDS = int(os.environ.get("COINFER_BENCH_ROUNDS", "7"))
OUT = Path(__file__).resolve().parent / "out"
RESULTS: dict = {}


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


@pytest.fixture(scope="module", autouse=True)
def table(study_table):
    study_table("co-execution on SoC.host() (1 cpu thread on core 0, 1 gpu thread on core 1)",
                lambda: comparison_lines({m: RESULTS[m] for m in MODELS if m in RESULTS}))


@pytest.mark.parametrize("model", MODELS)
def test_coexec(benchmark, soc, model):
    g = load_model(model)
    trace = None
    if model == "alexnet":
        OUT.mkdir(exist_ok=True)
        trace = str(OUT / "codl_alexnet.trace.json")
    results, _, _ = benchmark.pedantic(
        run_strategies, args=(g, soc, list(STRATEGIES), sample_input(g)),
        kwargs=dict(repeat=ROUNDS, progress=False, trace_path=trace, trace_strategy="codl"),
        rounds=1, iterations=1)
    RESULTS[model] = results
    benchmark.extra_info["model"] = model
    for r in results:
        benchmark.extra_info[r.name] = r.as_json()
