"""A plain latency API: the predicted latency of a model on an SoC under a strategy, and its breakdown.

``coinfer.graph.latency(model, soc="host", strategy="codl", ...)`` answers one
question for a simulator of any kind (or any language that can call Python):
how long does one inference take here, and where does the time go.  It
returns a :class:`Latency` (seconds; :meth:`Latency.as_dict` gives plain
numbers and strings).

``model``
    A zoo name (``alexnet``, ...), a branchy model (``branchy_alexnet``,
    ``branchy_lenet``), a path to an ``.onnx`` file (``pip install
    'coinfer[onnx]'``), or a :class:`~coinfer.graph.ir.Graph`.
``soc``
    A cost profile name (:func:`coinfer.hw.profile.profiles`) or a
    :class:`~coinfer.hw.profile.CostProfile`: the SoC that co-executes (CoDL
    strategies), or the device (device-edge strategies).
``strategy``
    - CoDL, one SoC: ``cpu``, ``gpu``, ``mulayer``, ``codl-nochain``, ``codl``
      (:mod:`coinfer.graph.coexec.strategies`; ``codl`` is planned from the
      costs alone, without measuring candidates), or a
      :class:`~coinfer.graph.coexec.plan.Plan`.  Breakdown: ``compute_s`` per
      processor (``cpu``, ``gpu``), ``sharing_s`` (transform, map, unmap,
      sync), no transfer.  CoDL's model (:mod:`coinfer.graph.coexec.costmodel`)
      overlaps the two processors, so ``total_s`` is not their sum.
    - Device-edge (Edgent), with a ``bandwidth`` or a ``link``:
      ``device-only``, ``edge-only``, ``neurosurgeon`` (last exit,
      device-first, fastest cut), ``edgent`` (the static planner: best
      accuracy meeting ``target_s``; without a target, the most accurate
      exit's fastest plan), or a plan ``(exit, cut, direction)`` (or anything
      with those attributes, e.g. a :class:`~coinfer.graph.edgent.static.Decision`).
      Branchy models only.  Breakdown: ``compute_s`` on ``device`` and
      ``edge`` (profile ``edge``, default ``desktop_edge``), ``transfer_s``
      (RTT/2 + 8 bytes / bandwidth per crossing tensor); ``total_s`` is the sum.
``bandwidth`` / ``link``
    A bandwidth (``"500kbps"``, bit/s) with ``rtt_s``, or a
    :class:`~coinfer.hw.Link`; a link that follows a bandwidth trace is read at
    trace time ``at`` (the plan chosen at the bandwidth then, its transfers
    integrated over the trace).
``costs``
    Where per-op seconds come from, on *this host*; the profile ``soc`` scales
    them.  Default: the per-host cost table of the model
    (:mod:`coinfer.graph.costs.tables`: measured once on this machine and
    cached, so answers are the same in every process).  Otherwise a CoDL cost
    source (:class:`~coinfer.graph.costs.source.CostSource`, e.g.
    :class:`~coinfer.graph.costs.measured.MeasuredCosts`) or, for device-edge
    strategies, host seconds ``{op: {"device": s, "edge": s}}``.

**Cost per call.**  The first call for a (model, soc, strategy, costs) plans
and keeps the plan and its breakdown (CoDL), or the Edgent candidates'
per-side compute, bytes and crossings (device-edge); later calls are a
dictionary look-up, or one vectorised decision over the candidates at the
given bandwidth.  Objects (a Graph, a Plan, a cost source) are recognised by
identity: pass the same one again to reuse its plans.  A CoDL answer is the
same :class:`Latency` object for every call with the same arguments: treat
it as read-only.  ``bench/test_latency.py`` measures the cost per call.
:func:`clear_cache` forgets everything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..hw.link import Link, parse_rate
from ..hw.profile import CostProfile, get_profile
from .costs.emulated import EmulatedCosts

__all__ = ["Latency", "latency", "clear_cache", "CODL_STRATEGIES", "EDGE_STRATEGIES", "load_graph"]

CODL_STRATEGIES = ("cpu", "gpu", "mulayer", "codl-nochain", "codl")
EDGE_STRATEGIES = ("device-only", "edge-only", "neurosurgeon", "edgent")


@dataclass(frozen=True)
class Latency:
    """A predicted latency (seconds) and where it goes.

    ``compute_s``: busy seconds per processor (``cpu``/``gpu``, or
    ``device``/``edge``); ``sharing_s``: CoDL's transform, map, unmap and
    sync; ``transfer_s``: the link's.  ``plan``: the
    :class:`~coinfer.graph.coexec.plan.Plan`, or ``(exit, cut, direction)``.
    ``met``: ``total_s <= target_s`` when a target was given; ``accuracy``:
    the exit's measured accuracy (device-edge plans of trained models).
    """

    total_s: float
    compute_s: dict
    sharing_s: float
    transfer_s: float
    model: str
    soc: str
    strategy: str
    plan: object = field(repr=False)
    edge: str | None = None
    bandwidth_bps: float | None = None
    target_s: float | None = None
    met: bool | None = None
    accuracy: float | None = None

    @property
    def total_ms(self) -> float:
        return self.total_s * 1e3

    def plan_text(self) -> str:
        """The plan in one line: ``exit 4 cut 13 edge-first``, or the chains
        ``gpu:conv1..pool2 | H0.6:conv3..conv5 | cpu:fc6..prob``."""
        if isinstance(self.plan, tuple):
            e, p, d = self.plan
            return f"exit {e + 1} cut {p} {d}"
        parts = []
        for c in self.plan.chains:
            where = c.device if not c.split else f"{c.dim}{c.ratio:.1f}"
            span = c.ops[0] if len(c.ops) == 1 else f"{c.ops[0]}..{c.ops[-1]}"
            parts.append(f"{where}:{span}")
        return " | ".join(parts)

    def as_dict(self) -> dict:
        """Plain numbers and strings (milliseconds), e.g. for a row of a table or JSON."""
        d = {"model": self.model, "soc": self.soc, "strategy": self.strategy, "total_ms": self.total_s * 1e3}
        for k, v in self.compute_s.items():
            d[f"{k}_ms"] = v * 1e3
        d.update({"sharing_ms": self.sharing_s * 1e3, "transfer_ms": self.transfer_s * 1e3, "edge": self.edge,
                  "bandwidth_bps": self.bandwidth_bps,
                  "target_ms": None if self.target_s is None else self.target_s * 1e3,
                  "met": self.met, "accuracy": self.accuracy, "plan": self.plan_text()})
        if isinstance(self.plan, tuple):
            d.update(exit=self.plan[0], cut=self.plan[1], direction=self.plan[2])
        return d


# -- caches ------------------------------------------------------------------------------

_GRAPHS: dict = {}  # spec -> Graph
_HELD: dict = {}  # id -> object whose id is part of a key (kept alive while the key is)
_CODL: dict = {}  # (graph, soc, strategy, costs) -> Latency without a target
_SOURCES: dict = {}  # (graph, costs) -> host cost source
_EDGE: dict = {}  # (graph, device, edge, costs) -> _EdgeModel
_VIEWS: dict = {}


def clear_cache() -> None:
    """Forget every loaded model, plan and cost source."""
    for d in (_GRAPHS, _HELD, _CODL, _SOURCES, _EDGE, _VIEWS):
        d.clear()


MAX_HELD = 256  # objects keyed by identity (graphs, profiles, plans, cost sources) before the caches reset


def _key(obj):
    """A cache key for ``obj``: itself if it is a plain value, else its id (kept alive,
    so the id is not reused while the key is cached)."""
    if obj is None or isinstance(obj, (str, int, float, tuple)):
        return obj
    _HELD[id(obj)] = obj
    return ("id", id(obj))


def load_graph(model):
    """A Graph from a zoo or branchy name, an ``.onnx`` path, or a Graph (passed through);
    names and paths are loaded once per process."""
    from .ir import Graph

    if isinstance(model, Graph):
        return model
    if not isinstance(model, str):
        import os

        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        else:
            raise TypeError(f"latency: model must be a model name, an .onnx path or a Graph, "
                            f"got {type(model).__name__}")
    g = _GRAPHS.get(model)
    if g is None:
        from .edge.catalog import UnknownModel, load

        try:
            g = load(model)
        except UnknownModel as e:
            raise ValueError(f"latency: {e}") from None
        _GRAPHS[model] = g
    return g


def _profile(soc) -> CostProfile:
    if not isinstance(soc, (str, CostProfile)):
        raise TypeError(f"latency: soc must be a profile name or a CostProfile, got {type(soc).__name__}")
    return get_profile(soc)


def _view(gk, graph):
    v = _VIEWS.get(gk)
    if v is None:
        from .coexec.view import view_of

        v = _VIEWS[gk] = view_of(graph)
    return v


def _codl(gk, graph, profile: CostProfile, strategy, costs, ck) -> "Latency":
    from .coexec import strategies as st
    from .coexec.costmodel import chain_cost, outputs_of
    from .coexec.plan import Plan

    src = _SOURCES.get((gk, ck))
    if src is None:
        if costs is None:
            from .costs.tables import codl_costs

            costs = codl_costs(graph)
        src = _SOURCES[(gk, ck)] = costs
    on = EmulatedCosts(src, profile) if not _is_host(profile) else src
    view = _view(gk, graph)
    if isinstance(strategy, Plan):
        plan = strategy
        names = [n for c in plan.chains for n in c.ops]
        if names != [op.name for op in graph.ops]:
            raise ValueError(f"latency: the plan's chains must cover model {graph.name!r}'s ops in order")
    elif strategy in ("cpu", "gpu"):
        plan = st.plan_single(graph, strategy, view=view)
    elif strategy == "mulayer":
        plan = st.plan_mulayer(graph, on, view=view)
    else:
        plan = st.plan_codl(graph, on, chains=strategy == "codl", view=view)
    compute = {"cpu": 0.0, "gpu": 0.0}
    sharing = total = 0.0
    if plan.shared_layout == "buffer" and all(c.device == "cpu" for c in plan.chains):
        total = compute["cpu"] = sum(on.compute(op, "cpu", (0, op.out_rows, 0, op.out_channels)) for op in view.ops)
    else:
        canon: dict = {}  # where each chain leaves its outputs, as plan_cost prices the next chain
        for c in plan.chains:
            cc = chain_cost(view, c, on, canon)
            canon.update(outputs_of(view, c))
            total += cc.total
            compute["cpu"] += cc.cpu_compute
            compute["gpu"] += cc.gpu_compute
            sharing += cc.sharing
    return Latency(total, compute, sharing, 0.0, graph.name, profile.name, plan.strategy, plan)


def _is_host(profile: CostProfile) -> bool:
    return profile.is_free and profile.scale("cpu") == 1.0 and profile.scale("gpu") == 1.0


class _EdgeModel:
    """Edgent's candidates for one model, device and edge, with each candidate's compute
    per side (the planner keeps only their sum)."""

    def __init__(self, graph, device: CostProfile, edge: CostProfile, host: dict):
        from ..hw.link import edge_profile
        from .costs.sides import MeasuredSideCosts
        from .edgent.cut import placement
        from .edgent.exits import check_exits
        from .edgent.static import StaticPlanner

        exits = check_exits(graph)
        acc = [e.accuracy if e.accuracy is not None else 0.0 for e in exits]  # untrained: all alike
        self.graph = graph
        self.costs = MeasuredSideCosts.of_host(host, edge_profile(device, edge))
        self.planner = StaticPlanner(graph, self.costs, accuracy=acc)
        self.last = len(exits) - 1
        self.n_ops = len(placement(graph, self.last, 0, "edge-first").ops)
        self.neurosurgeon = StaticPlanner(graph, self.costs, accuracy=acc, directions=("device-first",),
                                          exits=[self.last])
        self.index = {k: i for i, k in enumerate(self.planner.keys)}
        side = {"device": [], "edge": []}
        self.placements = []
        for e, p, d in self.planner.keys:
            pl = placement(graph, e, p, d)
            self.placements.append(pl)
            for s in side:
                side[s].append(sum(self.costs.seconds(op, s) for op, w in zip(pl.ops, pl.sides) if w == s))
        self.device_s = np.array(side["device"])
        self.edge_s = np.array(side["edge"])
        self.accuracy = [None if e.accuracy is None else float(e.accuracy) for e in exits]

    def choose(self, strategy, bps: float, rtt_s: float, target_s: float) -> int:
        if isinstance(strategy, str):
            if strategy == "device-only":
                return self.index[(self.last, 0, "edge-first")]
            if strategy == "edge-only":
                return self.index[(self.last, self.n_ops, "edge-first")]
            if strategy == "neurosurgeon":
                return self.index[self.neurosurgeon.plan(bps, target_s, rtt_s).key]
            lat = self.planner.latencies(bps, rtt_s)
            return self.planner.select(lat, target_s)[0]
        key = tuple(strategy) if isinstance(strategy, tuple) else (strategy.exit, strategy.cut, strategy.direction)
        i = self.index.get(key)
        if i is None:
            raise ValueError(f"latency: model {self.graph.name!r} has no plan (exit, cut, direction) = {key!r}")
        return i


def _edge(gk, graph, device: CostProfile, edge: CostProfile, costs, ck, dk, ek) -> _EdgeModel:
    m = _EDGE.get((gk, dk, ek, ck))
    if m is None:
        if costs is None:
            from .costs.tables import edgent_host

            costs = edgent_host(graph)
        if not isinstance(costs, dict):
            raise TypeError("latency: a device-edge strategy takes costs as host seconds {op: {'device': s, "
                            f"'edge': s}}, got {type(costs).__name__}")
        m = _EDGE[(gk, dk, ek, ck)] = _EdgeModel(graph, device, edge, costs)
    return m


def _edge_latency(m: _EdgeModel, strategy, name: str, device: CostProfile, edge: CostProfile, bps: float,
                  link: Link | None, rtt_s: float, at: float, target_s: float | None) -> Latency:
    t = math.inf if target_s is None else target_s
    i = m.choose(strategy, bps, rtt_s, t)
    key = m.planner.keys[i]
    dev, edg = float(m.device_s[i]), float(m.edge_s[i])
    if link is None or link.trace is None:
        xfer = float(m.planner.transfers[i] * (rtt_s / 2) + m.planner.bytes[i] * (8.0 / bps))
    else:
        xfer = _trace_transfers(m, i, link, at)
    total = dev + edg + xfer
    return Latency(total, {"device": dev, "edge": edg}, 0.0, xfer, m.graph.name, device.name, name, key,
                   edge=edge.name, bandwidth_bps=bps, target_s=target_s,
                   met=None if target_s is None else total <= target_s, accuracy=m.accuracy[key[0]])


def _trace_transfers(m: _EdgeModel, i: int, link: Link, at: float) -> float:
    """The transfers of candidate ``i`` run from trace time ``at``, stage by stage."""
    from ..hw.sim import transfer_seconds
    from .edgent.stages import frame_stages

    now, xfer = at, 0.0
    for s in frame_stages(m.placements[i], m.costs):
        if s.kind == "compute":
            now += s.seconds
        else:
            d = transfer_seconds(link, s.nbytes, s.crossings, now)
            now += d
            xfer += d
    return xfer


def latency(model, soc="host", strategy="codl", *, bandwidth=None, link: Link | None = None, rtt_s: float = 0.0,
            at: float = 0.0, target_s: float | None = None, edge="desktop_edge", costs=None) -> Latency:
    """The predicted latency of ``model`` on ``soc`` under ``strategy`` (see the module docstring).

    Raises ValueError for an unknown model, profile or strategy, a device-edge
    strategy without a bandwidth or link (or on a model without exits), a CoDL
    strategy given one, or a bandwidth <= 0; TypeError for arguments of the
    wrong kind; ImportError naming the extra to install for ``.onnx`` files.
    """
    from .coexec.plan import Plan

    if len(_HELD) >= MAX_HELD:
        clear_cache()  # callers passing new objects every call: bounded memory (and no reuse)
    graph = load_graph(model)
    gk = model if isinstance(model, str) else _key(graph)
    profile = _profile(soc)
    sk = soc if isinstance(soc, str) else _key(soc)
    ck = None if costs is None else _key(costs)
    if target_s is not None and not (isinstance(target_s, (int, float)) and target_s > 0):
        raise ValueError(f"latency: target_s must be a number of seconds > 0, got {target_s!r}")
    if isinstance(strategy, Plan) or strategy in CODL_STRATEGIES:
        if bandwidth is not None or link is not None:
            raise ValueError(f"latency: strategy {getattr(strategy, 'strategy', strategy)!r} runs on one SoC; a "
                             f"bandwidth or link is for the device-edge strategies ({', '.join(EDGE_STRATEGIES)})")
        k = (gk, sk, strategy if isinstance(strategy, str) else _key(strategy), ck)
        base = _CODL.get(k)
        if base is None:
            base = _CODL[k] = _codl(gk, graph, profile, strategy, costs, ck)
        if target_s is None:
            return base
        return replace(base, target_s=target_s, met=base.total_s <= target_s)
    if isinstance(strategy, str) and strategy not in EDGE_STRATEGIES:
        raise ValueError(f"latency: unknown strategy {strategy!r}; choose from "
                         f"{', '.join(CODL_STRATEGIES + EDGE_STRATEGIES)}, a Plan or (exit, cut, direction)")
    if not isinstance(strategy, (str, tuple)) and not hasattr(strategy, "exit"):
        raise TypeError(f"latency: strategy must be a name, a Plan or (exit, cut, direction), "
                        f"got {type(strategy).__name__}")
    if not graph.exits:
        raise ValueError(f"latency: device-edge strategies need a branchy model (with exits); {graph.name!r} has none")
    if (bandwidth is None) == (link is None):
        raise ValueError("latency: a device-edge strategy needs exactly one of bandwidth and link")
    if link is not None:
        if not isinstance(link, Link):
            raise TypeError(f"latency: link must be a coinfer.hw.Link, got {type(link).__name__}")
        bps, rtt_s = link.bandwidth(at), link.rtt_s
    else:
        bps = parse_rate(bandwidth)
    if not (isinstance(rtt_s, (int, float)) and math.isfinite(rtt_s) and rtt_s >= 0):
        raise ValueError(f"latency: rtt_s must be a finite number >= 0, got {rtt_s!r}")
    eprof = _profile(edge)
    ek = edge if isinstance(edge, str) else _key(edge)
    m = _edge(gk, graph, profile, eprof, costs, ck, sk, ek)
    name = strategy if isinstance(strategy, str) else "plan"
    return _edge_latency(m, strategy, name, profile, eprof, max(bps, 1.0), link, float(rtt_s), float(at), target_s)
