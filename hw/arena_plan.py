"""Offset planning for an arena: tensors with lifetimes share one block.

A tensor is ``(nbytes, first_use, last_use)`` with inclusive op indices.  Two
tensors *conflict* when their lifetimes intersect; conflicting tensors must get
disjoint byte ranges.  Finding the smallest block is NP-hard (dynamic storage
allocation), so the planner places tensors greedily, one at a time, into the
smallest gap left free by the conflicting tensors already placed (best fit),
for several orderings, then improves the best placement with a short,
deterministic local search over the ordering.  The lower bound is the largest
number of aligned bytes alive at any one op.
"""
from __future__ import annotations

import bisect
import random

import numpy as np

__all__ = ["plan_offsets", "greedy_by_size", "lower_bound", "naive_bytes", "check_tensors", "check_alignment"]


def check_alignment(alignment) -> int:
    """Alignment must be a positive power of two (it must divide the page size)."""
    if not isinstance(alignment, (int, np.integer)) or isinstance(alignment, bool):
        raise TypeError(f"arena: alignment must be an int, got {type(alignment).__name__}")
    a = int(alignment)
    if a < 1 or a & (a - 1):
        raise ValueError(f"arena: alignment must be a positive power of two, got {a}")
    return a


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_tensors(tensors) -> list[tuple[int, int, int]]:
    """Validate ``[(nbytes, first_use, last_use), ...]``; errors name the tensor index."""
    if isinstance(tensors, (str, bytes)) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"arena: tensors must be a sequence of (nbytes, first_use, last_use), got {type(tensors).__name__}")
    out = []
    for i, t in enumerate(tensors):
        if not isinstance(t, (tuple, list, np.ndarray)) or len(t) != 3:
            raise ValueError(f"arena: tensor {i} must be a 3-tuple (nbytes, first_use, last_use), got {t!r}")
        if not all(_is_int(v) for v in t):
            raise ValueError(f"arena: tensor {i} must hold three ints (nbytes, first_use, last_use), got {t!r}")
        size, first, last = (int(v) for v in t)
        if size < 0:
            raise ValueError(f"arena: tensor {i} has negative size {size}")
        if last < first:
            raise ValueError(f"arena: tensor {i} has last_use {last} before first_use {first}")
        out.append((size, first, last))
    return out


