"""The kernel study: benchmark layers, their onnxruntime peer, and a timer.

The 14 conv layers come from AlexNet, NIN, SqueezeNet 1.0 and VGG-16 (the
models of Guo 2018 plus VGG), then AlexNet's pool1, fc6 and fc8, then one or
more layers of every other op (:data:`OP_LAYERS`): max and average pooling,
global average pooling, MobileNet v1's depthwise convs (stride 1 and 2),
AlexNet's LRN, softmax over 1000 logits, and ReLU, Clip (ReLU6), Add and
Concat.  A layer is read off the op of that name in the model zoo
(:mod:`coinfer.graph.zoo`) as a flat description
(:func:`coinfer.graph.costs.sampling.describe`), without its fused ReLU, or
written out as one where the zoo lacks the op (Inception-v3's average pool, a
ReLU of its own); it runs as a one-op graph
(:func:`coinfer.graph.costs.sampling.build`) through the op table's kernel call
(:mod:`coinfer.graph.ops`, the executor's path) and, exported to ONNX
(:mod:`coinfer.graph.onnx_export`), on onnxruntime with one thread,
interleaved in one process, so the ratio is measured under the same machine
state.

What limits a figure is read against :func:`peak`: the FMA peak of one core for
the instruction set the kernels were compiled for (``coinfer.kernels.isa()``),
FMA units x lanes x 2 x the measured clock.  A conv layer's share of it is
:func:`peak_share`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ...kernels import LAYOUTS
from ...kernels import buffer as kb
from ...kernels import image as ki
from ...kernels import layout, target
from ...kernels.layout import to_image
from .. import ops
from ..costs import sampling
from ..costs.measure import clocked, loops_for, measure, measure_interleaved
from ..ops import AVGPOOL, CONCAT, CONV, FC, FUSED_RELU, LRN, MAXPOOL, RELU, SOFTMAX

#: Work the study counts beyond the op table's FLOPs rule, per output element: softmax 4
#: (max, subtract and exp, sum, scale; the table counts 3) and concat 1 (a copy; the table
#: counts none), so that their GFLOP/s read as elements handled per second.
_WORK_PER_OUTPUT = {SOFTMAX: 4, CONCAT: 1}
#: The names :func:`make_inputs` gives a layer's first and second input.
_INPUTS = ("x", "x2")


@dataclass(frozen=True)
class Layer:
    """One benchmark layer: a label and the flat description of its op
    (:func:`coinfer.graph.costs.sampling.describe`).

    ``kind`` is the op type (``coinfer.graph.ops.CONV``, ...), or
    ``coinfer.graph.ops.FAMILY_DEPTHWISE`` for a conv with one filter per channel.
    ``c, h, w`` are the input's channels (each input's, for concat) and size, ``k`` the
    output channels, ``r`` the window side (the size, for LRN), ``stride`` and ``pad``
    the window's; ``fc_in``/``fc_out`` an FC's (or a softmax's) input and output width.
    """

    name: str
    desc: dict = field(hash=False)

    @property
    def kind(self) -> str:
        return ops.FAMILY_DEPTHWISE if sampling.depthwise(self.desc) else self.desc["type"]

    @property
    def c(self) -> int:
        return self.desc["c"] // (self.desc["inputs"] if self.desc["type"] == CONCAT else 1)

    h = property(lambda self: self.desc["h"])
    w = property(lambda self: self.desc["w"])
    k = property(lambda self: self.desc["oc"])
    stride = property(lambda self: self.desc["sh"])
    pad = property(lambda self: self.desc["pt"])
    fc_in = property(lambda self: self.desc["c"])
    fc_out = property(lambda self: self.desc["oc"])

    @property
    def r(self) -> int:
        return self.desc["size"] if self.desc["type"] == LRN else self.desc["kh"]

    def out_shape(self) -> tuple:
        d = self.desc
        return (d["n"], d["oc"]) if sampling.flat(d) else (d["n"], d["oc"], d["oh"], d["ow"])

    def flops(self) -> float:
        """The op table's FLOPs (2*MACs for conv and FC, one per window element for pooling,
        ...; :mod:`coinfer.graph.ops`), but for softmax and concat (:data:`_WORK_PER_OUTPUT`)."""
        per = _WORK_PER_OUTPUT.get(self.desc["type"])
        return float(math.prod(self.out_shape()) * per) if per else float(sampling.flops(self.desc))

    def describe(self) -> str:
        t, kind = self.desc["type"], self.kind
        shape = f"{self.c}x{self.h}x{self.w}"
        if t == FC:
            return f"{self.fc_in}->{self.fc_out}"
        if t == SOFTMAX:
            return f"{self.fc_out} logits"
        if kind in (CONV, MAXPOOL):
            return f"{shape} k{self.k} {self.r}x{self.r}/{self.stride} p{self.pad}"
        if kind in (AVGPOOL, ops.FAMILY_DEPTHWISE):
            return f"{shape} {self.r}x{self.r}/{self.stride} p{self.pad}"
        if t == LRN:
            return f"{shape} size {self.r}"
        if t == CONCAT:
            return f"{self.desc['inputs']} x {shape}"
        return shape

    def graph(self, inputs: dict | None = None, seed: int = 0):
        """The layer as a one-op :class:`~coinfer.graph.ir.Graph`, with the weights ``w``/``b``
        of ``inputs`` (:func:`make_inputs`) if it holds them, else seeded ones."""
        params = {"w": inputs["w"], "b": inputs.get("b")} if inputs and "w" in inputs else None
        return sampling.build(self.desc, seed=seed, params=params)


@lru_cache(maxsize=None)
def _zoo_ops(model: str, input_size) -> dict:
    """{op name: description} of a weightless zoo model."""
    from .. import zoo
    from ..coexec.view import view_of

    return {op.name: sampling.describe(op) for op in view_of(zoo.build(model, input_size=input_size,
                                                                         weights=False)).ops}


def _zoo(name: str, model: str, op: str, input_size=None) -> Layer:
    """Zoo ``model``'s op ``op`` (at ``input_size``, default the model's own) alone, without a
    fused ReLU."""
    return Layer(name, {**_zoo_ops(model, input_size)[op], FUSED_RELU: 0})


def _one_op(name: str, t: str, **fields) -> Layer:
    """A layer the zoo lacks: an op of type ``t`` with the description ``fields``."""
    return Layer(name, sampling.one_op(t, **fields))


LAYERS: list[Layer] = [
    _zoo("alexnet.conv1", "alexnet", "conv1"),
    _zoo("alexnet.conv2", "alexnet", "conv2"),
    _zoo("alexnet.conv3", "alexnet", "conv3"),
    _zoo("alexnet.conv5", "alexnet", "conv5"),
    _zoo("nin.conv1", "nin", "conv1"),
    _zoo("nin.cccp1", "nin", "cccp1"),
    _zoo("nin.conv2", "nin", "conv2"),
    _zoo("squeezenet.conv1", "squeezenet", "conv1", input_size=224),
    _zoo("squeezenet.fire2.squeeze", "squeezenet", "fire2_squeeze1x1"),
    _zoo("squeezenet.fire2.expand3", "squeezenet", "fire2_expand3x3"),
    _zoo("squeezenet.fire9.expand1", "squeezenet", "fire9_expand1x1"),
    _zoo("vgg16.conv1_2", "vgg16", "conv1_2"),
    _zoo("vgg16.conv3_1", "vgg16", "conv3_1"),
    _zoo("vgg16.conv5_1", "vgg16", "conv5_1"),
    _zoo("alexnet.pool1", "alexnet", "pool1"),
    _zoo("alexnet.fc6", "alexnet", "fc6"),
    _zoo("alexnet.fc8", "alexnet", "fc8"),
]

CONV_LAYERS = [lay for lay in LAYERS if lay.kind == CONV]

# --- the other ops: pools, depthwise conv, LRN, softmax and the element-wise ops ---------------

OP_LAYERS: list[Layer] = [
    _zoo("vgg16.pool1", "vgg16", "pool1"),
    _zoo("resnet18.pool1", "resnet18", "pool1"),
    # Inception-v3's mixed-block pool branch: 3x3/1, pad 1 (excluded from the divisor).
    _one_op("inception3.mixed5b.avgpool", AVGPOOL, c=192, h=35, w=35, kh=3, kw=3, pt=1, pl=1, pb=1, pr=1),
    _zoo("squeezenet.pool10", "squeezenet", "pool_global"),
    _zoo("mobilenet_v1.pool", "mobilenet_v1", "pool_global"),
    _zoo("mobilenet_v1.conv2_dw", "mobilenet_v1", "conv2_dw"),
    _zoo("mobilenet_v1.conv3_dw", "mobilenet_v1", "conv3_dw"),
    _zoo("mobilenet_v1.conv8_dw", "mobilenet_v1", "conv8_dw"),
    _zoo("mobilenet_v1.conv13_dw", "mobilenet_v1", "conv13_dw"),
    _zoo("alexnet.norm1", "alexnet", "norm1"),
    _zoo("alexnet.prob", "alexnet", "prob"),
    # VGG-16's first ReLU, which the zoo fuses into conv1_1.
    _one_op("vgg16.relu1_1", RELU, c=64, h=224, w=224),
    _zoo("mobilenet_v1.conv2_dw_relu6", "mobilenet_v1", "conv2_dw_relu6"),
    _zoo("resnet18.layer1_0_add", "resnet18", "layer1_0_add"),
    _zoo("squeezenet.fire2_concat", "squeezenet", "fire2_concat"),
]
LAYERS += OP_LAYERS


def make_inputs(layer: Layer, seed: int = 0) -> dict:
    """Float32 inputs in buffer layout, batch 1: ``x`` (and ``x2``, add's and concat's second
    input), and the weights ``w``/``b`` of the layer's one-op graph where it has them
    (seeded; softmax's logits are drawn with std 4, a classifier's spread)."""
    g = layer.graph(seed=seed)
    op = g.ops[0]
    rng = np.random.default_rng(seed)
    std = np.float32(4.0 if op.type == SOFTMAX else 1.0)
    out = {name: rng.standard_normal(g.shape(t), dtype=np.float32) * std for name, t in zip(_INPUTS, op.inputs)}
    out.update({k: v for k, v in op.params.items() if v is not None})
    return out


def ort_runner(layer: Layer, inputs: dict):
    """A callable running ``layer`` in onnxruntime with one intra- and inter-op thread."""
    import onnxruntime as ort

    from ..onnx_export import to_model

    g = layer.graph(inputs)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(to_model(g).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {t: inputs[name] for t, name in zip(g.inputs, _INPUTS)}
    return lambda: sess.run(None, feed)[0]


def ours_runner(layer: Layer, inputs: dict, layout: str = "buffer"):
    """A callable running ``layer`` on coinfer's kernels into a preallocated output, which it
    returns: the op table's call (:mod:`coinfer.graph.ops`) with the weights prepared once for
    the layout, as the executor runs it.

    For ``layout="image"`` inputs and weights are converted once, outside the call;
    the callable returns the image output.
    """
    from ..coexec import lower

    if layout not in LAYOUTS:
        raise ValueError(f"ours_runner: layout must be 'buffer' or 'image', got {layout!r}")
    g = layer.graph(inputs)
    op = g.ops[0]
    weights = lower.prepare(g, (layout,)).weights[op.name][layout]
    xs = [inputs[name] for name in _INPUTS[:len(op.inputs)]]
    if layout == "image":
        xs = [to_image(ops.as4d(x)) for x in xs]
        out = np.zeros(ops.image_shape(g.shape(op.output)), np.float32)
    else:
        out = np.empty(g.shape(op.output), np.float32)
    call = ops.SPECS[op.type].kernels[layout].call

    def run():
        call(g, op, weights, xs, out, {})
        return out

    return run


def time_interleaved(runners: dict, min_time: float = 0.1, rounds: int = 5) -> dict:
    """Median seconds per call of each runner (name -> callable), timed in alternating rounds.

    Each runner is called in loops of at least ``min_time`` seconds (the loop count is taken
    from one timed call after a warm-up); the ``rounds`` rounds are
    :func:`coinfer.graph.costs.measure.measure_interleaved`'s, so every runner sees the same
    machine state and none always follows the same other one.
    """
    names = list(runners)
    for fn in runners.values():
        fn()  # compiles, page faults
    samples = [clocked(runners[n], loops_for(runners[n], min_time)) for n in names]
    timings = measure_interleaved(samples, rounds=rounds, warmup=0)
    return {n: t.median for n, t in zip(names, timings)}


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
    of the whole kernel set (see :func:`cold_compile`).
    """
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    x, x2 = r(1, 8, 9, 40), r(1, 8, 9, 40)
    # Buffer conv: 1x1 read in place, a window over planes, depthwise; weights plain and packed.
    convs = [(r(6, 8, 1, 1), {}), (r(6, 8, 3, 3), {"padding": 1}), (r(8, 1, 3, 3), {"padding": 1, "groups": 8})]
    for w, kw in convs:
        kb.conv2d(x, w, relu=True, **kw)
    kb.conv2d(x, convs[2][0], padding=1, groups=8, stride=2)  # depthwise 3x3 loops are per stride
    kb.conv2d(x, kb.prepack_weights(convs[1][0]), padding=1, relu=True)
    xi, xi2 = layout.to_image(x), layout.to_image(x2)
    for w, kw in convs:
        if kw.get("groups"):
            ki.conv2d(xi, layout.depthwise_to_image(w), relu=True, **kw)
            ki.conv2d(xi, layout.depthwise_to_image(w), relu=True, stride=2, **kw)
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


def cold_compile(env: dict | None = None) -> dict:
    """Seconds of a fresh process that imports the kernels and calls every one once
    (:func:`call_every_kernel`) with an empty Numba cache: ``{"wall_s", "cpu_s"}``, the wall
    time (one :func:`coinfer.graph.costs.measure.measure` sample) and the process's user plus
    system CPU time, which other work on the machine does not lengthen.  ``env`` adds
    variables, e.g. ``{"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}`` for the AVX2 path."""
    import os
    import resource
    import subprocess
    import sys
    import tempfile

    code = "from coinfer.graph.studies.kernels import call_every_kernel; call_every_kernel()"
    with tempfile.TemporaryDirectory() as cache:
        full = {**os.environ, **(env or {}), "NUMBA_CACHE_DIR": cache}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = measure(clocked(lambda: subprocess.run([sys.executable, "-c", code], env=full, check=True)),
                       repeats=1, warmup=0).min
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}
