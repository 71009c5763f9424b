"""The kernel study: benchmark layers, their onnxruntime peer, and a timer.

The 14 conv layers come from AlexNet, NIN, SqueezeNet 1.0 and VGG-16 (the
models of Guo 2018 plus VGG), then AlexNet's pool1, fc6 and fc8, then one or
more layers of every other op (:data:`OP_LAYERS`): max and average pooling,
global average pooling, MobileNet v1's depthwise convs (stride 1 and 2),
AlexNet's LRN, softmax over 1000 logits, and ReLU, Clip (ReLU6), Add and
Concat.  Each layer is timed on coinfer's kernels and on onnxruntime with one
thread, interleaved in one process, so the ratio is measured under the same
machine state.

What limits a figure is read against :func:`peak`: the FMA peak of one core for
the instruction set the kernels were compiled for (``coinfer.kernels.isa()``),
FMA units x lanes x 2 x the measured clock.  A conv layer's share of it is
:func:`peak_share`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...kernels import buffer as kb
from ...kernels import image as ki
from ...kernels import layout, target


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "conv" | "maxpool" | "fc", or one of OP_KINDS
    c: int = 0
    h: int = 0
    w: int = 0
    k: int = 0
    r: int = 0
    stride: int = 1
    pad: int = 0
    fc_in: int = 0
    fc_out: int = 0

    def out_shape(self) -> tuple:
        if self.kind == "fc":
            return (1, self.fc_out)
        if self.kind in OP_KINDS:
            return _op_out_shape(self)
        ho = (self.h + 2 * self.pad - self.r) // self.stride + 1
        wo = (self.w + 2 * self.pad - self.r) // self.stride + 1
        return (1, self.k, ho, wo)

    def flops(self) -> float:
        """2*MACs for conv and FC; one op per window element for pooling; see :func:`_op_flops`."""
        if self.kind == "fc":
            return 2.0 * self.fc_in * self.fc_out
        if self.kind in OP_KINDS:
            return _op_flops(self)
        _, k, ho, wo = self.out_shape()
        if self.kind == "conv":
            return 2.0 * k * ho * wo * self.c * self.r * self.r
        return float(k * ho * wo * self.r * self.r)

    def describe(self) -> str:
        if self.kind == "fc":
            return f"{self.fc_in}->{self.fc_out}"
        if self.kind in OP_KINDS:
            return _op_describe(self)
        return f"{self.c}x{self.h}x{self.w} k{self.k} {self.r}x{self.r}/{self.stride} p{self.pad}"


def _conv(name, c, h, w, k, r, s, p):
    return Layer(name, "conv", c, h, w, k, r, s, p)


LAYERS: list[Layer] = [
    _conv("alexnet.conv1", 3, 227, 227, 96, 11, 4, 0),
    _conv("alexnet.conv2", 96, 27, 27, 256, 5, 1, 2),
    _conv("alexnet.conv3", 256, 13, 13, 384, 3, 1, 1),
    _conv("alexnet.conv5", 384, 13, 13, 256, 3, 1, 1),
    _conv("nin.conv1", 3, 224, 224, 96, 11, 4, 0),
    _conv("nin.cccp1", 96, 54, 54, 96, 1, 1, 0),
    _conv("nin.conv2", 96, 27, 27, 256, 5, 1, 2),
    _conv("squeezenet.conv1", 3, 224, 224, 96, 7, 2, 0),
    _conv("squeezenet.fire2.squeeze", 96, 55, 55, 16, 1, 1, 0),
    _conv("squeezenet.fire2.expand3", 16, 55, 55, 64, 3, 1, 1),
    _conv("squeezenet.fire9.expand1", 64, 13, 13, 256, 1, 1, 0),
    _conv("vgg16.conv1_2", 64, 224, 224, 64, 3, 1, 1),
    _conv("vgg16.conv3_1", 128, 56, 56, 256, 3, 1, 1),
    _conv("vgg16.conv5_1", 512, 14, 14, 512, 3, 1, 1),
    Layer("alexnet.pool1", "maxpool", 96, 55, 55, 96, 3, 2, 0),
    Layer("alexnet.fc6", "fc", fc_in=9216, fc_out=4096),
    Layer("alexnet.fc8", "fc", fc_in=4096, fc_out=1000),
]

CONV_LAYERS = [lay for lay in LAYERS if lay.kind == "conv"]

# --- the other ops: pools, depthwise conv, LRN, softmax and the element-wise ops ---------------

#: Layer kinds beyond conv, max pool and FC, each timed like the rest against onnxruntime.
OP_KINDS = ("avgpool", "globalavgpool", "depthwise", "lrn", "softmax", "relu", "clip", "add", "concat")

OP_LAYERS: list[Layer] = [
    Layer("vgg16.pool1", "maxpool", 64, 224, 224, 64, 2, 2, 0),
    Layer("resnet18.pool1", "maxpool", 64, 112, 112, 64, 3, 2, 1),
    # Inception-v3's mixed-block pool branch: 3x3/1, pad 1 (excluded from the divisor).
    Layer("inception3.mixed5b.avgpool", "avgpool", 192, 35, 35, 192, 3, 1, 1),
    Layer("squeezenet.pool10", "globalavgpool", 1000, 13, 13, 1000),
    Layer("mobilenet_v1.pool", "globalavgpool", 1024, 7, 7, 1024),
    Layer("mobilenet_v1.conv2_dw", "depthwise", 32, 112, 112, 32, 3, 1, 1),
    Layer("mobilenet_v1.conv3_dw", "depthwise", 64, 112, 112, 64, 3, 2, 1),
    Layer("mobilenet_v1.conv8_dw", "depthwise", 512, 14, 14, 512, 3, 1, 1),
    Layer("mobilenet_v1.conv13_dw", "depthwise", 512, 14, 14, 512, 3, 2, 1),
    Layer("alexnet.norm1", "lrn", 96, 55, 55, 96, 5),  # r: the LRN size
    Layer("alexnet.prob", "softmax", fc_out=1000),
    Layer("vgg16.relu1_1", "relu", 64, 224, 224, 64),
    Layer("mobilenet_v1.conv2_dw_relu6", "clip", 32, 112, 112, 32),
    Layer("resnet18.layer1_0_add", "add", 64, 56, 56, 64),
    Layer("squeezenet.fire2_concat", "concat", 64, 55, 55, 128),  # two inputs of c channels
]
LAYERS += OP_LAYERS


def _op_out_shape(lay: Layer) -> tuple:
    if lay.kind in ("avgpool", "depthwise"):
        ho = (lay.h + 2 * lay.pad - lay.r) // lay.stride + 1
        wo = (lay.w + 2 * lay.pad - lay.r) // lay.stride + 1
        return (1, lay.k, ho, wo)
    if lay.kind == "globalavgpool":
        return (1, lay.c, 1, 1)
    if lay.kind == "softmax":
        return (1, lay.fc_out)
    if lay.kind == "concat":
        return (1, 2 * lay.c, lay.h, lay.w)
    return (1, lay.c, lay.h, lay.w)


def _op_flops(lay: Layer) -> float:
    """Work counted per op: 2*MACs (depthwise); one op per window element (pools); per element
    2*size + 3 (LRN), 4 (softmax: max, subtract-exp, sum, scale), 1 (element-wise, concat)."""
    n = float(np.prod(_op_out_shape(lay)))
    if lay.kind == "depthwise":
        return 2.0 * n * lay.r * lay.r
    if lay.kind == "avgpool":
        return n * lay.r * lay.r
    if lay.kind == "globalavgpool":
        return float(lay.c * lay.h * lay.w)
    if lay.kind == "lrn":
        return n * (2 * lay.r + 3)
    if lay.kind == "softmax":
        return 4.0 * n
    return n


def _op_describe(lay: Layer) -> str:
    if lay.kind == "softmax":
        return f"{lay.fc_out} logits"
    if lay.kind in ("avgpool", "depthwise"):
        return f"{lay.c}x{lay.h}x{lay.w} {lay.r}x{lay.r}/{lay.stride} p{lay.pad}"
    if lay.kind == "lrn":
        return f"{lay.c}x{lay.h}x{lay.w} size {lay.r}"
    if lay.kind == "concat":
        return f"2 x {lay.c}x{lay.h}x{lay.w}"
    return f"{lay.c}x{lay.h}x{lay.w}"


def _op_inputs(lay: Layer, rng) -> dict:
    if lay.kind == "softmax":
        return {"x": 4 * rng.standard_normal((1, lay.fc_out), dtype=np.float32)}
    x = rng.standard_normal((1, lay.c, lay.h, lay.w), dtype=np.float32)
    if lay.kind in ("add", "concat"):
        return {"x": x, "x2": rng.standard_normal(x.shape, dtype=np.float32)}
    if lay.kind == "depthwise":
        w = rng.standard_normal((lay.k, 1, lay.r, lay.r), dtype=np.float32) * np.float32(1.0 / lay.r)
        return {"x": x, "w": w, "b": rng.standard_normal(lay.k, dtype=np.float32) * np.float32(0.1)}
    return {"x": x}


def _op_node(lay: Layer, inputs: dict):
    """(ONNX node, initializers, opset) of an OP_LAYERS layer."""
    from onnx import helper, numpy_helper

    names = ["x", "x2"] if "x2" in inputs else ["x"]
    if lay.kind == "avgpool":
        return helper.make_node("AveragePool", names, ["y"], kernel_shape=[lay.r, lay.r],
                                strides=[lay.stride] * 2, pads=[lay.pad] * 4), [], 17
    if lay.kind == "globalavgpool":
        return helper.make_node("GlobalAveragePool", names, ["y"]), [], 17
    if lay.kind == "depthwise":
        inits = [numpy_helper.from_array(inputs["w"], "w"), numpy_helper.from_array(inputs["b"], "b")]
        return helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[lay.r, lay.r],
                                strides=[lay.stride] * 2, pads=[lay.pad] * 4, group=lay.c), inits, 17
    if lay.kind == "lrn":
        return helper.make_node("LRN", names, ["y"], size=lay.r, alpha=1e-4, beta=0.75, bias=1.0), [], 17
    if lay.kind == "softmax":
        return helper.make_node("Softmax", names, ["y"], axis=1), [], 17
    if lay.kind == "relu":
        return helper.make_node("Relu", names, ["y"]), [], 17
    if lay.kind == "clip":
        inits = [numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(6.0), "hi")]
        return helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), inits, 17
    if lay.kind == "add":
        return helper.make_node("Add", names, ["y"]), [], 17
    return helper.make_node("Concat", names, ["y"], axis=1), [], 17


def _op_buffer_runner(lay: Layer, inputs: dict):
    x = inputs["x"]
    out = np.empty(lay.out_shape(), np.float32)
    if lay.kind == "avgpool":
        return lambda: kb.avg_pool2d(x, lay.r, stride=lay.stride, padding=lay.pad, out=out)
    if lay.kind == "globalavgpool":
        return lambda: kb.global_avg_pool(x, out=out)
    if lay.kind == "depthwise":
        w, b = inputs["w"], inputs["b"]
        return lambda: kb.conv2d(x, w, b, stride=lay.stride, padding=lay.pad, groups=lay.c, out=out)
    if lay.kind == "lrn":
        return lambda: kb.lrn(x, size=lay.r, alpha=1e-4, beta=0.75, k=1.0, out=out)
    if lay.kind == "softmax":
        return lambda: kb.softmax(x, axis=1, out=out)
    if lay.kind == "relu":
        return lambda: kb.relu(x, out=out)
    if lay.kind == "clip":
        return lambda: kb.clip(x, min=0.0, max=6.0, out=out)
    x2 = inputs["x2"]
    if lay.kind == "add":
        return lambda: kb.add(x, x2, out=out)
    return lambda: kb.concat([x, x2], axis=1, out=out)


def _op_image_runner(lay: Layer, inputs: dict):
    x = inputs["x"]
    if lay.kind == "softmax":
        xi = layout.to_image(x.reshape(1, lay.fc_out, 1, 1))
        out = np.zeros(xi.shape, np.float32)
        return lambda: ki.softmax(xi, lay.fc_out, out)
    xi = layout.to_image(x)
    out = np.zeros(layout.image_shape(lay.out_shape()), np.float32)
    if lay.kind == "avgpool":
        return lambda: ki.avg_pool2d(xi, lay.r, stride=lay.stride, padding=lay.pad, out=out)
    if lay.kind == "globalavgpool":
        return lambda: ki.global_avg_pool(xi, out=out)
    if lay.kind == "depthwise":
        wi, b = layout.depthwise_to_image(inputs["w"]), inputs["b"]
        return lambda: ki.conv2d(xi, wi, b, stride=lay.stride, padding=lay.pad, groups=lay.c, out=out)
    if lay.kind == "lrn":
        return lambda: ki.lrn(xi, lay.c, size=lay.r, alpha=1e-4, beta=0.75, k=1.0, out=out)
    if lay.kind == "relu":
        return lambda: ki.relu(xi, out=out)
    if lay.kind == "clip":
        return lambda: ki.clip(xi, min=0.0, max=6.0, out=out)
    xi2 = layout.to_image(inputs["x2"])
    if lay.kind == "add":
        return lambda: ki.add(xi, xi2, out=out)
    return lambda: ki.concat([xi, xi2], [lay.c, lay.c], out)


def make_inputs(layer: Layer, seed: int = 0) -> dict:
    """Float32 inputs in buffer layout, batch 1: x, and w/b where the layer has them."""
    rng = np.random.default_rng(seed)
    if layer.kind in OP_KINDS:
        return _op_inputs(layer, rng)
    if layer.kind == "fc":
        return {
            "x": rng.standard_normal((1, layer.fc_in), dtype=np.float32),
            "w": (rng.standard_normal((layer.fc_out, layer.fc_in), dtype=np.float32) * np.sqrt(2.0 / layer.fc_in)).astype(np.float32),
            "b": rng.standard_normal(layer.fc_out, dtype=np.float32) * np.float32(0.1),
        }
    x = rng.standard_normal((1, layer.c, layer.h, layer.w), dtype=np.float32)
    if layer.kind == "maxpool":
        return {"x": x}
    fan_in = layer.c * layer.r * layer.r
    w = (rng.standard_normal((layer.k, layer.c, layer.r, layer.r), dtype=np.float32) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    b = rng.standard_normal(layer.k, dtype=np.float32) * np.float32(0.1)
    return {"x": x, "w": w, "b": b}


def _onnx_model(layer: Layer, inputs: dict):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(inputs["x"].shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(layer.out_shape()))
    inits = []
    if layer.kind in OP_KINDS:
        node, inits, opset = _op_node(layer, inputs)
        ins = [x] + ([helper.make_tensor_value_info("x2", TensorProto.FLOAT, list(inputs["x2"].shape))]
                     if "x2" in inputs else [])
        model = helper.make_model(helper.make_graph([node], layer.name, ins, [y], initializer=inits),
                                  opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model
    if layer.kind == "conv":
        inits = [numpy_helper.from_array(inputs["w"], "w"), numpy_helper.from_array(inputs["b"], "b")]
        node = helper.make_node(
            "Conv", ["x", "w", "b"], ["y"], kernel_shape=[layer.r, layer.r],
            strides=[layer.stride] * 2, pads=[layer.pad] * 4,
        )
    elif layer.kind == "maxpool":
        node = helper.make_node(
            "MaxPool", ["x"], ["y"], kernel_shape=[layer.r, layer.r],
            strides=[layer.stride] * 2, pads=[layer.pad] * 4,
        )
    else:
        inits = [numpy_helper.from_array(inputs["w"], "w"), numpy_helper.from_array(inputs["b"], "b")]
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    graph = helper.make_graph([node], layer.name, [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ort_runner(layer: Layer, inputs: dict):
    """A callable running ``layer`` in onnxruntime with one intra- and inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(
        _onnx_model(layer, inputs).SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    feed = {name: inputs[name] for name in ("x", "x2") if name in inputs}
    return lambda: sess.run(None, feed)[0]


def ours_runner(layer: Layer, inputs: dict, layout: str = "buffer"):
    """A callable running ``layer`` on coinfer's kernels into a preallocated output.

    For ``layout="image"`` inputs and weights are converted once, outside the call;
    the callable returns the image output.
    """
    if layout == "buffer":
        return _buffer_runner(layer, inputs)
    if layout == "image":
        return _image_runner(layer, inputs)
    raise ValueError(f"ours_runner: layout must be 'buffer' or 'image', got {layout!r}")


def _buffer_runner(layer, inputs):
    if layer.kind in OP_KINDS:
        return _op_buffer_runner(layer, inputs)
    x = inputs["x"]
    out = np.empty(layer.out_shape(), np.float32)
    if layer.kind == "conv":
        w, b = kb.prepack_weights(inputs["w"]), inputs["b"]  # once per model, as the executor does
        return lambda: kb.conv2d(x, w, b, stride=layer.stride, padding=layer.pad, out=out)
    if layer.kind == "maxpool":
        return lambda: kb.max_pool2d(x, layer.r, stride=layer.stride, padding=layer.pad, out=out)
    w, b = inputs["w"], inputs["b"]
    return lambda: kb.fully_connected(x, w, b, out=out)


def _image_runner(layer, inputs):
    if layer.kind in OP_KINDS:
        return _op_image_runner(layer, inputs)
    if layer.kind == "fc":
        n, k = inputs["x"].shape
        x_img = layout.to_image(inputs["x"].reshape(n, k, 1, 1))
        w_img = layout.fc_to_image(inputs["w"])
        b = inputs["b"]
        out = np.zeros(layout.image_shape((n, layer.fc_out, 1, 1)), np.float32)
        return lambda: ki.fully_connected(x_img, w_img, b, out=out, out_channels=layer.fc_out)
    x_img = layout.to_image(inputs["x"])
    out = np.zeros(layout.image_shape(layer.out_shape()), np.float32)
    if layer.kind == "conv":
        w_img = ki.prepack_filter(layout.filter_to_image(inputs["w"]))  # once per model, as the executor does
        b = inputs["b"]
        return lambda: ki.conv2d(x_img, w_img, b, stride=layer.stride, padding=layer.pad, out=out, out_channels=layer.k)
    return lambda: ki.max_pool2d(x_img, layer.r, stride=layer.stride, padding=layer.pad, out=out)


def time_call(fn, min_time: float = 0.2, repeat: int = 5) -> float:
    """Median seconds per call over ``repeat`` rounds of at least ``min_time`` each (after a warm-up)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    loops = max(1, int(min_time / one))
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        rounds.append((time.perf_counter() - t0) / loops)
    return float(np.median(rounds))


def geomean(values) -> float:
    v = np.asarray([x for x in values if x and x > 0], np.float64)
    return float(np.exp(np.log(v).mean())) if v.size else float("nan")


def peak(fresh: bool = False) -> dict:
    """The kernels' ISA and this core's FMA peak (``coinfer.kernels.target.peak_gflops``):
    {"isa", "cpu", "fma_units", "lanes", "clock_ghz", "clock_source", "peak_gflops"}.
    ``fresh`` measures the clock now (it drops while other cores are busy)."""
    return target.peak_gflops(fresh)


def peak_share(gflops, p: dict | None = None) -> float | None:
    """``gflops`` as a fraction of the FMA peak ``p`` (default :func:`peak`); None for None."""
    return None if gflops is None else gflops / (p or peak())["peak_gflops"]


def describe_peak(p: dict | None = None) -> str:
    """One line: ISA, FMA units x lanes x 2 x clock = peak, and where the clock came from."""
    p = p or peak()
    return (f"ISA {p['isa']} on {p['cpu']}: FMA peak = {p['fma_units']} FMA/cycle x {p['lanes']} lanes x 2 "
            f"x {p['clock_ghz']:.2f} GHz = {p['peak_gflops']:.1f} GFLOP/s per core; clock {p['clock_source']}")


def call_every_kernel() -> None:
    """Call every op of both kernel sets once on small inputs, through every conv and FC route.

    Run in a fresh process with an empty Numba cache, this is the cold compile
    of the whole kernel set (see :func:`cold_compile_seconds`).
    """
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    x, x2 = r(1, 8, 9, 40), r(1, 8, 9, 40)
    # Buffer conv: 1x1 read in place, a window over planes, depthwise; weights plain and packed.
    convs = [(r(6, 8, 1, 1), {}), (r(6, 8, 3, 3), {"padding": 1}), (r(8, 1, 3, 3), {"padding": 1, "groups": 8})]
    for w, kw in convs:
        kb.conv2d(x, w, relu=True, **kw)
    kb.conv2d(x, kb.prepack_weights(convs[1][0]), padding=1, relu=True)
    xi, xi2 = layout.to_image(x), layout.to_image(x2)
    for w, kw in convs:
        if kw.get("groups"):
            ki.conv2d(xi, layout.depthwise_to_image(w), relu=True, **kw)
        else:
            ki.conv2d(xi, ki.prepack_filter(layout.filter_to_image(w)), relu=True, **kw)
    for n in (1, 3):
        v, w = r(n, 40), r(10, 40)
        kb.fully_connected(v, w, relu=True)
        ki.fully_connected(layout.to_image(v.reshape(n, 40, 1, 1)), layout.fc_to_image(w), relu=True)
    for k, t in ((kb, x), (ki, xi)):
        k.max_pool2d(t, 3, stride=2)
        k.avg_pool2d(t, 3, stride=2, padding=1)
        k.max_pool2d(t, 3, stride=1, padding=1)  # buffers: the stream route
        k.avg_pool2d(t, 3, stride=1, padding=1)
        k.global_avg_pool(t)
        k.relu(t)
        k.add(t, x2 if k is kb else xi2, relu=True)
    kb.clip(x, min=0.0, max=6.0)
    ki.clip(xi, min=0.0, max=6.0, c=8)
    kb.concat([x, x2])
    ki.concat([xi, xi2], [8, 8])
    kb.lrn(x)
    ki.lrn(xi, 8)
    kb.softmax(r(2, 10))
    ki.softmax(layout.to_image(r(2, 10, 1, 1)), 10)
    kb.resize(x, (12, 20))
    kb.resize(x, (4, 10), mode="area")
    ki.softmax(xi, 8, axis=3)  # softmax off the channels (the loop the buffer softmax runs)
    ki.conv2d(xi, layout.depthwise_to_image(r(16, 1, 3, 3)), groups=8, out_channels=16, padding=1)


def cold_compile_seconds(env: dict | None = None) -> float:
    """Wall seconds of a fresh process that imports the kernels and calls every one once
    (:func:`call_every_kernel`) with an empty Numba cache; ``env`` adds variables,
    e.g. ``{"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}`` for the AVX2 path."""
    import os
    import subprocess
    import sys
    import tempfile

    code = "from coinfer.graph.studies.kernels import call_every_kernel; call_every_kernel()"
    with tempfile.TemporaryDirectory() as cache:
        full = {**os.environ, **(env or {}), "NUMBA_CACHE_DIR": cache}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=full, check=True)
        return time.perf_counter() - t0
