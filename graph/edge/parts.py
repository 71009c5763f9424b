"""Op ranges of a model: what one side runs, what it needs, what it hands back.

A model's **exits**: a branchy model's :attr:`Graph.exits`, each with its
sub-model (:func:`coinfer.graph.edgent.exits.submodel_ops`); a plain model
has one exit, number 0, whose sub-model is every op and whose output is the
graph's (single) output.  An **op range** ``[first, end)`` of exit ``e``
is ops ``first..end-1`` of that sub-model, in its order; cut ``p`` in a
direction puts ``[0, p)`` or ``[p, N)`` on the edge (:mod:`coinfer.graph.edgent.cut`).

:func:`range_io` gives the tensors a range reads that it does not make (its
inputs, in order of first use) and the tensors it makes that someone outside
it needs (its outputs, in order made): a later op of the sub-model, or the
exit's output.  Both sides compute it from the graph, so a RUN frame needs
only the exit and the range.  For a cut these are exactly the crossings of
:func:`coinfer.graph.edgent.cut.placement`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..coexec.lower import buffer_weights
from ..coexec.lower import call as lower_call
from ..edgent.exits import check_exits, submodel_ops
from ..ops import SPECS
from .shaping import sleep_until

__all__ = ["n_exits", "exit_ops", "range_io", "edge_range", "run_range", "warm_range", "RangeTime",
           "buffer_weights"]

def n_exits(graph) -> int:
    return len(check_exits(graph)) if graph.exits else 1


def exit_ops(graph, exit: int) -> tuple[list, str]:
    """``(op names of exit ``exit``'s sub-model, its output tensor)``; ValueError if no such exit."""
    n = n_exits(graph)
    if not (isinstance(exit, (int, np.integer)) and not isinstance(exit, bool) and 0 <= exit < n):
        raise ValueError(f"model {graph.name!r}: exit must be an int in [0, {n}), got {exit!r}")
    if graph.exits:
        e = graph.exits[int(exit)]
        return submodel_ops(graph, e), e.output
    if len(graph.outputs) != 1:
        raise ValueError(f"model {graph.name!r}: a plain model needs one output to split, has {graph.outputs}")
    return [op.name for op in graph.ops], graph.outputs[0]


def range_io(graph, exit: int, first: int, end: int) -> tuple[list, list]:
    """``(inputs, outputs)`` tensor names of ops ``[first, end)`` of exit ``exit``'s sub-model."""
    ops, out = exit_ops(graph, exit)
    if not (isinstance(first, (int, np.integer)) and isinstance(end, (int, np.integer))
            and 0 <= first < end <= len(ops)):
        raise ValueError(f"model {graph.name!r} exit {exit}: op range must satisfy 0 <= first < end <= "
                         f"{len(ops)}, got [{first}, {end})")
    inside = ops[first:end]
    made = {graph.op(n).output for n in inside}
    inputs: dict = {}
    for n in inside:
        for t in graph.op(n).inputs:
            if t not in made:
                inputs.setdefault(t, None)
    needed = {t for n in ops[end:] for t in graph.op(n).inputs} | {out}
    outputs = [graph.op(n).output for n in inside if graph.op(n).output in needed]
    return list(inputs), outputs


def edge_range(n: int, cut: int, direction: str) -> tuple[int, int]:
    """The edge's ``[first, end)`` of ``n`` ops for ``cut`` in ``direction`` (may be empty)."""
    from ..edgent.cut import check_direction

    check_direction(direction)
    if not (isinstance(cut, (int, np.integer)) and 0 <= cut <= n):
        raise ValueError(f"cut must be an int in [0, {n}], got {cut!r}")
    return (0, int(cut)) if direction == "edge-first" else (int(cut), n)


@dataclass
class RangeTime:
    """How a range ran on its processor (seconds): ``host`` the kernels' time (of the
    timed pass), ``busy`` from its first step's start to the end of the realised
    wait, ``queued`` from submission to its first step's start."""

    host: float
    busy: float
    queued: float


def _steps(graph, names, env, times):
    steps = []
    weights = buffer_weights(graph)
    for name in names:
        op = graph.op(name)

        def step(op=op):
            t = time.perf_counter()
            out = np.empty(graph.shape(op.output), np.float32)
            lower_call(graph, op, "buffer", weights[op.name], [env[t] for t in op.inputs], out)
            env[op.output] = out
            times.append((t, time.perf_counter()))

        steps.append((name, step, {}, {}, graph.tensors[op.output].nbytes))
    return steps


def run_range(proc, graph, names, env: dict, *, scale: float = 1.0, timeout: float = 120.0) -> RangeTime:
    """Run ops ``names`` on Processor ``proc`` as one command list with coinfer's buffer
    kernels, reading and writing tensors in ``env``, and realise ``scale``.

    With ``scale > 1`` the processor's thread stays busy for ``scale x`` the
    range's host time, counted from its start, as a processor ``scale`` times
    slower would be.  It keeps running the range (on the same tensors: the
    results do not change) until that time is reached, then waits out the last
    fraction of a pass, and the host time scaled is the median pass, the
    first one left out once there are others.  Why: a core that has idled (while
    the frame waited for the link) runs the next ops slower than a loop does:
    on the development VM B-AlexNet's exit 4 took 1.8 ms after 110 ms idle,
    1.45 ms after one pass, 1.33 ms in a loop (the core clocked down, its
    caches went cold).  Per-op costs are measured in a loop, a profile's
    scale assumes that state, and a device 100 times slower than the host
    would multiply a cold pass's extra time by 100.  ``host`` is the host
    time scaled (the only pass when ``scale <= 1``)."""
    times: list = []
    steps = _steps(graph, names, env, times)
    out = {}
    if scale > 1.0:
        filler: list = []
        again = _steps(graph, names, env, filler)

        def realise():
            start = times[0][0]
            passes = [times[-1][1] - start]
            est = passes[0]
            while time.perf_counter() + est < start + scale * est:
                t = time.perf_counter()
                for _, fn, _, _, _ in again:
                    fn()
                passes.append(time.perf_counter() - t)
                est = float(np.median(passes[1:]))
            sleep_until(start + scale * est)
            out["host"] = est

        steps.append(("realise", realise, {}, {}, 0))
    submitted = time.perf_counter()
    proc.run_list(steps, timeout=timeout).result(timeout)
    host = out.get("host", sum(b - a for a, b in times))
    return RangeTime(host, time.perf_counter() - times[0][0], times[0][0] - submitted)


def warm_range(proc, graph, names):
    """Queue ops ``names`` on zero inputs (results dropped) and return the Task (None
    for no ops): a warm-up for a range about to run (see :func:`run_range`)."""
    if not names:
        return None
    made = {graph.op(n).output for n in names}
    env = {t: np.zeros(graph.shape(t), np.float32) for n in names for t in graph.op(n).inputs if t not in made}
    return proc.run_list(_steps(graph, names, env, []))
