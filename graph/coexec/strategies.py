"""Strategies: plans for one processor, muLayer-like co-execution, and CoDL.

- ``cpu`` / ``gpu``: every op on one processor (the CPU on buffers with no
  sharing at all; the GPU on images).
- ``mulayer``: muLayer (EuroSys 2019) as CoDL describes it: every splittable op
  divided on output channels, buffers on both processors, the ratio from a
  FLOPs-linear latency predictor (each processor's FLOPs/s over the model).
- ``codl-nochain``: each op on its own best (dimension, ratio), sharing at every
  op.
- ``codl``: the same with CoDL's greedy operator chains.  The whole-model
  single-processor plans are candidates too, and co-execution must beat the
  best of them by ``margin`` (10%) of predicted time: predictions of
  co-executed work carry more error (dispatch and interpreter-lock waits the
  per-op timings do not see), so a model that gains little from co-execution
  (CoDL's MobileNet finding) runs on its best processor.  When the cost
  source measured this SoC (:class:`~coinfer.graph.costs.measured.MeasuredCosts`),
  the co-executed plan, the plans of chain searches with a narrower and a
  wider ratio window, and the best single-processor plan are each run a few
  times and the fastest is kept: a plan is only as good as its measured time,
  profiles are noisy, and CoDL itself loses to one processor on MobileNet.
"""
from __future__ import annotations

from . import chains as chain_search
from .costmodel import chain_cost
from .plan import Chain, Plan
from .view import view_of

STRATEGIES = ("cpu", "gpu", "mulayer", "codl-nochain", "codl")


def plan_single(graph, device: str) -> Plan:
    names = tuple(op.name for op in graph.ops)
    if device == "cpu":
        return Plan("cpu", [Chain(names, "none", 0.0)], shared_layout="buffer")
    if device == "gpu":
        return Plan("gpu", [Chain(names, "none", 1.0)])
    raise ValueError(f"plan_single: device must be 'cpu' or 'gpu', got {device!r}")


def mulayer_ratio(costs) -> float:
    """GPU share from the FLOPs-linear predictor: t = FLOPs / throughput per processor."""
    g, c = costs.throughput("gpu_buffer"), costs.throughput("cpu")
    return g / (g + c) if g + c > 0 else 0.5


def plan_mulayer(graph, costs=None, *, ratio: float | None = None) -> Plan:
    view = view_of(graph)
    if ratio is None:
        if costs is None:
            raise ValueError("plan_mulayer: give costs (for the FLOPs-linear ratio) or a ratio")
        ratio = mulayer_ratio(costs)
    ratio = min(1.0, max(0.0, float(ratio)))
    out = []
    for op in view.ops:
        if "OC" in op.splits and 0.0 < ratio < 1.0:
            out.append(Chain((op.name,), "OC", ratio))
        else:
            out.append(Chain((op.name,), "none", 1.0 if ratio >= 0.5 else 0.0))
    return Plan("mulayer", out, shared_layout="buffer", notes={"ratio": ratio})


def plan_codl(graph, costs, *, chains: bool = True, delta: float = 0.3, margin: float = 0.1,
              verify: bool = True) -> Plan:
    view = view_of(graph)
    name = "codl" if chains else "codl-nochain"
    found = chain_search.search(view, costs, chains=chains, delta=delta)
    coexec = Plan(name, list(found), predicted_s=chain_search.plan_cost(view, found, costs))
    if not chains:
        return coexec
    singles = [(_single_cost(view, costs, dev), dev) for dev in ("cpu", "gpu")]
    t_single, dev = min(singles)
    single = plan_single(graph, dev)
    single = Plan(name, single.chains, shared_layout=single.shared_layout, predicted_s=t_single)
    notes = {"coexec_predicted_s": coexec.predicted_s, "single": dev, "single_predicted_s": t_single}
    if t_single * (1.0 - margin) <= coexec.predicted_s:
        single.notes = {**notes, "chosen_by": "prediction"}
        return single
    if not (verify and getattr(costs, "soc", None) is not None and hasattr(costs, "sample_input")):
        coexec.notes = {**notes, "chosen_by": "prediction"}
        return coexec
    # Chain searches with a narrower and a wider ratio window give the other
    # candidates; all are run and the fastest measured plan is kept.
    candidates, labels = [coexec], [f"chains delta={delta}"]
    for d in VERIFY_DELTAS:
        if d != delta:
            alt = chain_search.search(view, costs, chains=True, delta=d)
            if all(alt != c.chains for c in candidates):
                candidates.append(Plan(name, list(alt), predicted_s=chain_search.plan_cost(view, alt, costs)))
                labels.append(f"chains delta={d}")
    # Both single processors are candidates too: their predictions miss the
    # dispatch gaps between ops, which differ between the two kernel sets.
    singles_plans = []
    for d in ("cpu", "gpu"):
        sp = plan_single(graph, d)
        singles_plans.append(Plan(name, sp.chains, shared_layout=sp.shared_layout,
                                  predicted_s=dict((v, k) for k, v in singles)[d]))
    pool = candidates + singles_plans
    times = measure_plans(graph, costs.soc, pool, costs.sample_input())
    best = min(range(len(times)), key=times.__getitem__)
    chosen = pool[best]
    labels += ["cpu only", "gpu only"]
    chosen.notes = {**notes, "chosen_by": "measurement", "chosen": labels[best],
                    "candidates_measured_s": dict(zip(labels, times))}
    return chosen


# Ratio windows of the extra chain searches a measured plan choice tries.
VERIFY_DELTAS = (0.1, 0.5)


def measure_plans(graph, soc, plans, x, *, rounds: int = 3) -> list:
    """Median wall seconds of each plan on ``soc``, runs interleaved round by round."""
    import numpy as np

    from .executor import Executor

    exs = [Executor(graph, p, soc) for p in plans]
    try:
        for ex in exs:
            ex.run(x)
        times = [[] for _ in exs]
        for _ in range(rounds):
            for ex, ts in zip(exs, times):
                ex.run(x)
                ts.append(ex.last_wall)
        return [float(np.median(ts)) for ts in times]
    finally:
        for ex in exs:
            ex.close()
        soc.trace.clear()


def _single_cost(view, costs, dev: str) -> float:
    if dev == "gpu":
        return chain_cost(view, Chain(tuple(op.name for op in view.ops), "none", 1.0), costs).total
    full = lambda op: (0, op.out_rows, 0, op.out_channels)  # noqa: E731
    return sum(costs.compute(op, "cpu", full(op)) for op in view.ops)


def make_plan(strategy: str, graph, costs=None) -> Plan:
    if strategy in ("cpu", "gpu"):
        return plan_single(graph, strategy)
    if strategy == "mulayer":
        return plan_mulayer(graph, costs)
    if strategy in ("codl", "codl-nochain"):
        if costs is None:
            raise ValueError(f"make_plan: strategy {strategy!r} needs a cost source")
        return plan_codl(graph, costs, chains=strategy == "codl")
    raise ValueError(f"make_plan: unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
