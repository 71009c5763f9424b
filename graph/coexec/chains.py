"""Operator-chain search: CoDL's greedy Algorithm 1 (MobiSys 2022, Sec. 6).

From each op, grow a chain of following ops split on the head's dimension,
trying ratios within rho_head +/- delta (delta = 0.3); keep adding ops while the
predicted gain over running those ops one by one stays >= 0; record the best
chain found and continue after it.  Work goes to the GPU (on images) only for
ops whose image kernels support them (:attr:`OpView.on_image`).  One extension: a head whose best plan is a
single processor is also tried as a chain seed with its best split, since a
chain can amortise sharing that the op alone would not pay for; and a found
chain's ratio is re-tuned over the whole range (:func:`refine`).  ``chains=False`` gives the per-op plan
("codl-nochain"): every op is co-executed on its own best (dimension, ratio).
"""
from __future__ import annotations

from ..costs.source import CostSource
from .costmodel import chain_cost
from .plan import Chain
from .view import GraphView

RATIOS = tuple(round(0.1 * i, 1) for i in range(11))


def valid(view: GraphView, ops: list[str], dim: str, ratio: float | None = None) -> bool:
    """Can these consecutive ops form one chain split on ``dim`` with GPU share ``ratio``?

    A split (``H``/``OC``) or ``ratio`` > 0 gives the GPU work on images, which
    needs every op's image kernels; ``dim="none"`` without a ratio asks only
    whether the ops may run together (on the CPU they always may).
    """
    if (dim != "none" or (ratio is not None and ratio > 0)) and not all(view.op(n).on_image for n in ops):
        return False
    if dim == "none":
        return True
    if dim == "H":
        return all("H" in view.op(n).splits for n in ops)
    head = view.op(ops[0])
    if "OC" not in head.splits:
        return False
    prev = head
    for n in ops[1:]:
        op = view.op(n)
        if not (op.channel_local and op.inputs[0] == prev.output and "OC" in op.splits):
            return False
        prev = op
    return True


def _candidates(dim: str, ratio: float, delta: float):
    """(dim, ratio) pairs a chain with head plan (dim, ratio) may take."""
    dims = [dim] if dim != "none" else ["H", "OC"]
    out = []
    if ratio <= delta + 1e-9:
        out.append(("none", 0.0))
    if ratio >= 1.0 - delta - 1e-9:
        out.append(("none", 1.0))
    for d in dims:
        for r in RATIOS[1:-1]:
            if abs(r - ratio) <= delta + 1e-9:
                out.append((d, r))
    return out


def _single_options(view: GraphView, name: str, costs: CostSource):
    """(cost, Chain) of every way to run one op alone."""
    op = view.op(name)
    options = [("none", 0.0), ("none", 1.0)]
    for d in ("H", "OC"):
        if d in op.splits:
            options += [(d, r) for r in RATIOS[1:-1]]
    for d, r in options:
        if not valid(view, [name], d, r):
            continue
        ch = Chain((name,), d, r)
        yield chain_cost(view, ch, costs).total, ch


def best_single(view: GraphView, name: str, costs: CostSource):
    """Lowest predicted (cost, Chain) for one op over every dimension and ratio."""
    best = None
    for c, ch in _single_options(view, name, costs):
        if best is None or c < best[0] - 1e-12:
            best = (c, ch)
    return best


def best_split(view: GraphView, name: str, costs: CostSource):
    """Lowest predicted (cost, Chain) among the op's co-executed options, or None."""
    best = None
    for c, ch in _single_options(view, name, costs):
        if ch.split and (best is None or c < best[0] - 1e-12):
            best = (c, ch)
    return best


def search(view: GraphView, costs: CostSource, *, chains: bool = True, delta: float = 0.3,
           max_len: int = 24) -> list[Chain]:
    """Chains covering every op of ``view`` in order."""
    names = [op.name for op in view.ops]
    singles = [best_single(view, n, costs) for n in names]
    if not chains:
        return [s[1] for s in singles]
    out: list[Chain] = []
    i = 0
    while i < len(names):
        best_chain, best_gain = singles[i][1], 0.0
        # Seeds: the head's best plan (CoDL's rho_head) and, when that keeps the
        # head on one processor, also its best split, whose sharing a chain may
        # amortise although the op alone would not pay for it.
        seeds = [singles[i][1]]
        if not singles[i][1].split:
            alt = best_split(view, names[i], costs)
            if alt is not None:
                seeds.append(alt[1])
        for head in seeds:
            chain, gain = _grow(view, costs, names, singles, i, head, delta, max_len)
            if gain > best_gain + 1e-12:
                best_chain, best_gain = chain, gain
        out.append(refine(view, best_chain, costs))
        i += len(best_chain.ops)
    return out


def refine(view: GraphView, chain: Chain, costs: CostSource) -> Chain:
    """Re-tune a found chain's dimension and ratio over the whole range.

    Algorithm 1 only tries ratios near the head's own best ratio; once the
    chain's members are fixed, the ratio that balances the whole chain (halo
    included) may lie outside that window.
    """
    if len(chain.ops) < 2:
        return chain
    members = list(chain.ops)
    best = (chain_cost(view, chain, costs).total, chain)
    options = [("none", 0.0), ("none", 1.0)] + [(d, r) for d in ("H", "OC") for r in RATIOS[1:-1]]
    for d, r in options:
        if valid(view, members, d, r):
            ch = Chain(chain.ops, d, r)
            c = chain_cost(view, ch, costs).total
            if c < best[0] - 1e-12:
                best = (c, ch)
    return best[1]


def _grow(view, costs, names, singles, i, head, delta, max_len):
    """Grow a chain from op ``i`` with head plan ``head``; (best chain, its gain)."""
    best_chain, best_gain = singles[i][1], 0.0
    base = singles[i][0]
    for j in range(i + 1, min(len(names), i + max_len)):
        base += singles[j][0]
        members = names[i:j + 1]
        best_c = None
        for d, r in _candidates(head.dim, head.ratio, delta):
            if not valid(view, members, d, r):
                continue
            ch = Chain(tuple(members), d, r)
            c = chain_cost(view, ch, costs).total
            if best_c is None or c < best_c[0]:
                best_c = (c, ch)
        if best_c is None:
            break
        gain = base - best_c[0]
        if gain < 0:
            break
        if gain >= best_gain:
            best_gain, best_chain = gain, best_c[1]
    return best_chain, best_gain


def plan_cost(view: GraphView, plan_chains: list[Chain], costs: CostSource) -> float:
    return sum(chain_cost(view, c, costs).total for c in plan_chains)
