"""Cost sources for device-edge co-inference: seconds per op on each side.

Edgent's planners ask one question: how long does op ``name`` take on the
``"device"`` or on the ``"edge"``, each emulated under its own cost profile.
:class:`TableSideCosts` answers from a hand-made table (tests, studies);
:class:`MeasuredSideCosts` times the op on the host with the same call the
co-inference runtime makes, on that side's pinned processor thread, and scales
the trimmed mean of its calls by the side's profile (``CostProfile.scale``).  A latency predictor
(Edgent's per-layer regressions, Table I) slots in as another source with the
same method.
"""
from __future__ import annotations

from typing import Protocol

from ..progress import Progress

SIDES = ("device", "edge")


class SideCostSource(Protocol):
    def seconds(self, op: str, side: str) -> float:
        """Emulated seconds for ``side`` ('device' | 'edge') to run op ``op``."""


class TableSideCosts:
    """``TableSideCosts({op: {"device": s, "edge": s}})``."""

    def __init__(self, table: dict):
        for op, row in table.items():
            for side in SIDES:
                if side not in row or not row[side] >= 0:
                    raise ValueError(f"TableSideCosts: op {op!r} needs a time >= 0 s for side {side!r}, got {row}")
        self.table = {op: dict(row) for op, row in table.items()}

    def seconds(self, op: str, side: str) -> float:
        return float(self.table[op][side])


class MeasuredSideCosts:
    """Per-op seconds measured on ``runner``'s processors (a
    :class:`coinfer.graph.edgent.runtime.CoRunner`, ``runner.time_ops``): the
    mean call (fastest and slowest fifth left out) over ``repeats`` runs of
    each exit's sub-model after one warm-up, times ``runner.profile.scale(side)``.

    ``host[op][side]`` keeps the measured host seconds, so a new profile
    re-scales without re-measuring (:meth:`under`).
    """

    def __init__(self, runner, *, repeats: int = 9, progress: bool = True, host: dict | None = None):
        self.profile = runner.profile
        if host is None:
            per_side = {}
            with Progress(len(SIDES), f"measure {runner.graph.name}", enabled=progress) as prog:
                for side in SIDES:
                    prog.step(f"{side}: {repeats} runs of every op")
                    per_side[side] = runner.time_ops(side, repeats)
            host = {op: {side: per_side[side][op] for side in SIDES} for op in per_side[SIDES[0]]}
        self.host = host

    def seconds(self, op: str, side: str) -> float:
        return self.host[op][side] * self.profile.scale(side)

    def under(self, profile) -> "MeasuredSideCosts":
        """The same measurements scaled by another profile (processor names 'device', 'edge')."""
        return MeasuredSideCosts.of_host(self.host, profile)

    @classmethod
    def of_host(cls, host: dict, profile) -> "MeasuredSideCosts":
        """Host seconds ``{op: {"device": s, "edge": s}}`` measured before (for example
        cached, :mod:`.tables`) scaled by ``profile`` (processor names 'device', 'edge')."""
        for op, row in host.items():
            for side in SIDES:
                if not (side in row and row[side] >= 0):
                    raise ValueError(f"MeasuredSideCosts: op {op!r} needs host seconds >= 0 for side {side!r}, "
                                     f"got {row}")
        new = object.__new__(cls)
        new.profile, new.host = profile, host
        return new
