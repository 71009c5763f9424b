"""Predicted latency of a chain, from a pluggable cost source.

CoDL's latency model of a co-executed op (MobiSys 2022, Sec. 5):
T = T_transform + T_map + T_presync + max(T_cpu, T_gpu); inside a chain only the
chain's ends pay for sharing.  Here, following CoDL's sharing protocol, the
GPU queue runs the partial image->buffer transform of the CPU's input, the CPU
maps (cache maintenance) and computes its share while the GPU computes its own,
the CPU unmaps its output share, and after the post-sync the GPU transforms the
CPU's share back to image:

    T = tr_in + max(T_gpu, sync + map + T_cpu + unmap) + sync + tr_out

A cost source answers five questions (see :class:`CostSource`); the planner
does not care whether the answers were measured on this machine's processors
(:class:`coinfer.graph.profiler.MeasuredCosts`), predicted, or written by hand
(:class:`TableCosts`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .opview import GraphView, OpView
from .plan import Chain
from .regions import Region, chain_regions, empty


class CostSource(Protocol):
    def compute(self, op: OpView, proc: str, region: Region, concurrent: bool = False) -> float:
        """Seconds for ``proc`` ('cpu'|'gpu') to compute ``region`` of ``op``'s output;
        ``concurrent`` when the other processor is computing at the same time (the
        two share caches and memory bandwidth)."""

    def transform(self, nbytes: int) -> float: ...

    def map(self, nbytes: int) -> float: ...

    def unmap(self, nbytes: int) -> float: ...

    def sync(self) -> float: ...


def region_fraction(op: OpView, region: Region) -> float:
    """Share of ``op``'s output that ``region`` covers."""
    if empty(region):
        return 0.0
    h, c = op.out_rows, op.out_channels
    return ((region[1] - region[0]) / h) * ((region[3] - region[2]) / c)


@dataclass
class TableCosts:
    """Hand-written costs: per op and processor a fixed part plus a part linear in
    the output fraction; sharing linear in bytes.  Used in tests and studies."""
    full: dict  # op name -> {"cpu": seconds, "gpu": seconds}
    fixed: float = 0.0
    transform_per_byte: float = 0.0
    transform_fixed: float = 0.0
    map_per_byte: float = 0.0
    map_fixed: float = 0.0
    sync_s: float = 0.0

    def compute(self, op, proc, region, concurrent=False):
        f = region_fraction(op, region)
        return 0.0 if f == 0 else self.fixed + f * self.full[op.name][proc]

    def transform(self, nbytes):
        return self.transform_fixed + self.transform_per_byte * nbytes if nbytes else 0.0

    def map(self, nbytes):
        return self.map_fixed + self.map_per_byte * nbytes if nbytes else 0.0

    def unmap(self, nbytes):
        return self.map(nbytes)

    def sync(self):
        return self.sync_s


@dataclass
class ChainCost:
    total: float
    gpu_compute: float
    cpu_compute: float
    sharing: float  # transform + map + unmap + sync on the critical path


def _bytes(view: GraphView, tensors: dict) -> int:
    total = 0
    for t, (r0, r1, c0, c1) in tensors.items():
        if r1 > r0 and c1 > c0:
            total += view.nbytes(view.shapes[t], rows=(r0, r1), channels=(c0, c1))
    return total


def chain_cost(view: GraphView, chain: Chain, costs: CostSource) -> ChainCost:
    """Predicted seconds of one chain under the sharing protocol above."""
    reg = chain_regions(view, chain)
    both = reg.gpu.active() and reg.cpu.active()
    gpu_c = sum(costs.compute(view.op(n), "gpu", r, both) for n, r in reg.gpu.compute.items() if not empty(r))
    cpu_c = sum(costs.compute(view.op(n), "cpu", r, both) for n, r in reg.cpu.compute.items() if not empty(r))
    if not reg.cpu.active():
        return ChainCost(gpu_c, gpu_c, 0.0, 0.0)
    b_in = _bytes(view, reg.cpu.needs)
    b_out = _bytes(view, reg.cpu.shares)
    tr_in, tr_out = costs.transform(b_in), costs.transform(b_out)
    mp, ump, sy = costs.map(b_in), costs.unmap(b_out), costs.sync()
    cpu_path = sy + mp + cpu_c + ump
    total = tr_in + max(gpu_c, cpu_path) + sy + tr_out
    sharing = tr_in + tr_out + mp + ump + 2 * sy
    return ChainCost(total, gpu_c, cpu_c, sharing)
