"""Strategies: plans for one processor, muLayer-like co-execution, and CoDL.

- ``cpu`` / ``gpu``: every op on one processor (the CPU on buffers with no
  sharing at all; the GPU on images, except ops its image kernels do not
  support, which fall back to the CPU as MACE's device placer falls back for
  ops a GPU lacks; ``notes["fallback"]`` lists them).
- ``mulayer``: muLayer (EuroSys 2019) as CoDL describes it: every splittable op
  divided on output channels, buffers on both processors, the ratio from a
  FLOPs-linear latency predictor (each processor's FLOPs/s over the model).
- ``codl-nochain``: each op on its own best (dimension, ratio, GPU layout),
  sharing at every op.
- ``codl``: CoDL's greedy operator chains, the GPU's layout (image or buffer)
  chosen per chain from the costs.  Its candidates are every plan it could
  produce (:func:`codl_candidates`): chain searches with three ratio windows,
  the no-chain plan, the OC-only plan on buffers with the cost model's ratios,
  muLayer's plan, and each single processor.  Predictions of co-executed work
  carry more error (dispatch and interpreter-lock waits the per-op timings do
  not see), so they count ``margin`` (10%) worse against single-processor plans.
  When the best candidate is predicted at least :data:`DECIDE_MARGIN` (15%)
  faster than the next one, it is chosen by prediction; otherwise, given an
  SoC (``verify_on``), every candidate predicted within :data:`MEASURE_WINDOW`
  of the best, and every single-processor plan, is run there, interleaved, and
  the fastest median is kept (a co-executed plan only if it beats every
  single processor by :data:`MEASURED_MARGIN`, 3%; candidates within
  :data:`RUNOFF_WINDOW` of each other run again, twice as many rounds, and
  that run-off decides): a plan is only as good as
  its measured time, and CoDL itself loses to one processor on MobileNet.  ``notes`` say which candidate was chosen and why.

Every planner takes the graph's view (:func:`~.view.view_of`, or the one in
:func:`~.lower.prepare`) when the caller has it, and builds it otherwise.
"""
from __future__ import annotations

import numpy as np

from ..costs.measure import measure_interleaved
from . import chains as chain_search
from .executor import Executor
from .lower import Prepared
from .plan import Chain, Plan, merge_unsplit
from .view import GraphView, view_of

STRATEGIES = ("cpu", "gpu", "mulayer", "codl-nochain", "codl")
#: Ratio windows of the chain searches among codl's candidates (the first is the default).
DELTAS = (0.3, 0.1, 0.5)
#: A candidate predicted this much faster than every other is chosen without measuring.
DECIDE_MARGIN = 0.15
#: Candidates predicted within this factor of the best are measured (and the single processors).
MEASURE_WINDOW = 1.5
#: A co-executed candidate must beat the fastest single processor's measured median by this
#: much: co-execution needs both cores, so it is the first to suffer from other load.
MEASURED_MARGIN = 0.03
#: Measured candidates within this share of the fastest run again, in a run-off of twice the rounds.
RUNOFF_WINDOW = 0.04
#: The labels of codl's single-processor candidates.
SINGLES = ("cpu only", "gpu only", "gpu only on buffers")


def plan_single(graph, device: str, *, view: GraphView | None = None) -> Plan:
    """Every op on ``device`` ('cpu' or 'gpu'); on the gpu, runs of ops without an
    image kernel go to the cpu (``notes["fallback"]`` names them)."""
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
    fallback = [n for n in names if not view.op(n).on_image]
    return Plan("gpu", [Chain(tuple(ops), "none", r) for ops, r in runs], notes={"fallback": fallback})


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


def codl_candidates(graph, costs, *, view: GraphView | None = None, delta: float = DELTAS[0],
                    name: str = "codl") -> list[tuple[str, Plan]]:
    """(label, plan) of every plan CoDL's search space holds that codl weighs, each
    with its predicted seconds; runs of unsplit chains on one processor are merged
    (:func:`~.plan.merge_unsplit`) and duplicates dropped (the simplest label wins)."""
    view = view if view is not None else view_of(graph)
    names = tuple(op.name for op in view.ops)
    # Simplest first: a search that ends in a plan listed already keeps the simpler name.
    found = [("cpu only", plan_single(graph, "cpu", view=view).chains),
             ("gpu only", plan_single(graph, "gpu", view=view).chains),
             ("gpu only on buffers", [Chain(names, "none", 1.0, "buffer")])]
    if hasattr(costs, "throughput"):
        found.append(("mulayer plan", plan_mulayer(graph, costs, view=view).chains))
    found.append(("OC only on buffers", chain_search.search(view, costs, chains=False, layouts=("buffer",),
                                                            dims=("OC",))))
    found.append(("no chains", chain_search.search(view, costs, chains=False)))
    for d in (delta,) + tuple(d for d in DELTAS if d != delta):
        found.append((f"chains delta={d}", chain_search.search(view, costs, chains=True, delta=d)))
    out, seen = [], []
    for label, chains in found:
        chains = merge_unsplit(chains)
        if chains in seen:
            continue
        seen.append(chains)
        out.append((label, Plan(name, chains, predicted_s=chain_search.plan_cost(view, chains, costs))))
    return out


