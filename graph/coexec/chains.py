"""Operator-chain search: CoDL's greedy Algorithm 1 (MobiSys 2022, Sec. 6).

From each op, grow a chain of following ops split on the head's dimension,
trying ratios within rho_head +/- delta (delta = 0.3); keep adding ops while the
predicted gain over running those ops one by one stays >= 0; record the best
chain found and continue after it.  Chains are priced left to right, each with
where the chains before it left their outputs (:func:`~.costmodel.plan_cost`).

Extensions:

- Every option is tried with the GPU on images and on buffers
  (``Chain.layout``): CoDL's first principle is that each processor works in
  the layout that is fastest for it, and here that is measured, not assumed
  (the cost source prices ``gpu`` and ``gpu_buffer`` work).  Work goes to the
  GPU on images only for ops whose image kernels support them
  (:attr:`OpView.on_image`); on buffers a height-split chain holds one op.
- A head whose best plan is a single processor is also tried as a chain seed
  with its best split, since a chain can amortise sharing that the op alone
  would not pay for; and a found chain's ratio is re-tuned over the whole range
  (:func:`refine`).

``chains=False`` gives the per-op plan ("codl-nochain"): every op is
co-executed on its own best (dimension, ratio, layout).
"""
from __future__ import annotations

from ...kernels import LAYOUTS
from ..costs.source import CostSource
from .costmodel import chain_cost, outputs_of
from .costmodel import plan_cost as plan_cost  # noqa: PLC0414 - re-exported for the planners
from .plan import Chain
from .view import GraphView

RATIOS = tuple(round(0.1 * i, 1) for i in range(11))


def valid(view: GraphView, ops: list[str], dim: str, ratio: float | None = None, layout: str = "image") -> bool:
    """Can these consecutive ops form one chain split on ``dim`` with GPU share ``ratio``,
    the GPU working in ``layout``?

    A split (``H``/``OC``) or ``ratio`` > 0 gives the GPU work; on images that
    needs every op's image kernels; on buffers a height split holds one op.
    ``dim="none"`` without a ratio asks only whether the ops may run together
    (on the CPU they always may).
    """
    gpu_works = dim != "none" or (ratio is not None and ratio > 0)
    if layout == "image" and gpu_works and not all(view.op(n).on_image for n in ops):
        return False
    if dim == "none":
        return True
    if dim == "H":
        return all("H" in view.op(n).splits for n in ops) and (layout == "image" or len(ops) == 1)
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


def _all_options(splits):
    """Every (dim, ratio) of one op or chain that may split on ``splits``."""
    options = [("none", 0.0), ("none", 1.0)]
    for d in ("H", "OC"):
        if d in splits:
            options += [(d, r) for r in RATIOS[1:-1]]
    return options


def _priced(view, members, options, layouts, costs, canon):
    """(cost, Chain) of each valid option for ``members``, in every layout."""
    for d, r in options:
        for lay in layouts:
            if valid(view, members, d, r, lay):
                ch = Chain(tuple(members), d, r, lay)
                yield chain_cost(view, ch, costs, canon).total, ch


def _single_options(view: GraphView, name: str, costs: CostSource, layouts=LAYOUTS, canon=None):
    """(cost, Chain) of every way to run one op alone."""
    return _priced(view, [name], _all_options(view.op(name).splits), layouts, costs, canon)


def _lowest(pairs):
    best = None
    for c, ch in pairs:
        if best is None or c < best[0] - 1e-12:
            best = (c, ch)
    return best


def best_single(view: GraphView, name: str, costs: CostSource, *, layouts=LAYOUTS, canon=None):
    """Lowest predicted (cost, Chain) for one op over every dimension, ratio and layout."""
    return _lowest(_single_options(view, name, costs, layouts, canon))


def best_split(view: GraphView, name: str, costs: CostSource, *, layouts=LAYOUTS, canon=None):
    """Lowest predicted (cost, Chain) among the op's co-executed options, or None."""
    return _lowest((c, ch) for c, ch in _single_options(view, name, costs, layouts, canon) if ch.split)


def search(view: GraphView, costs: CostSource, *, chains: bool = True, delta: float = 0.3,
           max_len: int = 24, layouts=LAYOUTS, dims=("H", "OC")) -> list[Chain]:
    """Chains covering every op of ``view`` in order.

    ``layouts``: the GPU layouts a chain may take; ``dims``: the dimensions
    it may split on (``("OC",)`` gives an OC-only plan).
    """
    names = [op.name for op in view.ops]
    canon: dict = {}
    singles = [_lowest(_restricted(view, n, costs, layouts, dims, canon)) for n in names]
    out: list[Chain] = []
    i = 0
    while i < len(names):
        singles[i] = _lowest(_restricted(view, names[i], costs, layouts, dims, canon))
        if not chains:
            best_chain = singles[i][1]
        else:
            best_chain, best_gain = singles[i][1], 0.0
            # Seeds: the head's best plan (CoDL's rho_head) and, when that keeps the
            # head on one processor, also its best split, whose sharing a chain may
            # amortise although the op alone would not pay for it.
            seeds = [singles[i][1]]
            if not singles[i][1].split:
                alt = _lowest((c, ch) for c, ch in _restricted(view, names[i], costs, layouts, dims, canon)
                              if ch.split)
                if alt is not None:
                    seeds.append(alt[1])
            for head in seeds:
                chain, gain = _grow(view, costs, names, singles, i, head, delta, max_len, layouts, dims, canon)
                if gain > best_gain + 1e-12:
                    best_chain, best_gain = chain, gain
            best_chain = refine(view, best_chain, costs, layouts=layouts, dims=dims, canon=canon)
        out.append(best_chain)
        canon.update(outputs_of(view, best_chain))
        i += len(best_chain.ops)
    return out


def _restricted(view, name, costs, layouts, dims, canon):
    options = [(d, r) for d, r in _all_options(view.op(name).splits) if d == "none" or d in dims]
    return _priced(view, [name], options, layouts, costs, canon)


def refine(view: GraphView, chain: Chain, costs: CostSource, *, layouts=LAYOUTS, dims=("H", "OC"),
           canon=None) -> Chain:
    """Re-tune a found chain's dimension, ratio and layout over the whole range.

    Algorithm 1 only tries ratios near the head's own best ratio; once the
    chain's members are fixed, the ratio that balances the whole chain (halo
    included) may lie outside that window.
    """
    if len(chain.ops) < 2:
        return chain
    best = (chain_cost(view, chain, costs, canon).total, chain)
    options = [(d, r) for d, r in _all_options(("H", "OC")) if d == "none" or d in dims]
    found = _lowest(_priced(view, list(chain.ops), options, layouts, costs, canon))
    return found[1] if found is not None and found[0] < best[0] - 1e-12 else best[1]


def _grow(view, costs, names, singles, i, head, delta, max_len, layouts, dims, canon):
    """Grow a chain from op ``i`` with head plan ``head``; (best chain, its gain)."""
    best_chain, best_gain = singles[i][1], 0.0
    base = singles[i][0]
    options = [(d, r) for d, r in _candidates(head.dim, head.ratio, delta) if d == "none" or d in dims]
    for j in range(i + 1, min(len(names), i + max_len)):
        base += singles[j][0]
        members = names[i:j + 1]
        best_c = _lowest(_priced(view, members, options, layouts, costs, canon))
        if best_c is None:
            break
        gain = base - best_c[0]
        if gain < 0:
            break
        if gain >= best_gain:
            best_gain, best_chain = gain, best_c[1]
    return best_chain, best_gain
