"""Graph IR: tensors, ops and graphs, with shape inference, FLOPs and bytes per op.

A :class:`Graph` is a DAG of single-output :class:`Op` s over named
:class:`Tensor` s, held in topological order.  Activations are float32, NCHW
(4-D) until a ``flatten``/``reshape`` makes them (N, K).  Weights live in each
op's ``params`` as float32 numpy arrays (conv ``w`` OIHW and ``b`` (O,); fc ``w``
(M, K) and ``b`` (M,)).  The batch is part of the input shape given at build
time; :meth:`Graph.with_batch` rebuilds the same model for another batch.

The op types, their attributes and defaults, shape rules and FLOPs rules are
the op table's, :mod:`coinfer.graph.ops`; this module reads it.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from .ops import DTYPE_BYTES, OP_TYPES, SPECS
from .ops import flops as _flops
from .ops import who as _who

#: Op types that carry an output flag (a fused ReLU) which :func:`fuse_relu` may set.
FUSABLE = tuple(t for t, s in SPECS.items() if s.flags)

Shape = tuple


@dataclass
class Tensor:
    """A named activation: its shape, dtype, producing op and consuming ops (by name)."""

    name: str
    shape: Shape
    dtype: str = "float32"
    producer: str | None = None  # None for a graph input
    consumers: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES


@dataclass
class Op:
    """One node: ``type`` is one of :data:`OP_TYPES`; ``inputs``/``outputs`` are tensor names."""

    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))


def infer_op(op: Op, in_shapes: Sequence[Shape]) -> tuple[dict, Shape]:
    """Normalised attrs and the output shape of ``op`` given its input shapes.

    Raises ValueError/TypeError naming the op on any inconsistency.
    """
    who = _who(op)
    spec = SPECS.get(op.type)
    if spec is None:
        raise ValueError(f"{who}: unknown op type {op.type!r}; known types: {', '.join(OP_TYPES)}")
    n_in, rule = spec.n_inputs, spec.infer
    if (n_in is not None and len(in_shapes) != n_in) or len(in_shapes) < 1:
        want = n_in if n_in is not None else "at least 1"
        raise ValueError(f"{who}: expects {want} input(s), got {len(in_shapes)}")
    if len(op.outputs) != 1:
        raise ValueError(f"{who}: expects exactly 1 output, got {len(op.outputs)}")
    attrs, out = rule(op, [tuple(s) for s in in_shapes])
    if min(out) < 1:
        raise ValueError(f"{who}: output shape {out} has an empty dimension")
    return attrs, tuple(int(d) for d in out)


# ---------------------------------------------------------------------------


def _check_shape(name: str, shape) -> Shape:
    if not isinstance(shape, (tuple, list)) or not shape or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape
    ):
        raise ValueError(
            f"graph input {name!r}: shape must be a tuple of positive ints, got {shape!r}"
        )
    return tuple(int(d) for d in shape)


def _topo_sort(ops: list[Op], inputs: Iterable[str]) -> list[Op]:
    """Kahn's algorithm, stable with respect to the given op order."""
    producer: dict[str, int] = {}
    known = set(inputs)
    for i, op in enumerate(ops):
        for t in op.outputs:
            if t in known or t in producer:
                raise ValueError(f"{_who(op)}: output tensor {t!r} is already defined")
            producer[t] = i
    deps: list[set[int]] = []
    for op in ops:
        d = set()
        for t in op.inputs:
            if t in producer:
                d.add(producer[t])
            elif t not in known:
                raise ValueError(f"{_who(op)}: unknown input tensor {t!r}")
        deps.append(d)
    users: list[list[int]] = [[] for _ in ops]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    missing = [len(d) for d in deps]
    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in users[i]:
            missing[j] -= 1
            if missing[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(ops):
        stuck = [ops[i].name for i in range(len(ops)) if missing[i] > 0]
        raise ValueError(f"graph has a cycle through op(s) {stuck}")
    return [ops[i] for i in order]


def _copy(op: Op) -> Op:
    """A copy of ``op`` with its own lists and dicts; weights are shared, as float32."""
    return replace(op, inputs=list(op.inputs), outputs=list(op.outputs), attrs=dict(op.attrs),
                   params={k: np.asarray(v, dtype=np.float32) for k, v in op.params.items()})


class Graph:
    """A model: named inputs with shapes, ops in topological order, tensors, outputs.

    ``Graph(name, inputs={"data": (N, C, H, W)}, ops=[...], outputs=[...])``
    validates everything: unknown input tensors, duplicate names, cycles and
    shape mismatches raise ValueError naming the op.  ``outputs`` defaults to
    the tensors nobody consumes.  ``exits`` lists early-exit points for
    branchy models (empty for plain ones).
    """

    def __init__(
        self,
        name: str,
        inputs: Mapping[str, Sequence[int]],
        ops: Iterable[Op],
        outputs: Sequence[str] | None = None,
        *,
        exits: Sequence | None = None,
    ):
        self.name = name
        self._input_shapes = {k: _check_shape(k, v) for k, v in inputs.items()}
        if not self._input_shapes:
            raise ValueError(f"graph {name!r}: needs at least one input")
        copies: list[Op] = []
        seen: set[str] = set()
        for op in ops:
            if not isinstance(op, Op):
                raise TypeError(
                    f"graph {name!r}: ops must be Op instances, got {type(op).__name__}"
                )
            if op.name in seen:
                raise ValueError(f"{_who(op)}: duplicate op name")
            seen.add(op.name)
            if op.type not in SPECS:
                raise ValueError(f"{_who(op)}: unknown op type; known types: {', '.join(OP_TYPES)}")
            copies.append(_copy(op))
        self.ops: list[Op] = _topo_sort(copies, self._input_shapes)
        self._by_name = {op.name: op for op in self.ops}
        self.inputs: list[str] = list(self._input_shapes)
        self.tensors: dict[str, Tensor] = {}
        self.infer_shapes()
        if outputs is None:
            outputs = [t.name for t in self.tensors.values() if not t.consumers and t.producer]
        for t in outputs:
            if t not in self.tensors:
                raise ValueError(f"graph {name!r}: unknown output tensor {t!r}")
        self.outputs: list[str] = list(outputs)
        self.exits: list = list(exits or [])

    # -- structure ---------------------------------------------------------

    def topo_order(self) -> list[Op]:
        """The ops in a topological order (producers before consumers)."""
        return list(self.ops)

    def op(self, name: str) -> Op:
        return self._by_name[name]

    def producer(self, tensor: str) -> Op | None:
        p = self.tensors[tensor].producer
        return None if p is None else self._by_name[p]

    def consumers(self, tensor: str) -> list[Op]:
        return [self._by_name[c] for c in self.tensors[tensor].consumers]

    def shape(self, tensor: str) -> Shape:
        return self.tensors[tensor].shape

    def infer_shapes(self) -> dict[str, Shape]:
        """(Re)compute every tensor's shape from the input shapes; normalise op attrs.

        Returns {tensor name: shape}.
        """
        tensors = {k: Tensor(k, s) for k, s in self._input_shapes.items()}
        for op in self.ops:
            attrs, out = infer_op(op, [tensors[t].shape for t in op.inputs])
            op.attrs = attrs
            for t in op.inputs:
                if op.name not in tensors[t].consumers:
                    tensors[t].consumers.append(op.name)
            tensors[op.output] = Tensor(op.output, out, producer=op.name)
        self.tensors = tensors
        return {k: t.shape for k, t in tensors.items()}

    def with_batch(self, batch: int) -> "Graph":
        """The same model (weights shared, not copied) for another batch size."""
        if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool):
            raise TypeError(f"graph {self.name!r}: batch must be an int, got {batch!r}")
        if batch < 1:
            raise ValueError(f"graph {self.name!r}: batch must be >= 1, got {batch}")
        inputs = {k: (batch,) + s[1:] for k, s in self._input_shapes.items()}
        return Graph(self.name, inputs, self.ops, self.outputs, exits=self.exits)

    # -- costs -------------------------------------------------------------

    def _op(self, op: Op | str) -> Op:
        return self._by_name[op] if isinstance(op, str) else op

    def flops(self, op: Op | str) -> int:
        """Floating-point operations of one op (the rules are the op table's, :mod:`coinfer.graph.ops`)."""
        op = self._op(op)
        return _flops(self, op)

    def bytes(self, op: Op | str) -> int:
        """Bytes an op touches: inputs + output + weights (float32)."""
        op = self._op(op)
        return SPECS[op.type].bytes(self, op)

    def lifetimes(self, step_of: Mapping[str, int] | None = None) -> dict[str, tuple[int, int]]:
        """{tensor: (first, last)}: the steps between which each tensor must stay in memory.

        ``step_of`` maps op names to the step that runs them (default: each op's
        index in :attr:`ops`; an executor passes its chain indices).  A tensor
        lives from its producer's step (0 for a graph input) to its last
        reader's; a graph output lives to one step past the last (the fetch).
        """
        step = step_of if step_of is not None else {op.name: i for i, op in enumerate(self.ops)}
        fetch = max(step.values(), default=-1) + 1
        out = {}
        for name, t in self.tensors.items():
            first = 0 if t.producer is None else step[t.producer]
            last = fetch if name in self.outputs else max([step[c] for c in t.consumers] + [first])
            out[name] = (first, last)
        return out

    def total_flops(self) -> int:
        return sum(self.flops(op) for op in self.ops)

    def num_params(self) -> int:
        return sum(op.param_count for op in self.ops)

    def summary(self) -> str:
        """A text table: one row per op (type, output shape, params, MFLOPs, KiB), then totals."""
        rows = [("op", "type", "output shape", "params", "MFLOPs", "KiB")]
        for op in self.ops:
            flags = "".join(f"+{f}" for f in SPECS[op.type].flags if op.attrs.get(f))
            rows.append((
                op.name, op.type + flags, "x".join(map(str, self.tensors[op.output].shape)),
                f"{op.param_count:,}", f"{self.flops(op) / 1e6:.2f}",
                f"{self.bytes(op) / 1024:.1f}",
            ))
        rows.append(("total", f"{len(self.ops)} ops", "", f"{self.num_params():,}",
                     f"{self.total_flops() / 1e6:.2f}",
                     f"{sum(self.bytes(op) for op in self.ops) / 1024:.1f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for j, r in enumerate(rows):
            cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
            lines.append("  ".join(cells).rstrip())
            if j == 0 or j == len(rows) - 2:
                lines.append("-" * len(lines[-1]))
        inputs = ", ".join(f"{k} {'x'.join(map(str, s))}" for k, s in self._input_shapes.items())
        return f"graph {self.name}: input {inputs}\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, inputs={self._input_shapes}, ops={len(self.ops)}, "
                f"outputs={self.outputs})")


class GraphBuilder:
    """Builds a :class:`Graph` op by op, inferring each output shape as it goes.

    ``add`` returns the output tensor name (the op name unless ``output`` is
    given), so layers chain naturally::

        b = GraphBuilder("tiny", {"data": (1, 3, 32, 32)})
        y = b.add(ops.CONV, "conv1", ["data"], params={"w": w}, padding=1, relu=True)
        g = b.build()
    """

    def __init__(self, name: str, inputs: Mapping[str, Sequence[int]]):
        self.name = name
        self.inputs = {k: _check_shape(k, v) for k, v in inputs.items()}
        self.shapes: dict[str, Shape] = dict(self.inputs)
        self.ops: list[Op] = []
        self._names: set[str] = set()

    def shape(self, tensor: str) -> Shape:
        return self.shapes[tensor]

    def add(self, type: str, name: str, inputs: Sequence[str], *, params: Mapping | None = None,
            output: str | None = None, **attrs) -> str:
        op = Op(name, type, list(inputs), [output or name], dict(attrs),
                {k: v for k, v in (params or {}).items() if v is not None})
        if name in self._names:
            raise ValueError(f"{_who(op)}: duplicate op name")
        for t in op.inputs:
            if t not in self.shapes:
                raise ValueError(f"{_who(op)}: unknown input tensor {t!r}")
        if op.output in self.shapes:
            raise ValueError(f"{_who(op)}: output tensor {op.output!r} is already defined")
        op.attrs, out = infer_op(op, [self.shapes[t] for t in op.inputs])
        self._names.add(name)
        self.ops.append(op)
        self.shapes[op.output] = out
        return op.output

    def build(self, outputs: Sequence[str] | None = None, *,
              exits: Sequence | None = None) -> Graph:
        return Graph(self.name, self.inputs, self.ops, outputs, exits=exits)


def fuse_relu(graph: Graph) -> Graph:
    """A new graph where each relu whose input comes from a conv/fc/add that feeds
    nothing else (and is not a graph output) is folded into that op's ``relu`` flag.

    Which ops fold into which flag is the op table's (``OpSpec.fuses_as`` and
    ``OpSpec.flags``).  The fused op keeps its name and takes over the relu's
    output tensor name.  Weights are shared with ``graph``.
    """
    by_output = {op.output: op for op in graph.ops}
    fused: dict[str, Op] = {}  # producer name -> fused copy
    dropped: set[str] = set()
    for op in graph.ops:
        flag = SPECS[op.type].fuses_as
        if flag is None:
            continue
        src = by_output.get(op.inputs[0])
        if (
            src is not None
            and flag in SPECS[src.type].flags
            and not src.attrs.get(flag, False)
            and src.name not in fused
            and len(graph.tensors[src.output].consumers) == 1
            and src.output not in graph.outputs
        ):
            fused[src.name] = replace(src, outputs=[op.output], attrs={**src.attrs, flag: True})
            dropped.add(op.name)
    ops = [fused.get(op.name, op) for op in graph.ops if op.name not in dropped]
    return Graph(graph.name, {k: graph.shape(k) for k in graph.inputs}, ops, graph.outputs,
                 exits=graph.exits)
