"""A device-edge plan as the stages a simulator runs: compute on each side, transfers on the link.

:func:`frame_stages` turns a :class:`~.cut.Placement` (exit, cut, direction)
into :class:`coinfer.hw.sim.Stage` s, in the order a frame runs them
(:class:`~.runtime.CoRunner` and the edge server's client run them in the
same order):

- a ``compute`` stage per run of consecutive ops on one side (``where`` =
  ``"device"`` or ``"edge"``), its seconds the sum of the side cost source's
  ``seconds(op, side)``;
- a ``transfer`` stage per message crossing the link (``where`` =
  ``"uplink"`` from the device, ``"downlink"`` to it): the tensors that cross
  at that point, ``crossings`` of them (each pays RTT/2), their float32 bytes.

``framing`` adds the bytes of a wire format's headers: with the edge
server's frames (:data:`coinfer.graph.edge.frames.HEADER_SIZE`, 64 B) a
message is one header (RUN, or RESULT) plus a header per tensor.  The
planner's latency model (Edgent's) leaves them out: ``framing=0``.
"""
from __future__ import annotations

from ...hw.sim import Stage
from .cut import Placement

__all__ = ["frame_stages", "LINKS"]

#: The link direction a crossing from each side takes.
LINKS = {"device": "uplink", "edge": "downlink"}


def frame_stages(placement: Placement, costs, *, framing: int = 0, warmup=None) -> tuple:
    """The stages of one frame of ``placement``; ``costs`` a side cost source
    (``seconds(op, side)``, emulated seconds).

    ``warmup(op)`` (optional): seconds of an untimed pass of ``op`` the edge
    runs when a request's first byte arrives, while its tensors are still
    crossing (the edge server does, :func:`coinfer.graph.edge.parts.warm_range`):
    a stage on the ``edge`` that the frame does not wait for (``wait=False``),
    queued before the uplink transfer that precedes the edge's part."""
    if framing < 0:
        raise ValueError(f"frame_stages: framing must be >= 0 bytes, got {framing!r}")
    stages: list = []
    pending = list(placement.crossings)
    run: list = []  # [side, seconds, first op, last op]

    def close_run():
        if run:
            side, s, a, b = run
            stages.append(Stage("compute", side, seconds=s, label=f"{side} ops {a}..{b}"))
            run.clear()

    def cross(upto: int):
        groups: dict = {}
        while pending and pending[0].before <= upto:
            c = pending.pop(0)
            g = groups.setdefault(c.src, [0, 0, []])
            g[0] += 1
            g[1] += c.nbytes
            g[2].append(c.tensor)
        if groups:
            close_run()
        for src, (k, n, names) in groups.items():
            stages.append(Stage("transfer", LINKS[src], nbytes=n + framing * (k + 1), crossings=k,
                                label=f"{LINKS[src]} {', '.join(names)}"))

    for j, (op, side) in enumerate(zip(placement.ops, placement.sides)):
        cross(j)
        s = float(costs.seconds(op, side))
        if run and run[0] == side:
            run[1] += s
            run[3] = j
        else:
            close_run()
            run.extend([side, s, j, j])
    cross(len(placement.ops))
    close_run()
    if warmup is not None:
        edge_ops = [op for op, side in zip(placement.ops, placement.sides) if side == "edge"]
        first = next((i for i, s in enumerate(stages) if s.kind == "compute" and s.where == "edge"), None)
        if first is not None:
            at = first - 1 if first and stages[first - 1].where == "uplink" else first
            warm = Stage("compute", "edge", seconds=float(sum(warmup(op) for op in edge_ops)),
                         label="edge warm-up", wait=False)
            stages.insert(at, warm)
    return tuple(stages)
