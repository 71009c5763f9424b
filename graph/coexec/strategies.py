"""Strategies: plans for one processor, muLayer-like co-execution, and CoDL.

- ``cpu`` / ``gpu``: every op on one processor (the CPU on buffers with no
  sharing at all; the GPU on images, except ops its image kernels do not
  support, which fall back to the CPU as MACE falls back for ops a GPU lacks).
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
  (CoDL's MobileNet finding) runs on its best processor.  Given an SoC to
  verify on (``verify_on``), the co-executed plan, the plans of chain searches
  with a narrower and a wider ratio window, and both single-processor plans are
  each run a few times there and the fastest is kept: a plan is only as good
  as its measured time, profiles are noisy, and CoDL itself loses to one
  processor on MobileNet.

Every planner takes the graph's view (:func:`~.view.view_of`, or the one in
:func:`~.lower.prepare`) when the caller has it, and builds it otherwise.
"""
from __future__ import annotations

import numpy as np

from ..costs.measure import measure_interleaved
from . import chains as chain_search
from .executor import Executor
from .lower import Prepared
from .plan import Chain, Plan
from .view import GraphView, view_of

STRATEGIES = ("cpu", "gpu", "mulayer", "codl-nochain", "codl")
# Ratio windows of the extra chain searches a measured plan choice tries.
VERIFY_DELTAS = (0.1, 0.5)


def plan_single(graph, device: str, *, view: GraphView | None = None) -> Plan:
    """Every op on ``device`` ('cpu' or 'gpu'); on the gpu, runs of ops without an
    image kernel go to the cpu."""
    names = tuple(op.name for op in graph.ops)
    if device == "cpu":
        return Plan("cpu", [Chain(names, "none", 0.0)], shared_layout="buffer")
    if device != "gpu":
        raise ValueError(f"plan_single: device must be 'cpu' or 'gpu', got {device!r}")
    view = view if view is not None else view_of(graph)
    runs: list[list] = []
    for n in names:
        ratio = 1.0 if view.op(n).on_image else 0.0
        if runs and runs[-1][1] == ratio:
            runs[-1][0].append(n)
        else:
            runs.append([[n], ratio])
    return Plan("gpu", [Chain(tuple(ops), "none", r) for ops, r in runs])


def mulayer_ratio(costs) -> float:
    """GPU share from the FLOPs-linear predictor: t = FLOPs / throughput per processor."""
    g, c = costs.throughput("gpu_buffer"), costs.throughput("cpu")
    return g / (g + c) if g + c > 0 else 0.5


def plan_mulayer(graph, costs=None, *, ratio: float | None = None, view: GraphView | None = None) -> Plan:
    view = view if view is not None else view_of(graph)
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


def as_cost_source(costs, view: GraphView | None = None):
    """``costs`` itself, or a :class:`~coinfer.graph.costs.predictor.PredictedCosts` over it when
    it is a fitted predictor."""
    from ..costs.predictor import PredictedCosts, Predictor

    return PredictedCosts(costs, view) if isinstance(costs, Predictor) else costs


def plan_codl(graph, costs, *, chains: bool = True, delta: float = 0.3, margin: float = 0.1,
              verify_on=None, x=None, view: GraphView | None = None,
              prepared: Prepared | None = None) -> Plan:
    """CoDL's plan of ``graph`` from the cost source ``costs`` (see the module docstring).

    ``costs`` may be a fitted latency predictor
    (:class:`~coinfer.graph.costs.predictor.Predictor`): the plan then needs no
    measuring pass on the model (``verify_on`` stays optional).

    ``verify_on``: an :class:`~coinfer.hw.SoC` to run the candidate plans on
    (``chains=True`` only), with input ``x`` (default: the seeded sample of
    :func:`sample_input`); ``prepared`` (:func:`~.lower.prepare` of ``graph``)
    gives the view and the weights those runs share.
    """
    if prepared is not None:
        view = prepared.view
    view = view if view is not None else view_of(graph)
    costs = as_cost_source(costs, view)
    name = "codl" if chains else "codl-nochain"
    found = chain_search.search(view, costs, chains=chains, delta=delta)
    coexec = Plan(name, list(found), predicted_s=chain_search.plan_cost(view, found, costs))
    if not chains:
        return coexec
    singles = {dev: _renamed(plan_single(graph, dev, view=view), name, view, costs) for dev in ("cpu", "gpu")}
    dev = min(("cpu", "gpu"), key=lambda d: singles[d].predicted_s)
    single = singles[dev]
    notes = {"coexec_predicted_s": coexec.predicted_s, "single": dev, "single_predicted_s": single.predicted_s}
    if single.predicted_s * (1.0 - margin) <= coexec.predicted_s:
        single.notes = {**notes, "chosen_by": "prediction"}
        return single
    if verify_on is None:
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
    pool = candidates + [singles["cpu"], singles["gpu"]]
    labels += ["cpu only", "gpu only"]
    times = measure_plans(graph, verify_on, pool, sample_input(graph) if x is None else x, prepared=prepared)
    best = min(range(len(times)), key=times.__getitem__)
    chosen = pool[best]
    chosen.notes = {**notes, "chosen_by": "measurement", "chosen": labels[best],
                    "candidates_measured_s": dict(zip(labels, times))}
    return chosen


def _renamed(plan: Plan, name: str, view: GraphView, costs) -> Plan:
    """A single-processor plan as a candidate of strategy ``name``, with its predicted time:
    the cpu plan shares nothing (buffers throughout), so it costs its ops' compute alone."""
    if plan.shared_layout == "buffer":
        t = sum(costs.compute(op, "cpu", (0, op.out_rows, 0, op.out_channels)) for op in view.ops)
    else:
        t = chain_search.plan_cost(view, plan.chains, costs)
    return Plan(name, plan.chains, shared_layout=plan.shared_layout, predicted_s=t)


def sample_input(graph, seed: int = 0):
    """A seeded standard-normal float32 input (an array, or a dict for several inputs)."""
    rng = np.random.default_rng(seed)
    xs = {t: rng.standard_normal(graph.shape(t), dtype=np.float32) for t in graph.inputs}
    return next(iter(xs.values())) if len(xs) == 1 else xs


def measure_plans(graph, soc, plans, x, *, rounds: int = 3, prepared: Prepared | None = None) -> list:
    """Median wall seconds of each plan on ``soc``, runs interleaved round by round
    (one warm-up run each first)."""
    exs = []
    try:
        for p in plans:
            exs.append(Executor(graph, p, soc, prepared=prepared))

        def sampler(ex):
            def sample():
                ex.run(x)
                return ex.last_wall
            return sample

        timings = measure_interleaved([sampler(ex) for ex in exs], rounds=rounds, warmup=1)
        return [t.median for t in timings]
    finally:
        for ex in exs:
            ex.close()
        soc.trace.clear()


def make_plan(strategy: str, graph, costs=None, *, verify_on=None, prepared: Prepared | None = None) -> Plan:
    """The plan of one of :data:`STRATEGIES` (``codl`` is verified on ``verify_on`` when given)."""
    view = prepared.view if prepared is not None else None
    if strategy in ("cpu", "gpu"):
        return plan_single(graph, strategy, view=view)
    if strategy == "mulayer":
        return plan_mulayer(graph, as_cost_source(costs, view), view=view)
    if strategy in ("codl", "codl-nochain"):
        if costs is None:
            raise ValueError(f"make_plan: strategy {strategy!r} needs a cost source")
        return plan_codl(graph, costs, chains=strategy == "codl", verify_on=verify_on, prepared=prepared)
    raise ValueError(f"make_plan: unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
