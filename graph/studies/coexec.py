"""The co-execution study (``coinfer run``, ``bench/test_coexec.py``): strategies side by side on one SoC.

For each strategy: plan (from one shared profiling pass, and one prepared
view and set of weights), execute ``repeat`` times after a warm-up, the
strategies interleaved round by round so all meet the same machine state, and
report the median wall time; the median of the host replays of each timed
run's own trace and the median of the per-run ratios replay/wall (the
check that the time model reproduces what ran); the speedup over the best
single processor; the max abs error against the ``cpu`` output; the plan's
chains, splits and ops that fell back to the CPU; and for ``codl`` which
candidate plan was chosen and why.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field

import numpy as np

from ..coexec.executor import Executor
from ..coexec.lower import prepare
from ..coexec.strategies import STRATEGIES, make_plan
from ..costs.measure import geomean, measure_interleaved
from ..ir import fuse_relu
from ..progress import Progress


def load_model(spec: str, *, input_size: int | None = None, batch: int = 1):
    """A zoo name or a path to an ``.onnx`` file -> Graph (relu fused)."""
    from .. import zoo

    if spec.endswith(".onnx"):
        import os

        from .. import onnx as onnx_import

        if not os.path.isfile(spec):
            raise FileNotFoundError(f"model file {spec!r}: no such file")
        g = onnx_import.load(spec, batch=batch)
    elif spec in zoo.names():
        g = zoo.build(spec, batch=batch, input_size=input_size)
    else:
        raise ValueError(f"coinfer run: unknown model {spec!r}; give a .onnx file or one of {', '.join(zoo.names())}")
    return fuse_relu(g)


@dataclass
class StrategyResult:
    """One strategy's figures; times in milliseconds.

    ``times_ms[i]`` is run i's wall time and ``replays_ms[i]`` the host replay of
    that run's own trace; ``replay_ms`` and ``replay_ratio`` are the median of
    the replays and of the per-run ratios replay/wall.  ``fallback`` lists the
    ops the plan sends to the CPU because the GPU's image kernels lack them
    (the ``gpu`` strategy); ``choice`` is how ``codl`` chose its plan
    (``chosen``, ``chosen_by``, ``why``, ``candidates``).
    """

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
    replays_ms: list = field(default_factory=list)
    replay_ratio: float = float("nan")
    fallback: list = field(default_factory=list)
    layouts: tuple = ()
    notes: dict = field(default_factory=dict)
    #: Median over the runs of the replay under the SoC's profile (``replay_ms`` under ``host``).
    emulated_ms: float = float("nan")
    emulated_runs_ms: list = field(default_factory=list)
    plan: object = None
    #: Whether the runs took the native dispatch loop (else the Python path), and the median
    #: over the runs of the median dispatch gap per task (microseconds, ``Trace.dispatch_gaps``).
    native: bool = False
    gap_us: float = float("nan")
    #: The same plan on the Python path, in the same rounds (``python_path=True``): median ms, gap.
    py_ms: float = float("nan")
    py_gap_us: float = float("nan")

    @property
    def choice(self) -> dict:
        keys = ("chosen", "chosen_by", "why", "candidates")
        return {k: self.notes[k] for k in keys if k in self.notes}

    def as_json(self) -> dict:
        doc = {"name": self.name, "median_ms": self.median_ms, "replay_ms": self.replay_ms,
               "replay_ratio": self.replay_ratio, "max_abs_err": self.max_abs_err, "speedup": self.speedup,
               "chains": self.n_chains, "splits": self.n_splits, "predicted_ms": self.predicted_ms,
               "sharing_share": self.sharing_share, "times_ms": self.times_ms, "replays_ms": self.replays_ms,
               "fallback_ops": len(self.fallback), "fallback": self.fallback, "gpu_layouts": list(self.layouts),
               "emulated_ms": self.emulated_ms, "emulated_runs_ms": self.emulated_runs_ms,
               "native": self.native, "gap_us": self.gap_us, "py_ms": self.py_ms, "py_gap_us": self.py_gap_us}
        choice = self.choice
        if choice:
            choice["candidates"] = {k: {f"{m[:-2]}_ms": t * 1e3 for m, t in v.items()}
                                    for k, v in choice.get("candidates", {}).items()}
            doc["choice"] = choice
        return doc


def run_strategies(graph, soc, strategies, x, *, repeat: int = 5, progress: bool = True,
                   trace_path: str | None = None, trace_strategy: str | None = None, costs=None,
                   verify: bool = True, profile=None, python_path: bool = False):
    """Run ``strategies`` on ``graph``; returns (results, outputs by strategy, costs).

    Every strategy is planned first (``costs`` defaults to
    :class:`~coinfer.graph.costs.measured.MeasuredCosts` on ``soc``, made only when
    a strategy needs it; with ``verify`` the ``codl`` plan choice runs its close
    candidates on ``soc``).  Then the strategies run interleaved, one run of each
    per round after a warm-up run each, so that all of them meet the same state of
    a shared machine.  ``trace_path`` gets a Chrome trace of ``trace_strategy``'s
    last run (default: the first strategy).

    ``profile`` (a name or :class:`~coinfer.hw.profile.CostProfile`; default
    ``host``) is the SoC emulated: plans are made from ``costs`` under it
    (:class:`~coinfer.graph.costs.emulated.EmulatedCosts`: its compute scales and
    modelled sharing costs; close ``codl`` candidates run on this host and are
    compared by their traces replayed under it), the kernels run on this host,
    and each run's own trace is replayed under it (``emulated_ms``, the median;
    equal to ``replay_ms`` under ``host``).

    Executors run the native dispatch loop where they can (``StrategyResult.native``).
    ``python_path`` also runs each plan on the Python path in the same rounds, for
    ``py_ms`` and ``py_gap_us``.
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
    plans, outputs, runs, summaries = {}, {}, {s: [] for s in order}, {}
    with Progress(len(order), f"plan {graph.name}", enabled=progress) as prog:
        for s in order:
            prog.step(s)
            plans[s] = make_plan(s, graph, plan_costs, verify_on=soc if verify else None, prepared=prepared,
                                 profile=prof)
    with contextlib.ExitStack() as stack:
        exs = {s: stack.enter_context(Executor(graph, plans[s], soc, prepared=prepared)) for s in order}
        gaps = {s: [] for s in order}
        py_exs = {s: stack.enter_context(Executor(graph, plans[s], soc, prepared=prepared, native=False))
                  for s in (order if python_path else ())}
        py_runs = {s: [] for s in py_exs}

        def sampler(s):
            def once():
                outputs[s] = exs[s].run(x)
                # this run's own trace, replayed on the host and under the emulated SoC
                host = soc.trace.replay("host")
                runs[s].append((exs[s].last_wall, host, host if prof.name == "host" else soc.trace.replay(prof)))
                gaps[s].append(_median_gap_us(soc.trace))
                summaries[s] = soc.trace.summary()
                if trace_path and s == traced:
                    soc.trace.to_chrome(trace_path)
                return exs[s].last_wall
            return once

        def py_sampler(s):
            def once():
                py_exs[s].run(x)
                py_runs[s].append((py_exs[s].last_wall, _median_gap_us(soc.trace)))
                return py_exs[s].last_wall
            return once

        if progress:
            print(f"run {graph.name}: {len(order)} strategies x {max(1, repeat)} runs, interleaved"
                  + (", each also on the Python path" if python_path else ""), file=sys.stderr)
        measure_interleaved([sampler(s) for s in order] + [py_sampler(s) for s in py_exs], rounds=max(1, repeat),
                            warmup=1)
        native = {s: exs[s].native for s in order}
    results = {}
    for s in order:
        kept = runs[s][1:]  # the first run is the warm-up
        plan = plans[s]
        times = [w * 1e3 for w, _, _ in kept]
        replays = [r * 1e3 for _, r, _ in kept]
        emulated = [em * 1e3 for _, _, em in kept]
        results[s] = StrategyResult(
            s, float(np.median(times)), float(np.median(replays)), 0.0, n_chains=plan.n_chains,
            n_splits=plan.n_splits, predicted_ms=None if plan.predicted_s is None else plan.predicted_s * 1e3,
            sharing_share=summaries[s]["sharing_share"], times_ms=times, replays_ms=replays,
            replay_ratio=float(np.median([r / w for w, r, _ in kept])),
            fallback=list(plan.notes.get("fallback", [])),
            layouts=tuple(sorted(plan.layouts)), notes=dict(plan.notes),
            emulated_ms=float(np.median(emulated)), emulated_runs_ms=emulated, plan=plan,
            native=native[s], gap_us=float(np.median(gaps[s][1:])))
        if s in py_runs:
            results[s].py_ms = float(np.median([w * 1e3 for w, _ in py_runs[s][1:]]))
            results[s].py_gap_us = float(np.median([g for _, g in py_runs[s][1:]]))
    ref = outputs["cpu"]
    # Speedups on the SoC the plans are for: host wall time, or the emulated latency.
    ms = (lambda r: r.median_ms) if prof.name == "host" else (lambda r: r.emulated_ms)
    best_single = min(ms(results[s]) for s in ("cpu", "gpu") if s in results)
    for s, r in results.items():
        r.max_abs_err = float(np.abs(np.asarray(outputs[s]) - np.asarray(ref)).max())
        r.speedup = best_single / ms(r)
    return [results[s] for s in strategies], outputs, costs


