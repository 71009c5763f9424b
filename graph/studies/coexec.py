"""The co-execution study (``coinfer run``, ``bench/test_coexec.py``): strategies side by side on one SoC.

For each strategy: plan (from one shared profiling pass, and one prepared
view and set of weights), execute ``repeat`` times after a warm-up, and report
the median wall time, the host replay of the last run's trace, the speedup
over the best single processor, the max abs error against the ``cpu`` output,
and the plan's chains and splits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..coexec.executor import Executor
from ..coexec.lower import prepare
from ..coexec.strategies import STRATEGIES, make_plan
from ..costs.measure import geomean, measure
from ..ir import fuse_relu
from ..progress import Progress


def load_model(spec: str, *, input_size: int | None = None, batch: int = 1):
    """A zoo name or a path to an ``.onnx`` file -> Graph (relu fused)."""
    from .. import zoo

    if spec.endswith(".onnx"):
        from .. import onnx as onnx_import

        g = onnx_import.load(spec, batch=batch)
    elif spec in zoo.names():
        g = zoo.build(spec, batch=batch, input_size=input_size)
    else:
        raise ValueError(f"coinfer run: unknown model {spec!r}; give a .onnx file or one of {', '.join(zoo.names())}")
    return fuse_relu(g)


@dataclass
class StrategyResult:
    """One strategy's figures; times in milliseconds."""

    name: str
    median_ms: float
    replay_ms: float
    max_abs_err: float
    speedup: float = float("nan")
    n_chains: int = 0
    n_splits: int = 0
    predicted_ms: float | None = None
    sharing_share: float = 0.0
    times_ms: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    #: Median over the runs of the replay under the SoC's profile (``replay_ms`` under ``host``).
    emulated_ms: float = float("nan")
    emulated_runs_ms: list = field(default_factory=list)
    plan: object = None

    @property
    def last_ms(self) -> float:
        """Wall time of the last run, whose trace ``replay_ms`` replays."""
        return self.times_ms[-1]

    def as_json(self) -> dict:
        return {"name": self.name, "median_ms": self.median_ms, "replay_ms": self.replay_ms,
                "max_abs_err": self.max_abs_err, "speedup": self.speedup, "chains": self.n_chains,
                "splits": self.n_splits, "predicted_ms": self.predicted_ms,
                "sharing_share": self.sharing_share, "emulated_ms": self.emulated_ms}


def run_strategies(graph, soc, strategies, x, *, repeat: int = 5, progress: bool = True,
                   trace_path: str | None = None, trace_strategy: str | None = None, costs=None,
                   verify: bool = True, profile=None):
    """Run ``strategies`` on ``graph``; returns (results, outputs by strategy, costs).

    ``profile`` (a name or :class:`~coinfer.hw.profile.CostProfile`; default
    ``host``) is the SoC emulated: plans are made from ``costs`` under it
    (:class:`~coinfer.graph.costs.emulated.EmulatedCosts`: its compute scales and
    modelled sharing costs), the kernels run on this host, and each run's trace is
    replayed under it (``emulated_ms``, equal to ``replay_ms`` under ``host``).

    ``costs`` defaults to :class:`~coinfer.graph.costs.measured.MeasuredCosts` on
    ``soc`` (made only when a strategy needs it); with ``verify`` the ``codl``
    plan choice runs its candidates on ``soc``.  ``trace_path`` gets a Chrome
    trace of ``trace_strategy``'s last run (default: the first strategy).
    """
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"coinfer run: unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    prepared = prepare(graph)
    if costs is None and any(s in ("mulayer", "codl", "codl-nochain") for s in strategies):
        from ..costs.measured import MeasuredCosts

        costs = MeasuredCosts(graph, soc, prepared=prepared, progress=progress)
    from ...hw.profile import get_profile
    from ..coexec.strategies import as_cost_source

    costs = as_cost_source(costs, prepared.view) if costs is not None else None
    prof = get_profile(profile or "host")
    plan_costs = costs
    if costs is not None and prof.name != "host":
        from ..costs.emulated import EmulatedCosts

        plan_costs = EmulatedCosts(costs, prof)
    traced = trace_strategy or strategies[0]
    order = [s for s in ("cpu",) if s not in strategies] + list(strategies)  # cpu is the error reference
    results, outputs = {}, {}
    with Progress(len(order), f"run {graph.name}", enabled=progress) as prog:
        for s in order:
            prog.step(s)
            plan = make_plan(s, graph, plan_costs, verify_on=soc if verify and prof.name == "host" else None,
                             prepared=prepared)
            with Executor(graph, plan, soc, prepared=prepared) as ex:
                last, emulated = [], []

                def once():
                    last[:] = [ex.run(x)]
                    emulated.append(soc.trace.replay(prof) * 1e3)
                    return ex.last_wall

                timing = measure(once, repeats=max(1, repeat), warmup=1)  # warm-up: compiles, touches memory
                replay = soc.trace.replay("host") * 1e3
                summ = soc.trace.summary()
                if trace_path and s == traced:
                    soc.trace.to_chrome(trace_path)
            outputs[s] = last[0]
            times = [t * 1e3 for t in timing.samples]
            results[s] = StrategyResult(
                s, float(np.median(times)), replay, 0.0, n_chains=plan.n_chains, n_splits=plan.n_splits,
                predicted_ms=None if plan.predicted_s is None else plan.predicted_s * 1e3,
                sharing_share=summ["sharing_share"], times_ms=times, notes=dict(plan.notes),
                emulated_ms=replay if prof.name == "host" else float(np.median(emulated[1:] or emulated)),
                emulated_runs_ms=emulated[1:], plan=plan)
    ref = outputs["cpu"]
    best_single = min(results[s].median_ms for s in ("cpu", "gpu") if s in results)
    for s, r in results.items():
        r.max_abs_err = float(np.abs(np.asarray(outputs[s]) - np.asarray(ref)).max())
        r.speedup = best_single / r.median_ms
    return [results[s] for s in strategies], outputs, costs


