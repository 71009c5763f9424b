"""Cost sources: the one question every planner asks, "how long does this take here".

A cost source answers how long a processor takes to compute a region of an
op's output, and how long each sharing operation (transform, map, unmap,
sync) takes.  Measured costs (:class:`coinfer.graph.costs.measured.MeasuredCosts`),
fitted predictors and hand-made tables (:class:`TableCosts`) are all cost
sources; planners take one and never care which.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..coexec.regions import Region, region_fraction
from ..coexec.view import OpView


class CostSource(Protocol):
    def compute(self, op: OpView, proc: str, region: Region, concurrent: bool = False) -> float:
        """Seconds for ``proc`` to compute ``region`` of ``op``'s output: ``cpu`` (on
        buffers), ``gpu`` (on images) or ``gpu_buffer`` (the GPU on buffers; infinite
        where the source does not know it);
        ``concurrent`` when the other processor is computing at the same time (the
        two share caches and memory bandwidth)."""

    def transform(self, nbytes: int) -> float: ...

    def map(self, nbytes: int) -> float: ...

    def unmap(self, nbytes: int) -> float: ...

    def sync(self) -> float: ...


@dataclass
class TableCosts:
    """Hand-written costs: per op and processor a fixed part plus a part linear in
    the output fraction; sharing linear in bytes.  Used in tests and studies."""
    full: dict  # op name -> {"cpu": s, "gpu": s, optionally "gpu_buffer": s}; a missing key costs inf
    fixed: float = 0.0
    transform_per_byte: float = 0.0
    transform_fixed: float = 0.0
    map_per_byte: float = 0.0
    map_fixed: float = 0.0
    sync_s: float = 0.0

    def compute(self, op, proc, region, concurrent=False):
        f = region_fraction(op, region)
        if f == 0:
            return 0.0
        t = self.full[op.name].get(proc)
        return float("inf") if t is None else self.fixed + f * t

    def transform(self, nbytes):
        return self.transform_fixed + self.transform_per_byte * nbytes if nbytes else 0.0

    def map(self, nbytes):
        return self.map_fixed + self.map_per_byte * nbytes if nbytes else 0.0

    def unmap(self, nbytes):
        return self.map(nbytes)

    def sync(self):
        return self.sync_s