def _median_gap_us(trace) -> float:
    gaps = trace.dispatch_gaps()
    return float(np.median(gaps)) * 1e6 if gaps else float("nan")


def format_table(model: str, soc_name: str, results) -> str:
    """One model's results as the ``coinfer run`` table, then how codl chose and what fell back."""
    emu = soc_name != "host"
    py = any(np.isfinite(r.py_ms) for r in results)
    head = (f"{'strategy':<14} {'median ms':>10} {'replay ms':>10} {'replay/wall':>11} "
            + (f"{'emulated ms':>12} " if emu else "") + f"{'speedup':>8} "
            f"{'max|err|':>10} {'chains':>7} {'splits':>7} {'sharing':>8} {'fallback':>9} {'gpu on':>13} "
            f"{'path':>6} {'gap us':>7}" + (f" {'py ms':>8} {'py gap us':>9}" if py else ""))
    lines = [f"model {model} on soc {soc_name}", head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.name:<14} {r.median_ms:>10.2f} {r.replay_ms:>10.2f} {r.replay_ratio:>11.3f} "
                     + (f"{r.emulated_ms:>12.2f} " if emu else "")
                     + f"{r.speedup:>7.2f}x {r.max_abs_err:>10.2e} {r.n_chains:>7d} {r.n_splits:>7d} "
                     f"{100 * r.sharing_share:>7.1f}% {len(r.fallback):>9d} {'+'.join(r.layouts):>13} "
                     f"{'native' if r.native else 'python':>6} {r.gap_us:>7.1f}"
                     + (f" {r.py_ms:>8.2f} {r.py_gap_us:>9.1f}" if py else ""))
    lines.append(("speedup: best single-processor emulated ms / this emulated ms" if emu else
                  "speedup: best single-processor median / this median")
                 + " (the cpu plan always runs, as the reference); replay ms: median of the host replays "
                 "of each run's own trace; replay/wall: median per-run ratio; max|err|: against the cpu output; "
                 "sharing: transform+map+unmap+sync share of busy time; fallback: ops sent to the cpu for lack "
                 "of an image kernel; gpu on: the layouts the gpu works in; path: the native dispatch loop or "
                 "the Python path; gap us: median over the runs of the median dispatch gap per task (its start "
                 "after it was ready and submitted)"
                 + ("; py ms, py gap us: the same plan on the Python path, in the same rounds" if py else "")
                 + (f"; emulated ms: median replay of the runs under the {soc_name} profile, with this host's "
                    "throughput per op class measured once per machine (median ms is this host's wall time)"
                    if emu else ""))
    for r in results:
        if r.fallback:
            lines.append(f"{r.name}: {len(r.fallback)} op(s) fell back to the cpu: {', '.join(r.fallback)}")
        c = r.choice
        if "chosen" in c and r.name == "codl":
            lines.append(f"{r.name}: chose {c['chosen']!r} by {c['chosen_by']}: {c['why']}")
            measured = {k: v["measured_s"] for k, v in c.get("candidates", {}).items() if "measured_s" in v}
            if measured:
                lines.append("  measured: " + ", ".join(f"{k} {1e3 * t:.2f} ms" for k, t in measured.items()))
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
                         f"{r.replay_ratio:>11.3f} {r.speedup:>7.2f}x {100 * r.sharing_share:>7.1f}% "
                         f"{r.n_chains:>7d} {r.n_splits:>7d} {r.max_abs_err:>9.1e}")
    names = [r.name for r in next(iter(by_model.values()))]
    means = {n: geomean(r.speedup for rs in by_model.values() for r in rs if r.name == n) for n in names}
    lines.append("geometric-mean speedup over the models: "
                 + ", ".join(f"{n} {m:.2f}x" for n, m in means.items()))
    lines.append("speedup = best single-processor median / strategy median, measured in this run; "
                 "replay ms = median of the host replays of each run's own trace; "
                 "replay/wall = median over the runs of replay / wall time")
    return lines
