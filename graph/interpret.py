"""Sequential interpreter: run a Graph op by op with one kernel module.

It is the numerical oracle for the executor and the check for ONNX import.
Any module with the shared kernel op names works: ``coinfer.kernels.reference``
(float64 numpy, the default) or ``coinfer.kernels.buffer`` (float32 Numba).
``clip`` uses the module's ``clip(x, min=, max=)`` when it has one, else numpy
(float32 in, float32 out).  ``flatten``/``reshape`` are numpy reshapes and
``dropout`` passes its input through.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from .ir import Graph, Op


def _conv(k, op: Op, xs):
    a = op.attrs
    return k.conv2d(xs[0], op.params["w"], op.params.get("b"), stride=a["stride"],
                    padding=a["padding"], dilation=a["dilation"], groups=a["groups"],
                    relu=a["relu"])


def _maxpool(k, op: Op, xs):
    a = op.attrs
    return k.max_pool2d(xs[0], a["kernel"], stride=a["stride"], padding=a["padding"],
                        ceil_mode=a["ceil_mode"])


def _avgpool(k, op: Op, xs):
    a = op.attrs
    return k.avg_pool2d(xs[0], a["kernel"], stride=a["stride"], padding=a["padding"],
                        ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])


def _globalavgpool(k, op: Op, xs):
    y = k.global_avg_pool(xs[0])
    return y.reshape(y.shape[0], y.shape[1], 1, 1)


def _fc(k, op: Op, xs):
    return k.fully_connected(xs[0], op.params["w"], op.params.get("b"), relu=op.attrs["relu"])


def _clip(k, op: Op, xs):
    lo, hi = op.attrs["min"], op.attrs["max"]
    f = getattr(k, "clip", None)
    if f is not None:
        return f(xs[0], min=lo, max=hi)
    x = xs[0]
    return np.clip(x, x.dtype.type(lo), x.dtype.type(hi))


def _lrn(k, op: Op, xs):
    a = op.attrs
    return k.lrn(xs[0], size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])


_DISPATCH = {
    "conv": _conv,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "globalavgpool": _globalavgpool,
    "fc": _fc,
    "relu": lambda k, op, xs: k.relu(xs[0]),
    "clip": _clip,
    "lrn": _lrn,
    "softmax": lambda k, op, xs: k.softmax(xs[0], axis=op.attrs["axis"]),
    "concat": lambda k, op, xs: k.concat(list(xs), axis=op.attrs["axis"]),
    "add": lambda k, op, xs: k.add(xs[0], xs[1], relu=op.attrs["relu"]),
    "dropout": lambda k, op, xs: xs[0],
}


def run_op(graph: Graph, op: Op, xs: list[np.ndarray], kernels: ModuleType) -> np.ndarray:
    """Run one op on its input arrays with ``kernels``; check the output shape."""
    want = graph.shape(op.output)
    if op.type in ("flatten", "reshape"):
        y = np.ascontiguousarray(xs[0]).reshape(want)
    else:
        y = _DISPATCH[op.type](kernels, op, xs)
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
