"""ONNX import: models built with onnx.helper run through the interpreter and match
onnxruntime (one thread); each kind of bad model gets a clear ValueError."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.graph import interpret
from coinfer.graph import onnx as gonnx
from tests.onnx_peer import run_model as ort_run
from tests.tolerance import assert_close

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


class Model:
    """Collects nodes and float32 initializers with random values for one test model."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def init(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def rand(self, name: str, *shape, scale: float = 1.0, positive: bool = False) -> str:
        a = self.rng.uniform(0.5, 1.5, shape) if positive else self.rng.standard_normal(shape)
        return self.init(name, (a * scale).astype(np.float32))

    def node(self, op: str, inputs, outputs, name=None, **attrs) -> str:
        outputs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name or outputs[0], **attrs))
        return outputs[0]

    def conv(self, name, x, c, oc, k, **attrs) -> str:
        w = self.rand(f"{name}_w", oc, c // attrs.get("group", 1), k, k,
                      scale=np.sqrt(2 / (c * k * k)))
        b = self.rand(f"{name}_b", oc, scale=0.1)
        return self.node("Conv", [x, w, b], name, **attrs)

    def bn(self, name, x, c) -> str:
        ins = [x, self.rand(f"{name}_g", c, positive=True), self.rand(f"{name}_beta", c, scale=0.1),
               self.rand(f"{name}_mean", c, scale=0.1), self.rand(f"{name}_var", c, positive=True)]
        return self.node("BatchNormalization", ins, name, epsilon=1e-3)

    def model(self, in_shape, out: str, opset: int = 13, in_name: str = "x"):
        g = helper.make_graph(
            self.nodes, "test",
            [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits,
        )
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def check(model, shape, seed: int = 0, **load_kw):
    """Load ``model``, run it with the reference kernels and compare with onnxruntime."""
    g = gonnx.load(model, **load_kw)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    assert g.shape(g.inputs[0]) == shape
    assert_close(interpret.run(g, x), ort_run(model, x), "onnx import vs onnxruntime")
    return g


def cnn_model():
    """Conv+BN+Relu, ceil MaxPool, fire-like Concat, LRN, grouped dilated Conv, Clip(0,6),
    AveragePool with pads, GlobalAveragePool, Flatten, Gemm(transB, alpha, beta), Softmax."""
    m = Model(0)
    x = m.conv("c1", "x", 3, 8, 3, pads=[1, 0, 1, 2], strides=[2, 2])
    x = m.node("Relu", [m.bn("bn1", x, 8)], "r1")
    x = m.node("MaxPool", [x], "p1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    e1 = m.node("Relu", [m.conv("e1", x, 8, 6, 1)], "e1r")
    e3 = m.node("Relu", [m.conv("e3", x, 8, 6, 3, pads=[1, 1, 1, 1])], "e3r")
    x = m.node("Concat", [e1, e3], "cat", axis=1)
    x = m.node("LRN", [x], "norm", size=5, alpha=1e-2, beta=0.75, bias=2.0)
    x = m.conv("g1", x, 12, 12, 3, group=3, dilations=[2, 2], pads=[2, 2, 2, 2])
    x = m.node("Clip", [x, m.init("lo", np.float32(0)), m.init("hi", np.float32(6))], "relu6")
    x = m.node("AveragePool", [x], "ap", kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 0, 0],
               count_include_pad=1)
    x = m.node("GlobalAveragePool", [x], "gap")
    x = m.node("Flatten", [x], "flat", axis=1)
    x = m.node("Gemm", [x, m.rand("fw", 10, 12), m.rand("fb", 1, 10)], "fc", transB=1,
               alpha=0.5, beta=2.0)
    m.node("Softmax", [x], "prob", axis=-1)
    return m.model(["N", 3, 21, 19], "prob")


def test_cnn_matches_onnxruntime_and_folds():
    g = check(cnn_model(), (2, 3, 21, 19), batch=2)
    types = [op.type for op in g.ops]
    assert "relu" not in types  # all fused
    assert types.count("conv") == 4 and "clip" in types and "lrn" in types
    c1 = g.op("c1")
    assert c1.attrs["relu"] and c1.output == "r1"  # BN and Relu folded; ONNX name kept
    assert c1.attrs["padding"] == (1, 0, 1, 2)
    assert g.op("g1").attrs["groups"] == 3 and g.op("g1").attrs["dilation"] == (2, 2)
    assert g.op("relu6").attrs == {"min": 0.0, "max": 6.0}


def test_symbolic_batch_defaults_to_one_and_fuse_can_be_off():
    g = check(cnn_model(), (1, 3, 21, 19), fuse=False)
    assert [op.type for op in g.ops].count("relu") == 3


def residual_model():
    """auto_pad SAME_UPPER/SAME_LOWER/VALID convs and pools, residual Add, Reshape to 2-D,
    MatMul+Add folded into fc, Dropout, Identity, Gemm with transB=0, Constant shape."""
    m = Model(1)
    a = m.node("Relu", [m.conv("a", "x", 4, 8, 3, strides=[2, 2], auto_pad="SAME_UPPER")], "ar")
    a = m.conv("b", a, 8, 8, 2, auto_pad="SAME_LOWER")
    s = m.conv("skip", "x", 4, 8, 1, strides=[2, 2])
    x = m.node("Relu", [m.node("Add", [a, s], "sum")], "sumr")
    x = m.node("MaxPool", [x], "pool", kernel_shape=[2, 3], strides=[2, 2], auto_pad="VALID")
    x = m.node("Identity", [x], "ident")
    shape = m.node("Constant", [], "shape",
                   value=numpy_helper.from_array(np.array([1, -1], np.int64)))
    x = m.node("Reshape", [x, shape], "rs")
    x = m.node("MatMul", [x, m.rand("mw", 8 * 2 * 1, 16, scale=0.3)], "mm")
    x = m.node("Add", [x, m.rand("mb", 16, scale=0.1)], "mmb")
    x = m.node("Dropout", [x], "drop")
    x = m.node("Relu", [x], "dr")
    m.node("Gemm", [x, m.rand("gw", 16, 5), m.rand("gb", 5)], "out")
    return m.model([1, 4, 9, 7], "out")


def test_residual_matches_onnxruntime_and_folds_matmul_add():
    g = check(residual_model(), (1, 4, 9, 7))
    mm = g.op("mm")
    assert mm.type == "fc" and mm.output == "mmb" and mm.params["b"].shape == (16,)
    assert g.op("sum").attrs["relu"] and g.op("a").attrs["relu"]
    assert g.op("a").attrs["padding"] == (1, 1, 1, 1)  # SAME_UPPER, even total
    assert g.op("b").attrs["padding"] == (1, 1, 0, 0)  # SAME_LOWER: extra at the start
    assert g.op("rs").attrs["shape"] == (0, -1)  # the batch stays configurable
    assert g.op("drop").type == "dropout" and g.op("out").type == "fc"


def test_old_opset_clip_attributes_and_softmax():
    m = Model(2)
    x = m.conv("c", "x", 3, 4, 3)
    x = m.node("Clip", [x], "clip", min=-0.5, max=0.5)
    x = m.node("Flatten", [x], "flat")
    m.node("Softmax", [x], "prob")
    g = check(m.model([2, 3, 5, 5], "prob", opset=10), (2, 3, 5, 5))
    assert g.op("clip").attrs == {"min": -0.5, "max": 0.5}


def test_load_from_path_and_bytes(tmp_path):
    model = residual_model()
    path = tmp_path / "res.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(5).standard_normal((1, 4, 9, 7)).astype(np.float32)
    want = ort_run(model, x)
    assert_close(interpret.run(gonnx.load(path), x), want, "from path")
    assert_close(interpret.run(gonnx.load(model.SerializeToString()), x), want, "from bytes")


@given(
    h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 3), s=st.integers(1, 3),
    auto_pad=st.sampled_from(["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]),
    pool=st.sampled_from(["MaxPool", "AveragePool"]), ceil=st.integers(0, 1),
    include=st.integers(0, 1),
)
def test_conv_pool_geometry_matches_onnxruntime(h, w, k, s, auto_pad, pool, ceil, include):
    m = Model(3)
    kw = {"auto_pad": auto_pad} if auto_pad != "NOTSET" else {"pads": [k // 2] * 4}
    x = m.conv("c", "x", 2, 3, k, strides=[s, s], **kw)
    pk = {"auto_pad": auto_pad} if auto_pad != "NOTSET" else {"pads": [0, 1, 1, 0],
                                                              "ceil_mode": ceil}
    if pool == "AveragePool":
        pk["count_include_pad"] = include
    m.node(pool, [x], "pool", kernel_shape=[2, 2], strides=[s, 1], **pk)
    check(m.model([1, 2, h, w], "pool"), (1, 2, h, w))


# -- errors -------------------------------------------------------------------------


def test_unsupported_op():
    m = Model()
    m.node("Sigmoid", [m.conv("c", "x", 3, 4, 1)], "sig")
    with pytest.raises(ValueError, match=r"'sig' \(Sigmoid\).*unsupported op type"):
        gonnx.load(m.model([1, 3, 4, 4], "sig"))


def test_malformed_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model \x00\xff\xfe")
    with pytest.raises(ValueError, match="not a (valid|usable) ONNX model"):
        gonnx.load(bad)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(cnn_model().SerializeToString()[:300])
    with pytest.raises(ValueError, match="not a (valid|usable) ONNX model"):
        gonnx.load(cut)


def test_missing_initializer():
    m = Model()
    m.node("Conv", ["x", "w_absent"], "conv0")
    with pytest.raises(ValueError, match=r"'conv0' \(Conv\).*'w_absent'.*initializer"):
        gonnx.load(m.model([1, 3, 4, 4], "conv0"))


def test_other_unsupported_forms():
    m = Model()
    m.node("BatchNormalization", ["x"] + [m.rand(f"p{i}", 3, positive=True) for i in range(4)],
           "bn")
    with pytest.raises(ValueError, match=r"'bn' \(BatchNormalization\).*right after a Conv"):
        gonnx.load(m.model([1, 3, 4, 4], "bn"))
    m = Model()
    m.node("Add", ["x", m.rand("k", 1, 3, 1, 1)], "addk")
    with pytest.raises(ValueError, match=r"'addk' \(Add\).*constant operand"):
        gonnx.load(m.model([1, 3, 4, 4], "addk"))
    m = Model()
    m.node("Reshape", ["x", m.init("s", np.array([1, 3, 16], np.int64))], "rs")
    with pytest.raises(ValueError, match=r"'rs' \(Reshape\).*2-D"):
        gonnx.load(m.model([1, 3, 4, 4], "rs"))
