"""Edgent's static planner: the best (exit, cut, direction) for one bandwidth and target.

The latency of exit ``i`` with cut ``p`` (Edgent, MECOMM 2018:
``A(i,p) = sum_{j<p} ES_j + sum_{k>=p} ED_k + Input/B + D_{p-1}/B``, with the
transfers of :mod:`.cut` instead of the fixed two terms) is

    sum of the costs of each layer on its side
    + sum over crossings of (RTT/2 + 8 * bytes / B).

The planner searches every exit, every cut ``0..N`` and each direction it was
given, and returns the highest accuracy whose latency meets the target; ties
go to the lower latency, then to the earlier candidate.  If none meets it,
the decision says so (``met=False``) and returns the fastest plan.  Everything
that does not depend on the bandwidth (compute per candidate, bytes and number
of transfers) is tabulated once, so a decision is a few vector operations
(Edgent reports under 1 ms; :attr:`Decision.decision_s` is measured).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .cut import DIRECTIONS, check_direction, placement
from .exits import check_exits

__all__ = ["Candidate", "Decision", "StaticPlanner"]


@dataclass(frozen=True)
class Candidate:
    exit: int
    cut: int
    direction: str
    predicted_s: float
    accuracy: float

    def as_json(self) -> dict:
        return {"exit": self.exit, "cut": self.cut, "direction": self.direction,
                "predicted_ms": self.predicted_s * 1e3, "accuracy": self.accuracy}


@dataclass(frozen=True)
class Decision:
    """The chosen plan; ``met`` is False when no candidate meets the target (then this
    is the fastest); ``decision_s`` the measured time the search took."""

    exit: int
    cut: int
    direction: str
    predicted_s: float
    accuracy: float
    met: bool
    index: int
    decision_s: float = 0.0

    @property
    def key(self) -> tuple:
        return (self.exit, self.cut, self.direction)


class StaticPlanner:
    """``StaticPlanner(graph, costs, accuracy=None, directions=DIRECTIONS, exits=None)``.

    ``costs`` is a side cost source (``seconds(op, side)``); ``accuracy`` one
    fraction per exit (default: each exit's measured ``accuracy``);
    ``exits`` restricts the search to some exit indices (e.g. ``[last]`` for
    Neurosurgeon).  Candidates are ordered by exit, direction, cut.
    """

    def __init__(self, graph, costs, *, accuracy=None, directions=DIRECTIONS, exits=None):
        all_exits = check_exits(graph)
        if accuracy is None:
            accuracy = [e.accuracy for e in all_exits]
            if any(a is None for a in accuracy):
                raise ValueError(f"StaticPlanner: graph {graph.name!r} has exits without a measured accuracy; "
                                 "pass accuracy=[...] (one per exit)")
        if len(accuracy) != len(all_exits):
            raise ValueError(f"StaticPlanner: accuracy needs {len(all_exits)} values, got {len(accuracy)}")
        directions = tuple(check_direction(d) for d in directions)
        if not directions:
            raise ValueError("StaticPlanner: directions must not be empty")
        exits = range(len(all_exits)) if exits is None else exits
        self.graph = graph
        self.directions = directions
        self.exit_accuracy = [float(a) for a in accuracy]
        rows = []
        for e in exits:
            if not 0 <= e < len(all_exits):
                raise ValueError(f"StaticPlanner: exit index {e} out of range [0, {len(all_exits)})")
            n = len(placement(graph, e, 0, directions[0]).ops)
            for d in directions:
                for p in range(n + 1):
                    pl = placement(graph, e, p, d)
                    compute = sum(costs.seconds(op, side) for op, side in zip(pl.ops, pl.sides))
                    rows.append((e, p, d, compute, len(pl.crossings), pl.transfer_bytes))
        self.keys = [(r[0], r[1], r[2]) for r in rows]
        self.exit = np.array([r[0] for r in rows])
        self.cut = np.array([r[1] for r in rows])
        self.compute_s = np.array([r[3] for r in rows], np.float64)
        self.transfers = np.array([r[4] for r in rows], np.float64)
        self.bytes = np.array([r[5] for r in rows], np.float64)
        self.accuracy = np.array([self.exit_accuracy[r[0]] for r in rows], np.float64)
        self._order = np.arange(len(rows))

    def __len__(self) -> int:
        return len(self.keys)

    def latencies(self, bandwidth_bps: float, rtt_s: float = 0.0) -> np.ndarray:
        """Predicted seconds of every candidate at ``bandwidth_bps`` (> 0) and ``rtt_s``."""
        if not bandwidth_bps > 0:
            raise ValueError(f"StaticPlanner: bandwidth must be > 0 bit/s, got {bandwidth_bps!r}")
        return self.compute_s + self.transfers * (rtt_s / 2) + self.bytes * (8.0 / bandwidth_bps)

    def candidates(self, bandwidth_bps: float, rtt_s: float = 0.0) -> list[Candidate]:
        lat = self.latencies(bandwidth_bps, rtt_s)
        return [Candidate(e, p, d, float(t), float(a))
                for (e, p, d), t, a in zip(self.keys, lat, self.accuracy)]

    def select(self, lat: np.ndarray, target_s: float) -> tuple[int, bool]:
        """Index of the chosen candidate among latencies ``lat``, and whether it meets the target."""
        met = lat <= target_s
        if met.any():
            idx = np.flatnonzero(met)
            best = idx[np.lexsort((idx, lat[idx], -self.accuracy[idx]))[0]]
            return int(best), True
        return int(np.lexsort((self._order, -self.accuracy, lat))[0]), False

    def plan(self, bandwidth_bps: float, target_s: float, rtt_s: float = 0.0) -> Decision:
        """The decision for one bandwidth (bit/s) and latency target (s)."""
        t0 = time.perf_counter()
        lat = self.latencies(bandwidth_bps, rtt_s)
        i, met = self.select(lat, target_s)
        dt = time.perf_counter() - t0
        e, p, d = self.keys[i]
        return Decision(e, p, d, float(lat[i]), float(self.accuracy[i]), met, i, dt)

    def index(self, exit: int, cut: int, direction: str) -> int:
        return self.keys.index((exit, cut, direction))
