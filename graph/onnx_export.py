"""ONNX export: ``to_model(graph) -> onnx.ModelProto`` and ``save(graph, path) -> bytes written``.

The inverse of :func:`coinfer.graph.onnx.load` for the ops the Caffe-era
models use (opset 13, default domain):

==============  ==============================================================
conv            Conv (strides, pads, dilations, group) + Relu if fused
maxpool         MaxPool (kernel_shape, strides, pads, ceil_mode)
avgpool         AveragePool (+ count_include_pad)
globalavgpool   GlobalAveragePool
fc              Gemm (transB=1, weight (M, K)) + Relu if fused
relu, clip      Relu, Clip (min/max as constant inputs)
lrn             LRN (size, alpha, beta, bias = k)
softmax         Softmax (axis; opset 13's one-axis rule)
concat          Concat (axis)
add             Add + Relu if fused
flatten         Flatten (axis 1)
dropout         Dropout (inference: identity)
reshape         Reshape to 2-D with a constant shape
==============  ==============================================================

Weights are stored as float32 initializers with raw little-endian data (the
file is about 4 bytes per parameter plus a few KB of graph).  Tensor names are
the IR's, so ``onnx.load(save(g))`` gives back the same ops, shapes and
weights (the same :func:`~coinfer.graph.edge.catalog.graph_digest` once relus
are fused again).  An op type not in the table raises ValueError naming it.
"""
from __future__ import annotations

import os

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # the optional extra [onnx]
    raise ImportError("writing .onnx files needs the onnx package: pip install 'coinfer[onnx]'") from e

__all__ = ["to_model", "save", "OPSET"]

OPSET = 13


def _pads(p) -> list:
    t, l, b, r = p  # noqa: E741 - ONNX's order is (top, left, bottom, right)
    return [int(t), int(l), int(b), int(r)]


class _Writer:
    def __init__(self, graph):
        self.g = graph
        self.nodes: list = []
        self.inits: list = []

    def init(self, name: str, a) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def node(self, type_: str, inputs, output: str, name: str, **attrs) -> None:
        self.nodes.append(helper.make_node(type_, list(inputs), [output], name=name, **attrs))

    def relu_after(self, op, type_: str, inputs, **attrs) -> None:
        """``type_`` then a Relu if the op carries a fused one (its output keeps the op's name)."""
        if op.attrs.get("relu"):
            mid = f"{op.output}__pre_relu"
            self.node(type_, inputs, mid, op.name, **attrs)
            self.node("Relu", [mid], op.output, f"{op.name}__relu")
        else:
            self.node(type_, inputs, op.output, op.name, **attrs)

    def op(self, op) -> None:
        a, t, name = op.attrs, op.type, op.name
        ins = list(op.inputs)
        if t == "conv":
            ins.append(self.init(f"{name}.w", op.params["w"].astype(np.float32)))
            if op.params.get("b") is not None:
                ins.append(self.init(f"{name}.b", op.params["b"].astype(np.float32)))
            kh, kw = op.params["w"].shape[2:]
            self.relu_after(op, "Conv", ins, kernel_shape=[kh, kw], strides=list(a["stride"]),
                            pads=_pads(a["padding"]), dilations=list(a["dilation"]), group=int(a["groups"]))
        elif t in ("maxpool", "avgpool"):
            kw = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=_pads(a["padding"]),
                      ceil_mode=int(a["ceil_mode"]))
            if t == "avgpool":
                kw["count_include_pad"] = int(a["count_include_pad"])
            self.node("MaxPool" if t == "maxpool" else "AveragePool", ins, op.output, name, **kw)
        elif t == "globalavgpool":
            self.node("GlobalAveragePool", ins, op.output, name)
        elif t == "fc":
            ins.append(self.init(f"{name}.w", op.params["w"].astype(np.float32)))
            if op.params.get("b") is not None:
                ins.append(self.init(f"{name}.b", op.params["b"].astype(np.float32)))
            self.relu_after(op, "Gemm", ins, transB=1)
        elif t == "relu":
            self.node("Relu", ins, op.output, name)
        elif t == "clip":
            lo = self.init(f"{name}.min", np.array(a.get("min", -np.inf), np.float32))
            hi = self.init(f"{name}.max", np.array(a.get("max", np.inf), np.float32))
            self.node("Clip", ins + [lo, hi], op.output, name)
        elif t == "lrn":
            self.node("LRN", ins, op.output, name, size=int(a["size"]), alpha=float(a["alpha"]),
                      beta=float(a["beta"]), bias=float(a["k"]))
        elif t == "softmax":
            self.node("Softmax", ins, op.output, name, axis=int(a["axis"]))
        elif t == "concat":
            self.node("Concat", ins, op.output, name, axis=int(a["axis"]))
        elif t == "add":
            self.relu_after(op, "Add", ins)
        elif t == "flatten":
            self.node("Flatten", ins, op.output, name, axis=1)
        elif t == "dropout":
            self.node("Dropout", ins, op.output, name)
        elif t == "reshape":
            shape = self.init(f"{name}.shape", np.array(self.g.shape(op.output), np.int64))
            self.node("Reshape", ins + [shape], op.output, name)
        else:
            raise ValueError(f"onnx export: op {name!r} ({t}) has no ONNX mapping here")


def to_model(graph, *, producer: str = "coinfer") -> onnx.ModelProto:
    """The graph as an ONNX ModelProto (opset 13); weights as float32 initializers."""
    w = _Writer(graph)
    for op in graph.ops:
        w.op(op)

    def vi(t):
        return helper.make_tensor_value_info(t, TensorProto.FLOAT, list(graph.shape(t)))

    g = helper.make_graph(w.nodes, graph.name, [vi(t) for t in graph.inputs], [vi(t) for t in graph.outputs],
                          initializer=w.inits)
    model = helper.make_model(g, producer_name=producer, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def save(graph, path) -> int:
    """Write the graph as an ONNX file at ``path`` (one protobuf, no external data);
    returns the bytes written.  Graphs over protobuf's 2 GiB limit raise ValueError."""
    model = to_model(graph)
    data = model.SerializeToString()
    if len(data) >= 2**31:
        raise ValueError(f"onnx export: graph {graph.name!r} serialises to {len(data)} bytes, over protobuf's 2 GiB")
    with open(os.fspath(path), "wb") as f:
        f.write(data)
    return len(data)
