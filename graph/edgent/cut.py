"""Cut points: which side runs each op of a sub-model, and what crosses the link.

A sub-model's ops, in topological order, are its layers ``0..N-1``.  Cut
``p`` (``0 <= p <= N``) splits them into the front ``[0, p)`` and the back
``[p, N)``:

- ``edge-first`` (Edgent): the edge runs the front, the device the back;
- ``device-first`` (Neurosurgeon): the device runs the front, the edge the back.

The input starts on the device and the answer must end there.  A tensor
crosses the link whenever the side that holds it is not the side that reads
it (the device "reads" the output).  So there are no special cases:
edge-first ``p = 0`` and device-first ``p = N`` run everything on the device
with no transfer; edge-first ``p = N`` uploads the input and downloads the
answer; a middle cut moves the input up and the cut's tensor down
(edge-first), or the cut's tensor up and the answer down (device-first).
Tensor sizes come from the IR (float32 bytes).
"""
from __future__ import annotations

from dataclasses import dataclass

from .exits import check_exits, submodel_ops

DIRECTIONS = ("edge-first", "device-first")


@dataclass(frozen=True)
class Crossing:
    """Tensor ``tensor`` (``nbytes``) goes from side ``src`` to side ``dst`` before
    layer ``before`` (``N`` for the answer)."""

    tensor: str
    nbytes: int
    src: str
    dst: str
    before: int


@dataclass(frozen=True)
class Placement:
    """Exit ``exit``'s sub-model with cut ``cut`` in ``direction``: its ops, each op's
    side, and the crossings in the order they happen."""

    exit: int
    cut: int
    direction: str
    ops: tuple
    sides: tuple
    crossings: tuple

    @property
    def transfer_bytes(self) -> int:
        return sum(c.nbytes for c in self.crossings)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"edgent: direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction


def sides_of(n: int, cut: int, direction: str) -> tuple:
    """Side of each of ``n`` layers for ``cut`` in ``direction``."""
    check_direction(direction)
    if not (isinstance(cut, int) and 0 <= cut <= n):
        raise ValueError(f"edgent: cut must be an int in [0, {n}], got {cut!r}")
    front, back = ("edge", "device") if direction == "edge-first" else ("device", "edge")
    return tuple(front if j < cut else back for j in range(n))


def placement(graph, exit: int, cut: int, direction: str) -> Placement:
    """Where every op of exit ``exit``'s sub-model runs, and what crosses the link."""
    exits = check_exits(graph)
    if not (isinstance(exit, int) and 0 <= exit < len(exits)):
        raise ValueError(f"edgent: exit must be an int in [0, {len(exits)}), got {exit!r}")
    ops = tuple(submodel_ops(graph, exits[exit]))
    sides = sides_of(len(ops), cut, direction)
    where = {t: "device" for t in graph.inputs}  # tensor -> side holding it
    have = {t: {"device"} for t in graph.inputs}
    crossings = []
    for j, (name, side) in enumerate(zip(ops, sides)):
        op = graph.op(name)
        for t in dict.fromkeys(op.inputs):
            if side not in have[t]:
                crossings.append(Crossing(t, graph.tensors[t].nbytes, where[t], side, j))
                have[t].add(side)
        where[op.output] = side
        have[op.output] = {side}
    out = exits[exit].output
    if "device" not in have[out]:
        crossings.append(Crossing(out, graph.tensors[out].nbytes, where[out], "device", len(ops)))
    return Placement(exit, cut, direction, ops, sides, tuple(crossings))