def _coexecuted(plan: Plan) -> bool:
    return any(c.split for c in plan.chains)


def plan_codl(graph, costs, *, chains: bool = True, delta: float = DELTAS[0], margin: float = 0.1,
              verify_on=None, x=None, view: GraphView | None = None,
              prepared: Prepared | None = None, rounds: int = 5, profile=None) -> Plan:
    """CoDL's plan of ``graph`` from the cost source ``costs`` (see the module docstring).

    ``costs`` may be a fitted latency predictor
    (:class:`~coinfer.graph.costs.predictor.Predictor`): the plan then needs no
    measuring pass on the model (``verify_on`` stays optional).

    ``verify_on``: an :class:`~coinfer.hw.SoC` to run close candidates on
    (``chains=True`` only), ``rounds`` times each, with input ``x`` (default:
    the seeded sample of :func:`sample_input`); ``prepared``
    (:func:`~.lower.prepare` of ``graph``) gives the view and the weights those
    runs share.  ``profile`` (a cost-profile name or
    :class:`~coinfer.hw.profile.CostProfile`; default: the host itself): the
    SoC the plan is for; candidates run on ``verify_on`` are then compared by
    their runs' traces replayed under it (:meth:`coinfer.hw.Trace.replay`), not
    by host wall time.  ``notes``: ``chosen`` (the candidate's label), ``chosen_by``
    (``prediction`` or ``measurement``), ``why``, and ``candidates`` (label ->
    predicted and, if run, measured seconds).
    """
    if prepared is not None:
        view = prepared.view
    view = view if view is not None else view_of(graph)
    costs = as_cost_source(costs, view)
    name = "codl" if chains else "codl-nochain"
    if not chains:
        found = chain_search.search(view, costs, chains=False)
        return Plan(name, list(found), predicted_s=chain_search.plan_cost(view, found, costs),
                    notes={"chosen": "no chains", "chosen_by": "prediction", "why": "the per-op search"})
    cands = codl_candidates(graph, costs, view=view, delta=delta, name=name)
    # Co-executed predictions count `margin` worse against the single-processor plans.
    weighed = {label: p.predicted_s / (1.0 - margin) if _coexecuted(p) else p.predicted_s for label, p in cands}
    ranked = sorted(cands, key=lambda lp: weighed[lp[0]])
    best_label, best = ranked[0]
    table = {label: {"predicted_s": p.predicted_s} for label, p in cands}
    lead = weighed[ranked[1][0]] / weighed[best_label] - 1.0 if len(ranked) > 1 else float("inf")
    if verify_on is None or lead >= DECIDE_MARGIN:
        why = (f"predicted {100 * lead:.0f}% faster than the next candidate ({ranked[1][0]})"
               if len(ranked) > 1 else "the only candidate")
        if verify_on is None and lead < DECIDE_MARGIN:
            why += "; no SoC to measure on"
        best.notes = {"chosen": best_label, "chosen_by": "prediction", "why": why, "candidates": table}
        return best
    # The single-processor plans are always measured: they need no second core, so they
    # are what a busy machine leaves, and their predictions miss the dispatch gaps.
    pool = [(label, p) for label, p in ranked
            if weighed[label] <= weighed[best_label] * MEASURE_WINDOW or label in SINGLES]
    times = measure_plans(graph, verify_on, [p for _, p in pool], sample_input(graph) if x is None else x,
                          prepared=prepared, rounds=rounds, profile=profile)
    for (label, _), t in zip(pool, times):
        table[label]["measured_s"] = t
    # A run-off: candidates within RUNOFF_WINDOW of the fastest (and the fastest single
    # processor, when a co-executed plan leads it by little) run again, twice as many rounds;
    # their medians from the run-off decide.  Plans a few percent apart swap places between
    # runs of `rounds` rounds on a 2-core host.
    fastest = min(times)
    close = [i for i, t in enumerate(times) if t <= fastest * (1.0 + RUNOFF_WINDOW)]
    single = min((i for i, (lb, _) in enumerate(pool) if lb in SINGLES), key=times.__getitem__, default=None)
    if single is not None and single not in close \
            and times[single] <= fastest * (1.0 + MEASURED_MARGIN + RUNOFF_WINDOW):
        close.append(single)
    if len(close) > 1:
        again = measure_plans(graph, verify_on, [pool[i][1] for i in close], sample_input(graph) if x is None else x,
                              prepared=prepared, rounds=2 * rounds, profile=profile)
        # The others keep their first-pass lag behind the fastest (the run-off may see the
        # host in another state): scaled by how the fastest's time changed.
        drift = min(again) / fastest
        times = [t * drift for t in times]
        for i, t in zip(close, again):
            times[i] = t
            table[pool[i][0]]["runoff_s"] = t
    k = min(range(len(times)), key=times.__getitem__)
    runner_up = min((t for i, t in enumerate(times) if i != k), default=None)
    why = (f"predicted margin {100 * lead:.0f}% < {100 * DECIDE_MARGIN:.0f}%: fastest median of "
           f"{len(pool)} measured candidates")
    if len(close) > 1:
        why += f" ({len(close)} of them again in a run-off of {2 * rounds} rounds)"
    if runner_up is not None:
        why += f", {100 * (runner_up / times[k] - 1):.1f}% ahead of the next"
    single = min((i for i, (lb, _) in enumerate(pool) if lb in SINGLES), key=times.__getitem__, default=None)
    if single is not None and _coexecuted(pool[k][1]) and times[k] > times[single] * (1.0 - MEASURED_MARGIN):
        why = (f"predicted margin {100 * lead:.0f}% < {100 * DECIDE_MARGIN:.0f}%: measured; the fastest, "
               f"{pool[k][0]!r}, co-executes and beats {pool[single][0]!r} by less than "
               f"{100 * MEASURED_MARGIN:.0f}%")
        k = single
    label, chosen = pool[k]
    chosen.notes = {"chosen": label, "chosen_by": "measurement", "why": why, "candidates": table}
    return chosen