def _aligned(size: int, a: int) -> int:
    return -(-size // a) * a


def lower_bound(tensors, alignment: int = 64) -> int:
    """Largest sum of aligned sizes alive at one op: no plan can use less."""
    a = check_alignment(alignment)
    ts = check_tensors(tensors)
    events = []
    for size, first, last in ts:
        s = _aligned(size, a)
        if s:
            events.append((first, 1, s))
            events.append((last + 1, 0, -s))  # at the same op, frees sort before allocations
    best = cur = 0
    for _, _, d in sorted(events):
        cur += d
        best = max(best, cur)
    return best


def naive_bytes(tensors, alignment: int = 64) -> int:
    """Bytes used when every tensor gets its own aligned range."""
    a = check_alignment(alignment)
    return sum(_aligned(s, a) for s, _, _ in check_tensors(tensors))


def _place(order, size, first, last) -> tuple[list[int], int]:
    """Best-fit placement in ``order``; returns (offsets, total)."""
    offsets = [0] * len(size)
    placed: list[tuple[int, int]] = []  # (offset, index), sorted by offset
    total = 0
    for i in order:
        s, f, l = size[i], first[i], last[i]
        if s == 0:
            continue
        best_off, best_gap, reach = -1, None, 0
        for off, j in placed:
            if last[j] < f or first[j] > l:
                continue
            gap = off - reach
            if gap >= s and (best_gap is None or gap < best_gap):
                best_off, best_gap = reach, gap
            end = off + size[j]
            if end > reach:
                reach = end
        off = best_off if best_off >= 0 else reach
        offsets[i] = off
        bisect.insort(placed, (off, i))
        if off + s > total:
            total = off + s
    return offsets, total


def _orderings(size, first, last):
    idx = range(len(size))
    life = [last[i] - first[i] + 1 for i in idx]
    yield sorted(idx, key=lambda i: (-size[i], -life[i], first[i]))
    yield sorted(idx, key=lambda i: (-size[i] * life[i], -size[i], first[i]))
    yield sorted(idx, key=lambda i: (-life[i], -size[i], first[i]))
    yield sorted(idx, key=lambda i: (first[i], -size[i]))
    # Tensors alive at the busiest op first, largest first, then the rest by size.
    peak = _peak_op(size, first, last)
    yield sorted(idx, key=lambda i: (not (first[i] <= peak <= last[i]), -size[i], -life[i], first[i]))


def _peak_op(size, first, last) -> int:
    events = sorted([(f, 1, s) for s, f in zip(size, first)] + [(l + 1, 0, -s) for s, l in zip(size, last)])
    best, cur, at = -1, 0, 0
    for t, _, d in events:
        cur += d
        if cur > best:
            best, at = cur, t
    return at


def plan_offsets(tensors, alignment: int = 64, *, search: int | None = None) -> tuple[list[int], int]:
    """Plan byte offsets for ``tensors = [(nbytes, first_use, last_use), ...]``.

    Returns ``(offsets, total_bytes)``: every offset is a multiple of
    ``alignment``, every tensor fits in ``[0, total_bytes)``, and tensors whose
    lifetimes (inclusive op indices) intersect get disjoint byte ranges.
    ``search`` bounds the local-search rounds (default: grows with the count,
    0 turns it off); the search is seeded, so plans are deterministic.
    """
    a = check_alignment(alignment)
    ts = check_tensors(tensors)
    n = len(ts)
    if n == 0:
        return [], 0
    # Work in units of the alignment so every offset is aligned by construction.
    size = [-(-s // a) for s, _, _ in ts]
    first = [f for _, f, _ in ts]
    last = [l for _, _, l in ts]
    bound = lower_bound([(s, f, l) for s, f, l in zip(size, first, last)], 1)

    best_order, best = None, None
    for order in _orderings(size, first, last):
        offsets, total = _place(order, size, first, last)
        if best is None or total < best[1]:
            best_order, best = order, (offsets, total)
        if total == bound:
            break
    rounds = min(200, 4 * n) if search is None else int(search)
    if best[1] > bound and rounds > 0:
        best_order, best = _improve(best_order, best, size, first, last, bound, rounds)
    offsets, total = best
    return [o * a for o in offsets], total * a


def greedy_by_size(tensors, alignment: int = 64) -> tuple[list[int], int]:
    """The single-ordering baseline (largest first, best fit), as TFLite's arena
    planner does; :func:`plan_offsets` is never worse.  For studies."""
    a = check_alignment(alignment)
    ts = check_tensors(tensors)
    if not ts:
        return [], 0
    size = [-(-s // a) for s, _, _ in ts]
    first = [f for _, f, _ in ts]
    last = [l for _, _, l in ts]
    offsets, total = _place(next(_orderings(size, first, last)), size, first, last)
    return [o * a for o in offsets], total * a


def _improve(order, best, size, first, last, bound, rounds):
    """Local search: move a tensor that reaches the top of the block earlier in the order.

    The tensors ending at the block's top set its size; placing one of them
    sooner lets it take a low gap, and the rest settle around it.  A move is
    kept when the total does not grow (sideways moves let the search drift
    across plateaus).
    """
    rng = random.Random(0x5EED)
    offsets, total = best
    stale = 0
    for _ in range(rounds):
        stale += 1
        if stale > 60:  # no strict gain for a while: the plateau is wide, stop
            break
        top = [i for i in range(len(size)) if size[i] and offsets[i] + size[i] == total]
        i = rng.choice(top)
        pos = order.index(i)
        if pos == 0:
            # Already first: perturb by swapping a random pair instead.
            j, k = rng.randrange(len(order)), rng.randrange(len(order))
            cand = list(order)
            cand[j], cand[k] = cand[k], cand[j]
        else:
            cand = list(order)
            del cand[pos]
            cand.insert(rng.randrange(pos), i)
        c_off, c_total = _place(cand, size, first, last)
        if c_total <= total:
            if c_total < total:
                stale = 0
            order, offsets, total = cand, c_off, c_total
            if total == bound:
                break
    return order, (offsets, total)
