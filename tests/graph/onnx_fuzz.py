"""Random ONNX models from the op set coinfer imports, valid and invalid, and their verdicts.

:func:`models` is a hypothesis strategy of ``Case``s: a chain of nodes over one
float32 input, drawn from Conv (+BatchNormalization), Relu, Clip, LRN,
Softmax, MaxPool, AveragePool, GlobalAveragePool, Concat, Add, Flatten,
Reshape, Gemm, MatMul (+Add), Dropout and Identity, with random shapes,
attributes, opsets 11-21 and initializer layouts (plain initializers,
initializers also listed as graph inputs, Constant nodes, Identity of a
constant).  Some draws are broken on purpose (a weight of the wrong shape or
type, an axis out of range, a pad as large as the kernel, a training-mode
Dropout, a graph input where a constant belongs, ...).

:func:`verdict` imports a case and runs it under the ``cpu`` plan and a
``codl`` plan (random hand-made costs, so the plans vary: splits, chains,
images and buffers), and compares with onnxruntime.  It returns ``"match"``,
``"error"`` (a ValueError/TypeError naming a node or tensor of the model), or
raises AssertionError for anything else: a mismatch, another exception, an
error that names nothing, or a model coinfer accepts and onnxruntime refuses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from coinfer.graph import onnx as gonnx
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.lower import prepare
from coinfer.graph.coexec.strategies import plan_codl, plan_single
from coinfer.graph.costs.source import TableCosts
from tests.onnx_peer import run_model
from tests.tolerance import assert_close

import onnx  # noqa: E402  (the caller skips without onnx)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPS = ("Conv", "ConvBN", "Relu", "Clip", "LRN", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool",
       "Concat", "Add", "Flatten", "Reshape", "Gemm", "MatMul", "Dropout", "Identity")


@dataclass
class Case:
    model: object
    x: np.ndarray
    names: set = field(default_factory=set)  # every node, tensor and input name errors may cite
    notes: list = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.notes)


class _Builder:
    """Draws one model node by node, tracking the shape of every activation."""

    def __init__(self, draw, opset: int):
        self.draw, self.opset = draw, opset
        self.nodes, self.inits, self.extra_inputs = [], [], []
        self.shapes: dict = {}
        self.n = 0
        self.rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        self.notes: list = []
        self.broken = False
        self.may_break = draw(st.floats(0, 1)) < 0.25

    def bad(self, p: float = 0.3) -> bool:
        """Whether to break this draw on purpose; a model is broken at most once, and
        only if it was drawn to be (about a quarter of them)."""
        if not self.may_break or self.broken:
            return False
        b = self.draw(st.floats(0, 1)) < p
        self.broken |= b
        return b

    def name(self, op: str) -> str:
        self.n += 1
        return f"n{self.n}_{op.lower()}"

    def const(self, base: str, value: np.ndarray) -> str:
        """A constant as an initializer, an initializer also listed as a graph input, a
        Constant node, or an Identity of an initializer."""
        how = self.draw(st.sampled_from(["init", "init", "init", "listed", "constant", "identity"]))
        if how == "constant":
            self.nodes.append(helper.make_node("Constant", [], [base], name=f"{base}_const",
                                               value=numpy_helper.from_array(value)))
            return base
        self.inits.append(numpy_helper.from_array(value, base if how != "identity" else base + "_src"))
        if how == "listed":
            self.extra_inputs.append(helper.make_tensor_value_info(
                base, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
        if how == "identity":
            self.nodes.append(helper.make_node("Identity", [base + "_src"], [base], name=f"{base}_ident"))
        return base

    def weights(self, base: str, shape, scale: float) -> str:
        dtype = np.float32
        if self.bad(0.05):
            dtype = np.float64
            self.notes.append(f"{base} float64")
        return self.const(base, (self.rng.standard_normal(shape) * scale).astype(dtype))

    def node(self, op: str, ins, n_out: int = 1, name: str | None = None, **attrs):
        name = name or self.name(op)
        outs = [name] + [f"{name}_o{i}" for i in range(1, n_out)]
        named = self.draw(st.floats(0, 1)) < 0.9
        self.nodes.append(helper.make_node(op, ins, outs, name=name if named else "", **attrs))
        return outs

    # -- one op on the current activation ------------------------------------------
    def step(self, t: str) -> str:
        shape = self.shapes[t]
        rank = len(shape)
        op = self.draw(st.sampled_from(OPS if rank == 4 else ("Relu", "Clip", "Softmax", "Gemm", "MatMul",
                                                                 "Dropout", "Identity", "Add", "Concat",
                                                                 "Flatten", "Reshape")))
        self.notes.append(f"{op} on {shape}")
        out, oshape = getattr(self, "_" + op)(t, shape)
        self.shapes[out] = oshape
        return out

    def _Conv(self, t, shape, bn: bool = False):
        n, c, h, w = shape
        d = self.draw
        groups = d(st.sampled_from([1, 1, 1, c] + [g for g in (2, 3, 4) if c % g == 0]))
        mult = d(st.integers(1, 3)) if groups > 1 else 1
        oc = groups * mult if groups > 1 else d(st.integers(1, 8))
        if groups > 1 and d(st.booleans()):
            oc = groups * d(st.integers(1, 2))
        kh, kw = d(st.integers(1, min(3, h + 2))), d(st.integers(1, min(3, w + 2)))
        attrs = {}
        if d(st.booleans()):
            attrs["strides"] = [d(st.integers(1, 2)), d(st.integers(1, 2))]
        if d(st.floats(0, 1)) < 0.2:
            attrs["dilations"] = [d(st.integers(1, 2)), d(st.integers(1, 2))]
        mode = d(st.sampled_from(["NOTSET", "NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
        dil = attrs.get("dilations", [1, 1])
        if mode.startswith("SAME") and (dil != [1, 1] or not _same_pads_ok((h, w), (kh, kw),
                                                                            attrs.get("strides", [1, 1]), dil)):
            mode = "NOTSET"  # onnxruntime takes no dilation with SAME padding (the spec does)
        if mode == "NOTSET":
            attrs["pads"] = [d(st.integers(0, 2)) for _ in range(4)]
        else:
            attrs["auto_pad"] = mode
        if groups > 1 or d(st.booleans()):
            attrs["group"] = groups
        if d(st.booleans()):
            attrs["kernel_shape"] = [kh, kw]
        wshape = [oc, c // groups, kh, kw]
        if self.bad():
            wshape[1] += 1
            self.notes.append("weight channels off by one")
        name = self.name("conv")
        ins = [t, self.weights(f"{name}_w", wshape, np.sqrt(2.0 / max(1, (c // groups) * kh * kw)))]
        if d(st.booleans()):
            ins.append(self.weights(f"{name}_b", [oc + (1 if self.bad(0.1) else 0)], 0.1))
        (y,) = self.node("Conv", ins, name=name, **attrs)
        oshape = _conv_shape(shape, oc, (kh, kw), attrs)
        if bn:
            ps = [np.abs(self.rng.standard_normal(oc)).astype(np.float32) + 0.5,
                  (self.rng.standard_normal(oc) * 0.1).astype(np.float32),
                  (self.rng.standard_normal(oc) * 0.1).astype(np.float32),
                  np.abs(self.rng.standard_normal(oc)).astype(np.float32) + 0.5]
            bname = self.name("bn")
            ins = [y] + [self.const(f"{bname}_{k}", p) for k, p in zip(("s", "b", "m", "v"), ps)]
            battrs = {"epsilon": float(d(st.sampled_from([1e-5, 1e-3])))}
            if self.opset >= 14 and d(st.booleans()):
                battrs["training_mode"] = 1 if self.bad(0.1) else 0
            (y,) = self.node("BatchNormalization", ins, name=bname, **battrs)
        return y, oshape

    def _ConvBN(self, t, shape):
        return self._Conv(t, shape, bn=True)

    def _Relu(self, t, shape):
        return self.node("Relu", [t])[0], shape

    def _Clip(self, t, shape):
        d = self.draw
        lo, hi = sorted(d(st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=2)))
        if d(st.floats(0, 1)) < 0.2:
            lo, hi = hi, lo  # min > max: every element becomes max
        name = self.name("clip")
        ins = [t]
        which = d(st.sampled_from(["both", "min", "max", "none"]))
        if which in ("both", "min"):
            ins.append(self.const(f"{name}_lo", np.array(lo, np.float32)))
        elif which == "max":
            ins.append("")
        if which in ("both", "max"):
            ins.append(self.const(f"{name}_hi", np.array(hi, np.float32)))
        if self.bad(0.05) and len(ins) > 1 and ins[1]:
            # a bound that is a graph input, not a constant
            ins[1] = f"{name}_lo_in"
            self.extra_inputs.append(helper.make_tensor_value_info(ins[1], TensorProto.FLOAT, []))
            self.notes.append("non-constant clip bound")
        return self.node("Clip", ins, name=name)[0], shape

    def _LRN(self, t, shape):
        d = self.draw
        attrs = {"size": d(st.sampled_from([1, 3, 5]))}  # onnxruntime takes odd sizes only (the spec any)
        if d(st.booleans()):
            attrs.update(alpha=d(st.floats(1e-5, 1e-2)), beta=d(st.floats(0.5, 1.0)), bias=d(st.floats(1.0, 2.0)))
        return self.node("LRN", [t], **attrs)[0], shape

    def _Softmax(self, t, shape):
        d = self.draw
        r = len(shape)
        attrs = {}
        if self.opset < 13 and r > 2:
            attrs["axis"] = d(st.sampled_from([r - 1, -1, 1]))  # before opset 13 axis 1 spans C, H, W
        elif d(st.booleans()):
            attrs["axis"] = d(st.integers(-r, r - 1))
        if self.bad(0.15):
            attrs["axis"] = r + d(st.integers(0, 2))
        return self.node("Softmax", [t], **attrs)[0], shape

    def _pool(self, op, t, shape):
        d = self.draw
        n, c, h, w = shape
        kh, kw = d(st.integers(1, min(3, h))), d(st.integers(1, min(3, w)))
        attrs = {"kernel_shape": [kh, kw]}
        if d(st.booleans()):
            attrs["strides"] = [d(st.integers(1, 2)), d(st.integers(1, 2))]
        mode = d(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
        if mode.startswith("SAME") and not _same_pads_ok((h, w), (kh, kw), attrs.get("strides", [1, 1]), (1, 1)):
            mode = "NOTSET"
        if mode == "NOTSET":
            pads = [d(st.integers(0, kh - 1)), d(st.integers(0, kw - 1)), d(st.integers(0, kh - 1)),
                    d(st.integers(0, kw - 1))]
            if self.bad():
                pads[0] = kh
            attrs["pads"] = pads
        else:
            attrs["auto_pad"] = mode
        if d(st.booleans()) and not _drops_window(shape, (kh, kw), attrs):
            attrs["ceil_mode"] = 1
        if op == "AveragePool" and d(st.booleans()):
            attrs["count_include_pad"] = 1
        y = self.node(op, [t], **attrs)[0]
        return y, _pool_shape(shape, (kh, kw), attrs)

    def _MaxPool(self, t, shape):
        return self._pool("MaxPool", t, shape)

    def _AveragePool(self, t, shape):
        return self._pool("AveragePool", t, shape)

    def _GlobalAveragePool(self, t, shape):
        return self.node("GlobalAveragePool", [t])[0], shape[:2] + (1, 1)

    def _Concat(self, t, shape):
        d = self.draw
        r = len(shape)
        axis = d(st.integers(-r, r - 1))
        if self.bad():
            axis = r
        other = self.node("Relu", [t])[0]
        self.shapes[other] = shape
        out = list(shape)
        out[axis % r] *= 2
        return self.node("Concat", [t, other], axis=axis)[0], tuple(out)

    def _Add(self, t, shape):
        other = self.node("Relu", [t])[0] if self.draw(st.booleans()) else t
        return self.node("Add", [t, other])[0], shape

    def _Flatten(self, t, shape):
        d = self.draw
        attrs = {}
        if d(st.booleans()):
            attrs["axis"] = d(st.sampled_from([1, 1, 1 - len(shape)] + ([len(shape) + 1] if self.bad() else [])))
        return self.node("Flatten", [t], **attrs)[0], (shape[0], int(np.prod(shape[1:])))

    def _Reshape(self, t, shape):
        d = self.draw
        k = int(np.prod(shape[1:]))
        target = d(st.sampled_from([[1, -1], [0, -1], [-1, k]] + ([[1, k]] if shape[0] == 1 else [])))
        if self.bad():
            target = [1, k + 1]
        name = self.name("reshape")
        s = self.const(f"{name}_shape", np.array(target, np.int64))
        n = shape[0]
        return self.node("Reshape", [t, s], name=name)[0], (1, n * k) if target == [1, -1] else (n, k)

    def _flat(self, t, shape):
        if len(shape) == 2:
            return t, shape
        y = self.node("Flatten", [t])[0]
        self.shapes[y] = (shape[0], int(np.prod(shape[1:])))
        return y, self.shapes[y]

    def _Gemm(self, t, shape):
        d = self.draw
        t, (n, k) = self._flat(t, shape)
        m = d(st.integers(1, 12))
        name = self.name("gemm")
        trans = d(st.booleans())
        b_shape = [m, k] if trans else [k, m]
        if self.bad():
            b_shape[0] += 1
        attrs = {"transB": 1} if trans else {}
        if d(st.booleans()):
            attrs["alpha"] = d(st.floats(0.25, 2.0))
            attrs["beta"] = d(st.floats(0.25, 2.0))
        ins = [t, self.weights(f"{name}_B", b_shape, 1.0 / np.sqrt(k))]
        c_kind = d(st.sampled_from(["none", "m", "1m", "scalar"]))
        if c_kind != "none":
            cs = {"m": [m], "1m": [1, m], "scalar": []}[c_kind]
            ins.append(self.weights(f"{name}_C", cs, 0.1))
        return self.node("Gemm", ins, name=name, **attrs)[0], (n, m)

    def _MatMul(self, t, shape):
        d = self.draw
        t, (n, k) = self._flat(t, shape)
        m = d(st.integers(1, 12))
        name = self.name("matmul")
        (y,) = self.node("MatMul", [t, self.weights(f"{name}_B", [k, m], 1.0 / np.sqrt(k))], name=name)
        if d(st.booleans()):
            y = self.node("Add", [y, self.weights(f"{name}_bias", [m], 0.1)])[0]
        return y, (n, m)

    def _Dropout(self, t, shape):
        d = self.draw
        name = self.name("dropout")
        ins = [t]
        if self.opset >= 12 and d(st.booleans()):
            ins.append(self.const(f"{name}_ratio", np.array(d(st.sampled_from([0.0, 0.5])), np.float32)))
            if d(st.booleans()):
                ins.append(self.const(f"{name}_mode", np.array(self.bad(0.2), np.bool_)))
        n_out = 2 if d(st.booleans()) else 1
        outs = self.node("Dropout", ins, n_out=n_out, name=name)
        if n_out == 2 and self.bad(0.2):
            self.notes.append("mask used")
            y = self.node("Add", [outs[0], outs[1]])[0]  # reads the mask (bool: invalid for Add too)
            return y, shape
        return outs[0], shape

    def _Identity(self, t, shape):
        if t == "x":  # a model whose output is its input is refused (see the import tests)
            return self._Relu(t, shape)
        return self.node("Identity", [t])[0], shape


def _drops_window(shape, kernel, attrs) -> bool:
    """Whether ceil mode drops a last window that would start in the end padding: onnxruntime
    does, but the ONNX shape inference it runs first does not, and then refuses a model
    whose later nodes see the shape the kernel makes (the pool tests cover the rule)."""
    with_ceil = _pool_shape(shape, kernel, {**attrs, "ceil_mode": 1}, drop=False)
    return with_ceil != _pool_shape(shape, kernel, {**attrs, "ceil_mode": 1})


def _same_pads_ok(sizes, kernel, strides, dilations) -> bool:
    """Whether auto_pad SAME pads are >= 0: onnxruntime refuses the negative ones the
    spec's formula gives when the stride exceeds the window (coinfer clamps them to 0,
    checked against the reference in the import tests)."""
    return all((-(-n // s) - 1) * s + d * (k - 1) + 1 - n >= 0
               for n, k, s, d in zip(sizes, kernel, strides, dilations))


def _conv_shape(shape, oc, k, attrs):
    n, c, h, w = shape
    s = attrs.get("strides", [1, 1])
    dl = attrs.get("dilations", [1, 1])
    mode = attrs.get("auto_pad", "NOTSET")
    out = [n, oc]
    for i, size in enumerate((h, w)):
        ek = dl[i] * (k[i] - 1) + 1
        if mode in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // s[i]))
        else:
            p = attrs.get("pads", [0, 0, 0, 0])
            total = size + (p[i] + p[i + 2] if mode == "NOTSET" else 0)
            out.append((total - ek) // s[i] + 1)
    return tuple(out)


def _pool_shape(shape, k, attrs, drop: bool = True):
    n, c, h, w = shape
    s = attrs.get("strides", [1, 1])
    mode = attrs.get("auto_pad", "NOTSET")
    out = [n, c]
    for i, size in enumerate((h, w)):
        if mode in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // s[i]))
            continue
        p = attrs.get("pads", [0, 0, 0, 0]) if mode == "NOTSET" else [0, 0, 0, 0]
        total = size + p[i] + p[i + 2] - k[i]
        o = (-(-total // s[i]) if attrs.get("ceil_mode") else total // s[i]) + 1
        if drop and attrs.get("ceil_mode") and (o - 1) * s[i] >= size + p[i]:
            o -= 1
        out.append(o)
    return tuple(out)


@st.composite
def models(draw) -> Case:
    """A random model (see the module docstring)."""
    opset = draw(st.integers(11, 21))
    b = _Builder(draw, opset)
    rank4 = draw(st.floats(0, 1)) < 0.85
    n = draw(st.sampled_from([1, 1, 1, 2]))
    shape = (n, draw(st.integers(1, 8)), draw(st.integers(1, 12)), draw(st.integers(1, 12))) if rank4 else \
        (n, draw(st.integers(1, 16)))
    b.shapes["x"] = shape
    t = "x"
    for _ in range(draw(st.integers(1, 6))):
        if any(d < 1 for d in b.shapes[t]):
            break
        t = b.step(t)
    outputs = [t]
    if draw(st.floats(0, 1)) < 0.1 and len(b.shapes) > 2:
        outputs.append(draw(st.sampled_from(sorted(k for k in b.shapes if k not in ("x", t)))))
    declared = (("N",) + shape[1:]) if n == 1 and draw(st.booleans()) else shape  # a symbolic batch is 1
    g = helper.make_graph(
        b.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, declared)] + b.extra_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    x = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape).astype(np.float32)
    names = {n.name for n in b.nodes if n.name} | {f"{n.op_type.lower()}_{i}" for i, n in enumerate(b.nodes)}
    names |= {o for n in b.nodes for o in n.output} | {"x"} | {i.name for i in b.extra_inputs}
    return Case(model, x, names, [f"opset {opset}", f"input {shape}"] + b.notes + (["broken"] if b.broken else []))


def random_costs(graph, seed: int) -> TableCosts:
    """Hand-made costs that vary the codl plan: per-op processor speeds and sharing costs."""
    rng = np.random.default_rng(seed)
    speed = {k: rng.uniform(0.3, 3.0) for k in ("cpu", "gpu", "gpu_buffer")}
    full = {op.name: {k: 1e-5 + graph.flops(op) * 1e-10 * v * rng.uniform(0.5, 2.0) for k, v in speed.items()}
            for op in graph.ops}
    return TableCosts(full, sync_s=10 ** rng.uniform(-7, -4), transform_per_byte=10 ** rng.uniform(-12, -9),
                      map_per_byte=10 ** rng.uniform(-12, -10))


def verdict(case: Case, soc, seed: int = 0) -> str:
    """``"match"`` or ``"error"``; AssertionError for anything else (see the module docstring)."""
    try:
        g = gonnx.load(case.model)
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert any(n and n in msg for n in case.names), f"error names no node or tensor: {msg}"
        return "error"
    try:
        want = run_model(case.model, case.x)
    except Exception as e:  # noqa: BLE001 - onnxruntime's refusal comes in several types
        raise AssertionError(f"coinfer imported a model onnxruntime refuses: {type(e).__name__}: {e}") from None
    want = np.asarray(want)
    prep = prepare(g)
    for plan in (plan_single(g, "cpu", view=prep.view), plan_codl(g, random_costs(g, seed), prepared=prep)):
        with Executor(g, plan, soc, prepared=prep) as ex:
            y = ex.run(case.x)
        y = y[g.outputs[0]] if isinstance(y, dict) else y
        assert_close(y, want, f"{plan.strategy} {plan.describe()}")
    return "match"
