"""Graph IR: tensors, ops and graphs, with shape inference, FLOPs and bytes per op.

A :class:`Graph` is a DAG of single-output :class:`Op` s over named
:class:`Tensor` s, held in topological order.  Activations are float32, NCHW
(4-D) until a ``flatten``/``reshape`` makes them (N, K).  Weights live in each
op's ``params`` as float32 numpy arrays (conv ``w`` OIHW and ``b`` (O,); fc ``w``
(M, K) and ``b`` (M,)).  The batch is part of the input shape given at build
time; :meth:`Graph.with_batch` rebuilds the same model for another batch.

Op types and attributes (defaults in brackets):

==============  ==============================================================
conv            stride (sh, sw) [1], padding (t, l, b, r) [0], dilation [1],
                groups [1], relu [False] (a fused ReLU on the output)
maxpool         kernel (kh, kw), stride [kernel], padding (t, l, b, r) [0],
                ceil_mode [False]; padding must be smaller than the kernel
avgpool         as maxpool, plus count_include_pad [False]
globalavgpool   (N, C, H, W) -> (N, C, 1, 1)
fc              relu [False]; input must be 2-D (N, K)
relu            -
clip            min [-inf], max [inf]; ReLU6 is ``clip`` with min 0, max 6
lrn             size [5], alpha [1e-4], beta [0.75], k [1.0] (ONNX/Caffe LRN)
softmax         axis [1]
concat          axis [1]
add             relu [False]; two inputs of one shape, no broadcasting
flatten         (N, ...) -> (N, prod(...))
dropout         identity at inference
reshape         shape (a, b): 2-D target, 0 copies the input dim, -1 is inferred
==============  ==============================================================

Pooling output size follows ONNX/onnxruntime (the same rule as
``coinfer.kernels.geometry.pool_output_size``): in ceil mode a last window that
would start inside the end padding is dropped.

FLOPs per op (:meth:`Graph.flops`): conv and fc count 2 per multiply-accumulate
(bias and a fused ReLU are not counted); max/avg pool count the window size per
output; global average pool counts one per input element; relu, clip and add
count one per output element; LRN counts 2*size + 3 per output (square and sum
over the window, then scale, power and divide); softmax counts 3 per element
(exp, sum, divide); concat, flatten, reshape and dropout count zero.
Bytes per op (:meth:`Graph.bytes`) are input + output + weight bytes.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..kernels import args as _args
from ..kernels.geometry import pool_output_size

OP_TYPES = (
    "conv", "maxpool", "avgpool", "globalavgpool", "fc", "relu", "clip", "lrn",
    "softmax", "concat", "add", "flatten", "dropout", "reshape",
)
#: Op types that carry a ``relu`` flag which :func:`fuse_relu` may set.
FUSABLE = ("conv", "fc", "add")
DTYPE_BYTES = 4  # float32

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


# ---------------------------------------------------------------------------
# Per-op-type attribute normalisation and shape inference.


def _who(op: Op) -> str:
    return f"op {op.name!r} ({op.type})"


def _int(who: str, name: str, v, minimum: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{who}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {v}")
    return int(v)


def _float(who: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: {name} must be a number, got {v!r}")
    return float(v)


def _rank(who: str, what: str, shape: Shape, ndim: int) -> None:
    if len(shape) != ndim:
        raise ValueError(f"{who}: {what} must be {ndim}-D, got shape {shape}")


def _axis(who: str, axis, rank: int) -> int:
    a = _int(who, "axis", axis, -rank)
    if not -rank <= a < rank:
        raise ValueError(f"{who}: axis must be in [{-rank}, {rank}), got {a}")
    return a % rank


def _param(op: Op, key: str, shape: Shape | None, required: bool = True):
    who = _who(op)
    p = op.params.get(key)
    if p is None:
        if required:
            raise ValueError(f"{who}: missing parameter {key!r}")
        return None
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{who}: parameter {key!r} must be a numpy.ndarray, got {type(p).__name__}")
    if shape is not None and p.shape != tuple(shape):
        raise ValueError(f"{who}: parameter {key!r} must have shape {tuple(shape)}, got {p.shape}")
    return p


def _window_out(who: str, axis: str, n: int, pad: int, eff_k: int, s: int) -> int:
    out = (n + pad - eff_k) // s + 1
    if n + pad < eff_k or out < 1:
        raise ValueError(
            f"{who}: window {eff_k} is larger than the padded input {axis} {n + pad}"
        )
    return out


def _conv(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    (x,) = shapes
    _rank(who, "input", x, 4)
    a = op.attrs
    w = _param(op, "w", None)
    if w.ndim != 4:
        raise ValueError(
            f"{who}: weight 'w' must be 4-D (O, C/groups, KH, KW), got shape {w.shape}"
        )
    groups = _int(who, "groups", a.get("groups", 1), 1)
    oc, cg, kh, kw = w.shape
    if x[1] != cg * groups or oc % groups:
        raise ValueError(
            f"{who}: input channels {x[1]} and weight shape {w.shape} do not fit groups={groups} "
            f"(expected C = {cg}*{groups} and O divisible by {groups})"
        )
    _param(op, "b", (oc,), required=False)
    attrs = {
        "stride": _args.pair(who, "stride", a.get("stride", 1)),
        "padding": _args.padding4(who, a.get("padding", 0)),
        "dilation": _args.pair(who, "dilation", a.get("dilation", 1)),
        "groups": groups,
        "relu": bool(a.get("relu", False)),
    }
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = attrs["stride"], attrs["padding"], attrs["dilation"]
    oh = _window_out(who, "height", x[2], pt + pb, dh * (kh - 1) + 1, sh)
    ow = _window_out(who, "width", x[3], pl + pr, dw * (kw - 1) + 1, sw)
    return attrs, (x[0], oc, oh, ow)


def _pool(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    (x,) = shapes
    _rank(who, "input", x, 4)
    a = op.attrs
    if "kernel" not in a:
        raise ValueError(f"{who}: missing attribute 'kernel'")
    kernel = _args.pair(who, "kernel", a["kernel"])
    attrs = {
        "kernel": kernel,
        "stride": _args.pair(who, "stride", kernel if a.get("stride") is None else a["stride"]),
        "padding": _args.padding4(who, a.get("padding", 0)),
        "ceil_mode": bool(a.get("ceil_mode", False)),
    }
    if op.type == "avgpool":
        attrs["count_include_pad"] = bool(a.get("count_include_pad", False))
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, attrs["stride"], attrs["padding"]
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(f"{who}: padding {attrs['padding']} must be smaller than kernel {kernel}")
    _window_out(who, "height", x[2], pt + pb, kh, 1)
    _window_out(who, "width", x[3], pl + pr, kw, 1)
    oh = pool_output_size(x[2], kh, sh, pt, pb, attrs["ceil_mode"])
    ow = pool_output_size(x[3], kw, sw, pl, pr, attrs["ceil_mode"])
    return attrs, (x[0], x[1], oh, ow)


def _globalavgpool(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    (x,) = shapes
    _rank(_who(op), "input", x, 4)
    return {}, (x[0], x[1], 1, 1)


def _fc(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    (x,) = shapes
    _rank(who, "input (flatten it first)", x, 2)
    w = _param(op, "w", None)
    if w.ndim != 2 or w.shape[1] != x[1]:
        raise ValueError(f"{who}: weight 'w' must have shape (M, {x[1]}), got {w.shape}")
    _param(op, "b", (w.shape[0],), required=False)
    return {"relu": bool(op.attrs.get("relu", False))}, (x[0], w.shape[0])


def _same(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    (x,) = shapes
    return {}, x


def _clip(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    lo = _float(who, "min", op.attrs.get("min", -math.inf))
    hi = _float(who, "max", op.attrs.get("max", math.inf))
    if not lo <= hi:
        raise ValueError(f"{who}: min must be <= max, got min={lo}, max={hi}")
    return {"min": lo, "max": hi}, shapes[0]


def _lrn(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    (x,) = shapes
    _rank(who, "input", x, 4)
    a = op.attrs
    attrs = {
        "size": _int(who, "size", a.get("size", 5), 1),
        "alpha": _float(who, "alpha", a.get("alpha", 1e-4)),
        "beta": _float(who, "beta", a.get("beta", 0.75)),
        "k": _float(who, "k", a.get("k", 1.0)),
    }
    return attrs, x


def _softmax(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    (x,) = shapes
    return {"axis": _axis(_who(op), op.attrs.get("axis", 1), len(x))}, x


def _concat(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    x0 = shapes[0]
    axis = _axis(who, op.attrs.get("axis", 1), len(x0))
    for s in shapes[1:]:
        if len(s) != len(x0) or any(a != b for i, (a, b) in enumerate(zip(s, x0)) if i != axis):
            raise ValueError(
                f"{who}: input shapes {list(shapes)} differ outside the concat axis {axis}"
            )
    out = list(x0)
    out[axis] = sum(s[axis] for s in shapes)
    return {"axis": axis}, tuple(out)


def _add(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    a, b = shapes
    if a != b:
        raise ValueError(
            f"{_who(op)}: input shapes must be equal (no broadcasting), got {a} and {b}"
        )
    return {"relu": bool(op.attrs.get("relu", False))}, a


def _flatten(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    (x,) = shapes
    if len(x) < 2:
        raise ValueError(f"{_who(op)}: input must be at least 2-D, got shape {x}")
    return {}, (x[0], int(math.prod(x[1:])))


def _reshape(op: Op, shapes: list[Shape]) -> tuple[dict, Shape]:
    who = _who(op)
    (x,) = shapes
    target = op.attrs.get("shape")
    if not (isinstance(target, (tuple, list)) and len(target) == 2):
        raise ValueError(f"{who}: attribute 'shape' must be a 2-D target (a, b), got {target!r}")
    t = [_int(who, "shape entry", v, -1) for v in target]
    t = [x[i] if v == 0 else v for i, v in enumerate(t)]
    total = int(math.prod(x))
    if t.count(-1) > 1:
        raise ValueError(f"{who}: at most one -1 in shape, got {tuple(target)}")
    if -1 in t:
        known = math.prod(v for v in t if v != -1)
        if known == 0 or total % known:
            raise ValueError(f"{who}: cannot reshape {x} to {tuple(target)}")
        t[t.index(-1)] = total // known
    if math.prod(t) != total:
        raise ValueError(f"{who}: cannot reshape {x} ({total} elements) to {tuple(target)}")
    return {"shape": tuple(int(v) for v in target)}, tuple(t)


_RULES = {
    # type: (number of inputs or None for >= 1, shape rule)
    "conv": (1, _conv),
    "maxpool": (1, _pool),
    "avgpool": (1, _pool),
    "globalavgpool": (1, _globalavgpool),
    "fc": (1, _fc),
    "relu": (1, _same),
    "clip": (1, _clip),
    "lrn": (1, _lrn),
    "softmax": (1, _softmax),
    "concat": (None, _concat),
    "add": (2, _add),
    "flatten": (1, _flatten),
    "dropout": (1, _same),
    "reshape": (1, _reshape),
}


def infer_op(op: Op, in_shapes: Sequence[Shape]) -> tuple[dict, Shape]:
    """Normalised attrs and the output shape of ``op`` given its input shapes.

    Raises ValueError/TypeError naming the op on any inconsistency.
    """
    who = _who(op)
    if op.type not in _RULES:
        raise ValueError(f"{who}: unknown op type {op.type!r}; known types: {', '.join(OP_TYPES)}")
    n_in, rule = _RULES[op.type]
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
            if op.type not in _RULES:
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
        batch = _int(f"graph {self.name!r}", "batch", batch, 1)
        inputs = {k: (batch,) + s[1:] for k, s in self._input_shapes.items()}
        return Graph(self.name, inputs, self.ops, self.outputs, exits=self.exits)

    # -- costs -------------------------------------------------------------

    def _op(self, op: Op | str) -> Op:
        return self._by_name[op] if isinstance(op, str) else op

    def flops(self, op: Op | str) -> int:
        """Floating-point operations of one op (see the module docstring for the rules)."""
        op = self._op(op)
        out = self.tensors[op.output]
        n_out = out.size
        t = op.type
        if t == "conv":
            _, cg, kh, kw = op.params["w"].shape
            return 2 * n_out * cg * kh * kw
        if t == "fc":
            return 2 * n_out * op.params["w"].shape[1]
        if t in ("maxpool", "avgpool"):
            kh, kw = op.attrs["kernel"]
            return n_out * kh * kw
        if t == "globalavgpool":
            return self.tensors[op.inputs[0]].size
        if t in ("relu", "clip", "add"):
            return n_out
        if t == "lrn":
            return n_out * (2 * op.attrs["size"] + 3)
        if t == "softmax":
            return 3 * n_out
        return 0  # concat, flatten, reshape, dropout move or alias data only

    def bytes(self, op: Op | str) -> int:
        """Bytes an op touches: inputs + output + weights (float32)."""
        op = self._op(op)
        act = sum(self.tensors[t].nbytes for t in op.inputs) + self.tensors[op.output].nbytes
        return act + op.param_count * DTYPE_BYTES

    def total_flops(self) -> int:
        return sum(self.flops(op) for op in self.ops)

    def num_params(self) -> int:
        return sum(op.param_count for op in self.ops)

    def summary(self) -> str:
        """A text table: one row per op (type, output shape, params, MFLOPs, KiB), then totals."""
        rows = [("op", "type", "output shape", "params", "MFLOPs", "KiB")]
        for op in self.ops:
            flags = "+relu" if op.attrs.get("relu") else ""
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
        y = b.add("conv", "conv1", ["data"], params={"w": w}, padding=1, relu=True)
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

    The fused op keeps its name and takes over the relu's output tensor name.
    Weights are shared with ``graph``.
    """
    by_output = {op.output: op for op in graph.ops}
    fused: dict[str, Op] = {}  # producer name -> fused copy
    dropped: set[str] = set()
    for op in graph.ops:
        if op.type != "relu":
            continue
        src = by_output.get(op.inputs[0])
        if (
            src is not None
            and src.type in FUSABLE
            and not src.attrs.get("relu", False)
            and src.name not in fused
            and len(graph.tensors[src.output].consumers) == 1
            and src.output not in graph.outputs
        ):
            fused[src.name] = replace(src, outputs=[op.output], attrs={**src.attrs, "relu": True})
            dropped.add(op.name)
    ops = [fused.get(op.name, op) for op in graph.ops if op.name not in dropped]
    return Graph(graph.name, {k: graph.shape(k) for k in graph.inputs}, ops, graph.outputs,
                 exits=graph.exits)
