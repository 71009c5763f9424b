"""Sequential interpreter: run a Graph op by op with one kernel module.

It is the numerical oracle for the executor and the check for ONNX import.
Any module with the shared kernel op names works: ``coinfer.kernels.reference``
(float64 numpy, the default) or ``coinfer.kernels.buffer`` (float32 Numba).
Each op's call into the module is its op table entry's ``reference``
(:mod:`coinfer.graph.ops`): ``clip`` uses the module's ``clip(x, min=, max=)``
when it has one, else numpy (float32 in, float32 out); ``flatten``/``reshape``
are numpy reshapes and ``dropout`` passes its input through.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from . import ops
from .ir import Graph, Op


def run_op(graph: Graph, op: Op, xs: list[np.ndarray], kernels: ModuleType) -> np.ndarray:
    """Run one op on its input arrays with ``kernels``; check the output shape."""
    want = graph.shape(op.output)
    y = ops.run_reference(graph, op, xs, kernels)
    if y.shape != want:
        raise ValueError(
            f"interpret: op {op.name!r} ({op.type}) with {kernels.__name__} gave shape {y.shape}, "
            f"the graph expects {want}"
        )
    return y


def run(graph: Graph, x, kernels: ModuleType | None = None, *, all_tensors: bool = False):
    """Run ``graph`` on ``x`` (an array for a one-input graph, or {input name: array}).

    Returns the output array when the graph has one output, else {output name:
    array}; with ``all_tensors=True``, {tensor name: array} for every tensor,
    inputs included.  Inputs are cast to C-contiguous float32 and must match the
    graph's input shapes exactly (use ``Graph.with_batch`` for another batch).
    """
    if kernels is None:
        from ..kernels import reference as kernels
    feeds = x if isinstance(x, dict) else {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    if feeds is None or set(feeds) != set(graph.inputs):
        given = sorted(feeds) if isinstance(feeds, dict) else type(x).__name__
        raise ValueError(
            f"interpret: graph {graph.name!r} needs inputs {graph.inputs}, got {given}"
        )
    env: dict[str, np.ndarray] = {}
    for name, a in feeds.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        if a.shape != graph.shape(name):
            raise ValueError(
                f"interpret: input {name!r} must have shape {graph.shape(name)}, got {a.shape}"
            )
        env[name] = a
    # How many ops still have to read each tensor, so dead ones can be freed.
    pending = {t: len(graph.tensors[t].consumers) for t in graph.tensors}
    keep = set(graph.outputs)
    for op in graph.ops:
        xs = [env[t] for t in op.inputs]
        env[op.output] = run_op(graph, op, xs, kernels)
        if not all_tensors:
            for t in set(op.inputs):
                pending[t] -= 1
                if pending[t] == 0 and t not in keep:
                    del env[t]
    if all_tensors:
        return env
    if len(graph.outputs) == 1:
        return env[graph.outputs[0]]
    return {t: env[t] for t in graph.outputs}