def format_table(model: str, soc_name: str, results) -> str:
    """One model's results as the ``coinfer run`` table."""
    emu = soc_name != "host"
    head = (f"{'strategy':<14} {'median ms':>10} {'replay ms':>10} " + (f"{'emulated ms':>12} " if emu else "")
            + f"{'speedup':>8} {'max|err|':>10} {'chains':>7} {'splits':>7} {'sharing':>8}")
    lines = [f"model {model} on soc {soc_name}", head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.name:<14} {r.median_ms:>10.2f} {r.replay_ms:>10.2f} "
                     + (f"{r.emulated_ms:>12.2f} " if emu else "") + f"{r.speedup:>7.2f}x "
                     f"{r.max_abs_err:>10.2e} {r.n_chains:>7d} {r.n_splits:>7d} {100 * r.sharing_share:>7.1f}%")
    lines.append("speedup: best single-processor median / this median; max|err|: against the cpu output; "
                 "sharing: transform+map+unmap+sync share of busy time"
                 + (f"; emulated ms: median replay of the runs under the {soc_name} profile, with this host's "
                    "throughput per op class measured once per machine (median ms is this host's wall time)"
                    if emu else ""))
    return "\n".join(lines)


def comparison_lines(by_model: dict) -> list:
    """Several models' results ({model: [StrategyResult]}) as one table, with the
    replay/wall agreement and the geometric-mean speedup of each strategy."""
    if not by_model:
        return []
    head = (f"{'model':<13} {'strategy':<13} {'median ms':>10} {'replay ms':>10} {'replay/wall':>11} "
            f"{'speedup':>8} {'sharing':>8} {'chains':>7} {'splits':>7} {'max|err|':>9}")
    lines = [head, "-" * len(head)]
    for model, results in by_model.items():
        for r in results:
            lines.append(f"{model:<13} {r.name:<13} {r.median_ms:>10.2f} {r.replay_ms:>10.2f} "
                         f"{r.replay_ms / r.last_ms:>11.3f} {r.speedup:>7.2f}x {100 * r.sharing_share:>7.1f}% "
                         f"{r.n_chains:>7d} {r.n_splits:>7d} {r.max_abs_err:>9.1e}")
    names = [r.name for r in next(iter(by_model.values()))]
    means = {n: geomean(r.speedup for rs in by_model.values() for r in rs if r.name == n) for n in names}
    lines.append("geometric-mean speedup over the models: "
                 + ", ".join(f"{n} {m:.2f}x" for n, m in means.items()))
    lines.append("speedup = best single-processor median / strategy median, measured in this run; "
                 "replay/wall = host replay of the last run's trace / that run's wall time")
    return lines
