"""ONNX import: ``load(path_or_ModelProto, *, batch=None) -> Graph``.

Supported nodes (default domain) and how they map onto the IR:

- Conv (2-D; auto_pad NOTSET/VALID/SAME_UPPER/SAME_LOWER) -> ``conv``.  A
  BatchNormalization that alone consumes a Conv output is folded into it:
  ``w' = w*g/sqrt(var+eps)``, ``b' = (b-mean)*g/sqrt(var+eps) + beta``.
- MaxPool, AveragePool (2-D, no dilation), GlobalAveragePool -> pools.
- Gemm (transA=0, any transB/alpha/beta, bias of shape (M,), (1, M) or a
  scalar) -> ``fc``; MatMul with a constant right operand -> ``fc``, and an Add
  of a constant bias that alone consumes it is folded in.
- Relu, Clip (min/max as attributes or constant inputs) -> ``relu``/``clip``.
- LRN, Softmax (one axis; opset < 13 only where its flatten-to-2-D rule equals
  a one-axis softmax), Concat, Add of two activations, Flatten (axis 1),
  Reshape to 2-D with a constant shape, Dropout (inference: ``dropout``),
  Identity and Constant.

Relus are then fused into the conv/fc/add before them (``fuse=False`` keeps
them separate).  IR tensors keep their ONNX names.  Anything else, a
malformed file or a weight that is not a constant raises ValueError naming the
node and its op type.  Models are parsed as protobuf only; nothing is unpickled.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError as e:  # the optional extra [onnx]
    raise ImportError("reading .onnx files needs the onnx package: pip install 'coinfer[onnx]'") from e

from .ir import Graph, GraphBuilder, fuse_relu

#: Inputs (by index) each node type takes as constants, with the names errors use.
CONSTANT_INPUTS = {
    "Conv": {1: "weights", 2: "bias"}, "Gemm": {1: "B", 2: "C"}, "MatMul": {1: "B"},
    "Clip": {1: "min", 2: "max"}, "Reshape": {1: "shape"}, "Dropout": {1: "ratio", 2: "training_mode"},
    "BatchNormalization": {1: "scale", 2: "B", 3: "mean", 4: "var"},
}

SUPPORTED = (
    "Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm",
    "MatMul", "Add", "Relu", "Clip", "LRN", "Softmax", "Concat", "Flatten", "Reshape",
    "Dropout", "Identity", "Constant",
)


def _read(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        proto = model
        where = "ModelProto"
    elif isinstance(model, (str, os.PathLike)):
        where = os.fspath(model)
        try:
            proto = onnx.load(where)
        except OSError:
            raise  # a missing or unreadable file keeps its own error
        except Exception as e:  # protobuf DecodeError and friends
            raise ValueError(f"onnx.load: {where!r} is not a valid ONNX model: {e}") from e
    elif isinstance(model, (bytes, bytearray)):
        where = "bytes"
        try:
            proto = onnx.load_model_from_string(bytes(model))
        except Exception as e:
            raise ValueError(f"onnx.load: the bytes are not a valid ONNX model: {e}") from e
    else:
        raise TypeError(
            f"onnx.load: expected a path, bytes or onnx.ModelProto, got {type(model).__name__}"
        )
    g = proto.graph
    if not g.node or not g.input or not g.output:
        raise ValueError(
            f"onnx.load: {where!r} is not a usable ONNX model: it has {len(g.node)} nodes, "
            f"{len(g.input)} inputs and {len(g.output)} outputs"
        )
    return proto


def _ints(v, n: int, default: int, who: str, what: str) -> tuple[int, ...]:
    if v is None:
        return (default,) * n
    v = tuple(int(e) for e in v)
    if len(v) != n:
        raise ValueError(f"{who}: attribute {what} must have {n} values, got {list(v)}")
    return v


class _Importer:
    def __init__(self, proto: onnx.ModelProto, batch: int | None):
        self.g = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.g.initializer
        }
        self.alias: dict[str, str] = {}
        self.users: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.g.node):
            for t in node.input:
                if t:
                    self.users[t].append(i)
        self.graph_outputs = {o.name for o in self.g.output}
        self.skip: set[int] = set()
        self.op_names: set[str] = set()
        self.b = GraphBuilder(self.g.name or "onnx", self._inputs(batch))

    # -- inputs, names, operands --------------------------------------------

    def _readers(self, tensor: str) -> list:
        """(node label, op type, input index) of every node that reads ``tensor``."""
        out = []
        for i, node in enumerate(self.g.node):
            for k, t in enumerate(node.input):
                if t == tensor:
                    out.append((node.name or f"{node.op_type.lower()}_{i}", node.op_type, k))
        return out

    def _input_error(self, name: str, problem: str) -> ValueError:
        """A bad graph input: a node that wants a constant there is named as the culprit,
        else the input and the nodes that read it."""
        readers = self._readers(name)
        for label, op_type, k in readers:
            what = CONSTANT_INPUTS.get(op_type, {}).get(k)
            if what is not None:
                return ValueError(f"onnx node {label!r} ({op_type}): input {k} ({what}) {name!r} must be a "
                                  f"constant (an initializer or Constant node), got a graph input ({problem})")
        read = ", ".join(f"node {lb!r} ({ot}) input {k}" for lb, ot, k in readers) or "no node"
        return ValueError(f"onnx input {name!r}: {problem}; it is read by {read}")

    def _inputs(self, batch) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for vi in self.g.input:
            if vi.name in self.consts:
                continue  # an initializer listed as an input (older exporters)
            tt = vi.type.tensor_type
            if not vi.type.HasField("tensor_type"):
                raise self._input_error(vi.name, "expected a float32 tensor, got a non-tensor type")
            if tt.elem_type != onnx.TensorProto.FLOAT:
                raise self._input_error(vi.name, "expected a float32 tensor, got element type "
                                        f"{onnx.TensorProto.DataType.Name(tt.elem_type)}")
            if not tt.HasField("shape"):
                raise self._input_error(vi.name, "expected a fixed shape, got none")
            if len(tt.shape.dim) == 0:
                raise self._input_error(vi.name, "expected an activation of rank 1 or more, got shape () (rank 0)")
            dims = []
            for i, d in enumerate(tt.shape.dim):
                if i == 0 and batch is not None:
                    dims.append(int(batch))
                elif d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(int(d.dim_value))
                elif i == 0 and not d.HasField("dim_value"):
                    dims.append(1)  # a symbolic batch defaults to 1
                else:
                    given = d.dim_value if d.HasField("dim_value") else repr(d.dim_param or "?")
                    raise self._input_error(vi.name, f"dimension {i} must be a fixed size >= 1, got {given}")
            shapes[vi.name] = tuple(dims)
        if not shapes:
            raise ValueError("onnx.load: the model has no non-constant input (every graph input is an initializer)")
        return shapes

    def _name(self, node, i: int) -> str:
        base = node.name or f"{node.op_type.lower()}_{i}"
        name, k = base, 1
        while name in self.op_names:
            name, k = f"{base}_{k}", k + 1
        self.op_names.add(name)
        return name

    @staticmethod
    def _who(node, name: str) -> str:
        return f"onnx node {name!r} ({node.op_type})"

    def act(self, node, name: str, idx: int) -> str:
        t = node.input[idx] if idx < len(node.input) else ""
        t = self.alias.get(t, t)
        if t in self.consts:
            raise ValueError(f"{self._who(node, name)}: input {idx} {t!r} is a constant; "
                             f"an activation is expected there")
        if t not in self.b.shapes:
            raise ValueError(f"{self._who(node, name)}: input {idx} {t!r} is not produced by any "
                             f"earlier node nor a graph input")
        return t

    def const(self, node, name: str, idx: int, what: str, required: bool = True, dtypes=("float32",)):
        """Input ``idx`` of ``node``, which must be a constant of one of ``dtypes`` (float32, the
        activations' type, unless said otherwise)."""
        t = node.input[idx] if idx < len(node.input) else ""
        if not t:
            if required:
                raise ValueError(f"{self._who(node, name)}: missing input {idx} ({what})")
            return None
        if t not in self.consts:
            made = ("a graph input" if t in self.b.inputs else "computed by a node" if t in self.b.shapes
                    else "no tensor of that name")
            raise ValueError(f"{self._who(node, name)}: input {idx} ({what}) {t!r} must be a constant "
                             f"(an initializer or Constant node), got {made}")
        c = self.consts[t]
        if np.asarray(c).dtype.name not in dtypes:
            raise ValueError(f"{self._who(node, name)}: input {idx} ({what}) {t!r} must be "
                             f"{' or '.join(dtypes)}, got {np.asarray(c).dtype.name}")
        return c

    def scalar(self, node, name: str, idx: int, what: str, dtypes=("float32",)):
        """A constant input that must hold one value (rank 0, or one element), as a Python scalar."""
        c = self.const(node, name, idx, what, required=False, dtypes=dtypes)
        if c is None:
            return None
        c = np.asarray(c)
        if c.size != 1:
            raise ValueError(f"{self._who(node, name)}: input {idx} ({what}) must be a scalar, "
                             f"got shape {c.shape}")
        return c.reshape(()).item()

    def axis(self, node, name: str, attrs, rank: int, default=None, *, extra: int = 0) -> int:
        """Attribute ``axis`` in [-rank, rank - 1 + extra], made non-negative."""
        who = self._who(node, name)
        if "axis" not in attrs:
            if default is None:
                raise ValueError(f"{who}: missing attribute axis (an int in [{-rank}, {rank - 1 + extra}])")
            return default
        a = attrs["axis"]
        if not isinstance(a, int):
            raise ValueError(f"{who}: attribute axis must be an int, got {a!r}")
        if not -rank <= a <= rank - 1 + extra:
            raise ValueError(f"{who}: attribute axis must be in [{-rank}, {rank - 1 + extra}] for a rank-{rank} "
                             f"input, got {a}")
        return a + rank if a < 0 else a

    def sole_user(self, node, op_type: str):
        """The node of type ``op_type`` that alone reads ``node``'s output, if any."""
        out = node.output[0]
        users = self.users.get(out, [])
        if len(users) != 1 or out in self.graph_outputs:
            return None
        idx = users[0]
        nxt = self.g.node[idx]
        return (idx, nxt) if nxt.op_type == op_type and nxt.domain in ("", "ai.onnx") else None

    def emit(self, node, name: str, type: str, inputs, out: str, params=None, **attrs) -> None:
        try:
            self.b.add(type, name, inputs, params=params, output=out, **attrs)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self._who(node, name)}: {e}") from e

    # -- run ------------------------------------------------------------------

    def _node(self, i: int, node) -> None:
        name = self._name(node, i)
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED:
            raise ValueError(
                f"{self._who(node, name)}: unsupported op type"
                f"{' in domain ' + repr(node.domain) if node.domain else ''}; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        getattr(self, "_" + node.op_type)(node, name, attrs)

    def run(self, fuse: bool) -> Graph:
        # Constants first (Constant nodes, Identity of a constant): a node may fold in a
        # later one (a BatchNormalization into its Conv) whose parameters they make.
        for i, node in enumerate(self.g.node):
            if node.domain in ("", "ai.onnx") and (
                    node.op_type == "Constant"
                    or (node.op_type == "Identity" and node.input and node.input[0] in self.consts)):
                self._node(i, node)
                self.skip.add(i)
        for i, node in enumerate(self.g.node):
            if i not in self.skip:
                self._node(i, node)
        outputs = []
        for o in self.g.output:
            t = self.alias.get(o.name, o.name)
            if t in self.b.inputs:
                raise ValueError(f"onnx output {o.name!r} is the graph input {t!r} itself; expected an "
                                 f"output computed by a node")
            if t not in self.b.shapes:
                raise ValueError(f"onnx output {o.name!r} is not computed by any supported node")
            outputs.append(t)
        g = self.b.build(outputs)
        return fuse_relu(g) if fuse else g

    # -- node handlers ----------------------------------------------------------

    def _spatial(self, node, name, attrs, x_shape, kernel, dilation) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) padding from ``pads`` or ``auto_pad``."""
        who = self._who(node, name)
        mode = attrs.get("auto_pad", "NOTSET")
        if mode == "NOTSET":
            return _ints(attrs.get("pads"), 4, 0, who, "pads")
        if mode == "VALID":
            return (0, 0, 0, 0)
        if mode not in ("SAME_UPPER", "SAME_LOWER"):
            raise ValueError(f"{who}: attribute auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, "
                             f"got {mode!r}")
        stride = _ints(attrs.get("strides"), 2, 1, who, "strides")
        begin, end = [], []
        for n, k, s, d in zip(x_shape[2:], kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if mode == "SAME_UPPER" else large)
            end.append(large if mode == "SAME_UPPER" else small)
        return (begin[0], begin[1], end[0], end[1])

    def _Conv(self, node, name, attrs):
        who = self._who(node, name)
        x = self.act(node, name, 0)
        w = self.const(node, name, 1, "weights").astype(np.float32)
        if w.ndim != 4 or len(self.b.shape(x)) != 4:
            raise ValueError(f"{who}: only 2-D convolution is supported: expected a 4-D input and 4-D weights "
                             f"(O, C/group, KH, KW), got input {self.b.shape(x)} and weights {w.shape}")
        b = self.const(node, name, 2, "bias", required=False)
        b = None if b is None else b.astype(np.float32)
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: input 2 (bias) must have shape ({w.shape[0]},) (one value per output "
                             f"channel), got {b.shape}")
        kernel = _ints(attrs.get("kernel_shape"), 2, 0, who, "kernel_shape") \
            if "kernel_shape" in attrs else w.shape[2:]
        if tuple(kernel) != w.shape[2:]:
            raise ValueError(f"{who}: attribute kernel_shape must match the weights' {list(w.shape[2:])}, "
                             f"got {list(kernel)}")
        dilation = _ints(attrs.get("dilations"), 2, 1, who, "dilations")
        pads = self._spatial(node, name, attrs, self.b.shape(x), kernel, dilation)
        out = node.output[0]
        bn = self.sole_user(node, "BatchNormalization")
        if bn is not None:
            idx, bnode = bn
            w, b, out = self._fold_bn(bnode, self._name(bnode, idx), w, b)
            self.skip.add(idx)
        self.emit(node, name, "conv", [x], out, {"w": w, "b": b},
                  stride=_ints(attrs.get("strides"), 2, 1, who, "strides"), padding=pads,
                  dilation=dilation, groups=int(attrs.get("group", 1)))

    def _fold_bn(self, node, name, w, b):
        """Conv weights and bias with the BatchNormalization ``node`` folded in, and its output."""
        who = self._who(node, name)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("training_mode", 0):
            raise ValueError(f"{who}: attribute training_mode must be 0 (inference), got {attrs['training_mode']}")
        if len([o for o in node.output if o]) > 1:
            raise ValueError(f"{who}: expected one output (the inference form), got "
                             f"{len([o for o in node.output if o])}")
        gamma, beta, mean, var = (
            self.const(node, name, i, what).astype(np.float64).reshape(-1)
            for i, what in enumerate(("scale", "B", "mean", "var"), 1)
        )
        for what, a in zip(("scale", "B", "mean", "var"), (gamma, beta, mean, var)):
            if a.shape != (w.shape[0],):
                raise ValueError(f"{who}: input {what} must have {w.shape[0]} values (the Conv's output "
                                 f"channels), got {a.shape[0]}")
        scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        w2 = (w.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
        b0 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        b2 = ((b0 - mean) * scale + beta).astype(np.float32)
        return w2, b2, node.output[0]

    def _BatchNormalization(self, node, name, attrs):
        src = node.input[0] if node.input else ""
        raise ValueError(f"{self._who(node, name)}: expected right after a Conv whose output it alone reads "
                         f"(it is folded into that Conv), got input 0 {src!r} from elsewhere")

    def _pool(self, node, name, attrs, type, **extra):
        who = self._who(node, name)
        x = self.act(node, name, 0)
        if len(self.b.shape(x)) != 4:
            raise ValueError(f"{who}: only 2-D pooling is supported: expected a 4-D input, got shape "
                             f"{self.b.shape(x)}")
        if len([o for o in node.output if o]) > 1:
            raise ValueError(f"{who}: output 1 (Indices) is not supported: expected one output, got "
                             f"{len([o for o in node.output if o])}")
        if "kernel_shape" not in attrs:
            raise ValueError(f"{who}: missing attribute kernel_shape")
        kernel = _ints(attrs["kernel_shape"], 2, 0, who, "kernel_shape")
        dil = _ints(attrs.get("dilations"), 2, 1, who, "dilations")
        if dil != (1, 1):
            raise ValueError(f"{who}: dilated pooling is not supported: expected dilations [1, 1], got {list(dil)}")
        pads = self._spatial(node, name, attrs, self.b.shape(x), kernel, (1, 1))
        self.emit(node, name, type, [x], node.output[0], kernel=kernel,
                  stride=_ints(attrs.get("strides"), 2, 1, who, "strides"), padding=pads,
                  ceil_mode=bool(attrs.get("ceil_mode", 0)), **extra)

    def _MaxPool(self, node, name, attrs):
        self._pool(node, name, attrs, "maxpool")

    def _AveragePool(self, node, name, attrs):
        self._pool(node, name, attrs, "avgpool",
                   count_include_pad=bool(attrs.get("count_include_pad", 0)))

    def _GlobalAveragePool(self, node, name, attrs):
        self.emit(node, name, "globalavgpool", [self.act(node, name, 0)], node.output[0])

    def _bias(self, node, name, c, m: int) -> np.ndarray:
        c = np.asarray(c, np.float32)
        if c.size == 1:
            return np.full(m, c.reshape(()), np.float32)
        if c.shape in ((m,), (1, m)):
            return c.reshape(m).copy()
        raise ValueError(f"{self._who(node, name)}: bias shape {c.shape} is not (M,), (1, M) or "
                         f"a scalar, with M = {m}")

    def _Gemm(self, node, name, attrs):
        who = self._who(node, name)
        x = self.act(node, name, 0)
        if attrs.get("transA", 0):
            raise ValueError(f"{who}: attribute transA must be 0 (transA=1 is not supported), got {attrs['transA']}")
        bmat = self.const(node, name, 1, "B").astype(np.float64)
        if bmat.ndim != 2:
            raise ValueError(f"{who}: input 1 (B) must be 2-D, got shape {bmat.shape}")
        w = bmat if attrs.get("transB", 0) else bmat.T
        w = (float(attrs.get("alpha", 1.0)) * w).astype(np.float32)
        c = self.const(node, name, 2, "C", required=False)
        if c is not None:
            c = float(attrs.get("beta", 1.0)) * self._bias(node, name, c, w.shape[0])
        self.emit(node, name, "fc", [x], node.output[0],
                  {"w": np.ascontiguousarray(w), "b": None if c is None else c.astype(np.float32)})

    def _MatMul(self, node, name, attrs):
        who = self._who(node, name)
        x = self.act(node, name, 0)
        bmat = self.const(node, name, 1, "B")
        if bmat.ndim != 2:
            raise ValueError(f"{who}: input 1 (B) must be 2-D, got shape {bmat.shape}")
        w = np.ascontiguousarray(bmat.T, dtype=np.float32)
        out, b = node.output[0], None
        add = self.sole_user(node, "Add")
        if add is not None:
            idx, anode = add
            other = [t for t in anode.input if t != node.output[0]]
            if len(other) == 1 and other[0] in self.consts and np.asarray(self.consts[other[0]]).dtype == np.float32:
                b = self._bias(anode, self._name(anode, idx), self.consts[other[0]], w.shape[0])
                out = anode.output[0]
                self.skip.add(idx)
        self.emit(node, name, "fc", [x], out, {"w": w, "b": b})

    def _Add(self, node, name, attrs):
        if any(t in self.consts for t in node.input):
            raise ValueError(f"{self._who(node, name)}: an Add with a constant operand is only "
                             f"supported right after a MatMul (folded into its bias)")
        self.emit(node, name, "add", [self.act(node, name, 0), self.act(node, name, 1)],
                  node.output[0])

    def _Relu(self, node, name, attrs):
        self.emit(node, name, "relu", [self.act(node, name, 0)], node.output[0])

    def _Clip(self, node, name, attrs):
        x = self.act(node, name, 0)
        lo, hi = attrs.get("min", -math.inf), attrs.get("max", math.inf)
        if self.opset >= 11:
            c = self.scalar(node, name, 1, "min")
            lo = -math.inf if c is None else c
            c = self.scalar(node, name, 2, "max")
            hi = math.inf if c is None else c
        for what, v in (("min", lo), ("max", hi)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"{self._who(node, name)}: {what} must be a number, got {v!r}")
            if math.isnan(v):
                raise ValueError(f"{self._who(node, name)}: {what} must be a number, got NaN")
        # min > max is allowed: ONNX then sets every element to max.
        self.emit(node, name, "clip", [x], node.output[0], min=float(lo), max=float(hi))

    def _LRN(self, node, name, attrs):
        if "size" not in attrs:
            raise ValueError(f"{self._who(node, name)}: missing attribute size")
        self.emit(node, name, "lrn", [self.act(node, name, 0)], node.output[0],
                  size=int(attrs["size"]), alpha=float(attrs.get("alpha", 1e-4)),
                  beta=float(attrs.get("beta", 0.75)), k=float(attrs.get("bias", 1.0)))

    def _Softmax(self, node, name, attrs):
        x = self.act(node, name, 0)
        shape = self.b.shape(x)
        axis = self.axis(node, name, attrs, len(shape), -1 if self.opset >= 13 else 1) % len(shape)
        if self.opset < 13 and math.prod(shape[axis + 1:]) != 1:
            raise ValueError(
                f"{self._who(node, name)}: opset {self.opset} Softmax normalises over all axes "
                f">= {axis} of {shape}; only the case where that is one axis is supported"
            )
        self.emit(node, name, "softmax", [x], node.output[0], axis=axis)

    def _Concat(self, node, name, attrs):
        xs = [self.act(node, name, i) for i in range(len(node.input))]
        axis = self.axis(node, name, attrs, len(self.b.shape(xs[0])))
        self.emit(node, name, "concat", xs, node.output[0], axis=axis)

    def _Flatten(self, node, name, attrs):
        x = self.act(node, name, 0)
        rank = len(self.b.shape(x))
        axis = self.axis(node, name, attrs, rank, 1, extra=1)
        if axis != 1:
            raise ValueError(f"{self._who(node, name)}: only axis 1 (keep the batch) is supported, "
                             f"got axis {attrs.get('axis')} on a rank-{rank} input")
        self.emit(node, name, "flatten", [x], node.output[0])

    def _Reshape(self, node, name, attrs):
        who = self._who(node, name)
        x = self.act(node, name, 0)
        target = [int(v) for v in np.asarray(self.const(node, name, 1, "shape", dtypes=("int64",))).reshape(-1)]
        if len(target) != 2:
            raise ValueError(f"{who}: only reshapes to 2-D are supported, got shape {target}")
        if attrs.get("allowzero", 0) and 0 in target:
            raise ValueError(f"{who}: allowzero=1 with a zero in the shape is not supported")
        xs = self.b.shape(x)
        # Resolve under the current batch; keep the batch symbolic when it stays in front.
        known = [xs[i] if v == 0 else v for i, v in enumerate(target)]
        if -1 in known and known.count(-1) == 1:
            rest = math.prod(v for v in known if v != -1)
            known[known.index(-1)] = math.prod(xs) // rest if rest else -1
        keeps_batch = known[0] == xs[0] and math.prod(known) == math.prod(xs)
        shape = (0, -1) if keeps_batch else tuple(target)
        self.emit(node, name, "reshape", [x], node.output[0], shape=shape)

    def _Dropout(self, node, name, attrs):
        who = self._who(node, name)
        if len(node.output) > 1 and node.output[1]:
            mask = node.output[1]
            used = [self._readers(mask)[0][0]] if self.users.get(mask) else []
            if used or mask in self.graph_outputs:
                where = f"read by node {used[0]!r}" if used else "a graph output"
                raise ValueError(f"{who}: output 1 (mask) {mask!r} is {where}; the mask of a dropout is not "
                                 f"computed at inference (expected it unused)")
        if self.opset >= 12 and len(node.input) > 2 and node.input[2]:
            mode = self.scalar(node, name, 2, "training_mode", dtypes=("bool",))
            if bool(mode):
                raise ValueError(f"{who}: input 2 (training_mode) is True; inference with training-mode dropout "
                                 f"is random (expected False or no training_mode)")
        self.emit(node, name, "dropout", [self.act(node, name, 0)], node.output[0])

    def _Identity(self, node, name, attrs):
        src = node.input[0]
        if src in self.consts:
            self.consts[node.output[0]] = self.consts[src]
        else:
            self.alias[node.output[0]] = self.act(node, name, 0)

    def _Constant(self, node, name, attrs):
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                v = attrs[key]
                kind = np.float32 if key.startswith("value_float") else np.int64
                self.consts[node.output[0]] = numpy_helper.to_array(v) if key == "value" else np.asarray(v, kind)
                return
        raise ValueError(f"{self._who(node, name)}: expected attribute value, value_float(s) or value_int(s), "
                         f"got {sorted(attrs) or 'none'}")


def load(model, *, batch: int | None = None, fuse: bool = True) -> Graph:
    """Import an ONNX model (a path, the file's bytes, or an ``onnx.ModelProto``).

    ``batch`` overrides the first input dimension (a symbolic batch defaults
    to 1).  With ``fuse`` (the default) relus are folded into the op before
    them, as :func:`coinfer.graph.ir.fuse_relu` does.
    """
    if batch is not None and (not isinstance(batch, (int, np.integer)) or isinstance(batch, bool)
                              or batch < 1):
        raise ValueError(f"onnx.load: batch must be a positive int, got {batch!r}")
    return _Importer(_read(model), batch).run(fuse)
