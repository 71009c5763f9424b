"""Predicted latency of a chain, from a pluggable cost source.

CoDL's latency model of a co-executed op (MobiSys 2022, Sec. 5):
T = T_transform + T_map + T_presync + max(T_cpu, T_gpu); inside a chain only the
chain's ends pay for sharing.  Here, following the executor's protocol
(:mod:`.program`): the GPU queue first converts the CPU's input regions to
buffers and then its own input regions to its layout, the CPU syncs, maps
(cache maintenance) and computes its share while the GPU computes its own, the
CPU unmaps its output share, and in an image chain the GPU syncs and
transforms the CPU's share back to image:

    T = tr_cpu_in + max(tr_gpu_in + sync? + T_gpu, sync? + map + T_cpu + unmap) + [sync + tr_out]

What a chain's inputs cost depends on where their canonical copies are
(:data:`SOURCES`): a chain on buffers after one on images pays for
transforms at its start, and the other way round; a side reading what the
other processor wrote syncs first.  The GPU's compute is priced as ``gpu``
(on images) or ``gpu_buffer`` (on buffers) by the chain's layout.

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


#: Where a tensor's canonical copy is, as the cost model sees it: ``image``; a buffer
#: the GPU wrote (``gpu``), both processors wrote (``both``), only the CPU wrote
#: (``cpu``), or the host filled before the run (``host``: a graph input).
SOURCES = ("image", "gpu", "both", "cpu", "host")

#: The compute key of a cost source for the GPU working in a layout.
GPU_KEY = {"image": "gpu", "buffer": "gpu_buffer"}


def source_of(view: GraphView, canon, t: str) -> str:
    """Where tensor ``t`` is: ``canon[t]`` when given, else ``host`` for a graph input and
    ``image`` for the rest (CoDL's GPU-owned images)."""
    s = canon.get(t) if canon else None
    return s if s is not None else ("host" if t in view.inputs else "image")


def made(chain: Chain, reg) -> str:
    """The source of what ``chain`` makes (see :data:`SOURCES`)."""
    if chain.layout == "image":
        return "image"
    g, c = reg.gpu.active(), reg.cpu.active()
    return "both" if g and c else "gpu" if g else "cpu"


def chain_cost(view: GraphView, chain: Chain, costs: CostSource, canon=None) -> ChainCost:
    """Predicted seconds of one chain under the sharing protocol above; ``canon`` maps
    input tensors to their :data:`SOURCES` (see :func:`source_of` for the default)."""
    reg = chain_regions(view, chain)
    return _priced(view, chain, reg, costs, canon)


def _priced(view: GraphView, chain: Chain, reg, costs: CostSource, canon) -> ChainCost:
    lay = chain.layout
    g_on, c_on = reg.gpu.active(), reg.cpu.active()
    both = g_on and c_on
    gkey = GPU_KEY[lay]
    gpu_c = sum(costs.compute(view.op(n), gkey, r, both) for n, r in reg.gpu.compute.items() if not empty(r))
    cpu_c = sum(costs.compute(view.op(n), "cpu", r, both) for n, r in reg.cpu.compute.items() if not empty(r))
    sy = costs.sync()
    tr_gpu_in, gpu_wait = 0.0, False
    if g_on:
        from_other = {t: r for t, r in reg.gpu.needs.items()
                      if (source_of(view, canon, t) == "image") != (lay == "image")}
        tr_gpu_in = costs.transform(_bytes(view, from_other))
        gpu_wait = any(source_of(view, canon, t) in ("cpu", "both") for t in reg.gpu.needs)
    gpu_path = tr_gpu_in + (sy if gpu_wait else 0.0) + gpu_c
    if not c_on:
        return ChainCost(gpu_path, gpu_c, 0.0, gpu_path - gpu_c)
    src = {t: source_of(view, canon, t) for t in reg.cpu.needs}
    tr_in = costs.transform(_bytes(view, {t: r for t, r in reg.cpu.needs.items() if src[t] == "image"}))
    b_map = _bytes(view, {t: r for t, r in reg.cpu.needs.items() if src[t] not in ("cpu", "host")})
    cpu_wait = b_map > 0
    b_out = _bytes(view, reg.cpu.shares)
    mp = costs.map(b_map)
    ump = costs.unmap(b_out) if (lay == "image" or g_on) else 0.0
    cpu_path = (sy if cpu_wait else 0.0) + mp + cpu_c + ump
    post = (sy + costs.transform(b_out)) if lay == "image" else 0.0
    total = tr_in + max(gpu_path, cpu_path) + post
    sharing = tr_in + tr_gpu_in + mp + ump + post + sy * (cpu_wait + gpu_wait)
    return ChainCost(total, gpu_c, cpu_c, sharing)


def plan_cost(view: GraphView, chains, costs: CostSource, canon=None) -> float:
    """Predicted seconds of chains run in order, each priced with where the ones
    before it left their outputs."""
    canon = dict(canon or {})
    total = 0.0
    for ch in chains:
        reg = chain_regions(view, ch)
        total += _priced(view, ch, reg, costs, canon).total
        canon.update(outputs_of(view, ch, reg))
    return total


def outputs_of(view: GraphView, chain: Chain, reg=None) -> dict:
    """{tensor: source} of what ``chain`` leaves for later chains."""
    reg = reg if reg is not None else chain_regions(view, chain)
    m = made(chain, reg)
    return {view.op(n).output: m for n in chain.ops}