def sample_input(graph, seed: int = 0):
    """A seeded standard-normal float32 input (an array, or a dict for several inputs)."""
    rng = np.random.default_rng(seed)
    xs = {t: rng.standard_normal(graph.shape(t), dtype=np.float32) for t in graph.inputs}
    return next(iter(xs.values())) if len(xs) == 1 else xs


#: Warm-up runs of each plan before :func:`measure_plans` times it: in a fresh process the first
#: two or three runs of a plan were 1.5-3x slower than the rest (AVX-512 host, resnet18).
WARMUP_RUNS = 3


def measure_plans(graph, soc, plans, x, *, rounds: int = 5, prepared: Prepared | None = None,
                  profile=None) -> list:
    """Median wall seconds of each plan on ``soc``, runs interleaved round by round
    (:data:`WARMUP_RUNS` warm-up runs each first).  With ``profile`` (a cost-profile name or
    object other than the host's), each run's seconds are its trace replayed under that
    profile: the latency on the emulated SoC."""
    exs = []
    emulate = profile is not None and getattr(profile, "name", profile) != "host"
    try:
        for p in plans:
            exs.append(Executor(graph, p, soc, prepared=prepared))

        def sampler(ex):
            def sample():
                ex.run(x)
                return soc.trace.replay(profile) if emulate else ex.last_wall
            return sample

        timings = measure_interleaved([sampler(ex) for ex in exs], rounds=rounds, warmup=WARMUP_RUNS)
        return [t.median for t in timings]
    finally:
        for ex in exs:
            ex.close()
        soc.trace.clear()


def make_plan(strategy: str, graph, costs=None, *, verify_on=None, prepared: Prepared | None = None,
              profile=None) -> Plan:
    """The plan of one of :data:`STRATEGIES` (``codl`` is verified on ``verify_on`` when given,
    by latency under ``profile`` when that is an emulated SoC's; see :func:`plan_codl`)."""
    view = prepared.view if prepared is not None else None
    if strategy in ("cpu", "gpu"):
        return plan_single(graph, strategy, view=view)
    if strategy == "mulayer":
        return plan_mulayer(graph, as_cost_source(costs, view), view=view)
    if strategy in ("codl", "codl-nochain"):
        if costs is None:
            raise ValueError(f"make_plan: strategy {strategy!r} needs a cost source")
        return plan_codl(graph, costs, chains=strategy == "codl", verify_on=verify_on, prepared=prepared,
                         profile=profile)
    raise ValueError(f"make_plan: unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
