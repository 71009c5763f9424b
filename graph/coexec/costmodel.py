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
(:class:`coinfer.graph.costs.measured.MeasuredCosts`), predicted, or written by hand
(:class:`coinfer.graph.costs.source.TableCosts`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..costs.source import CostSource
from .plan import Chain
from .regions import chain_regions, empty
from .view import GraphView


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
