"""The op table: one :class:`OpSpec` per IR op type, the only place an op's facts live.

Each spec holds, for its op type: the inputs and the attributes with their
defaults (normalised by ``infer``), shape inference, FLOPs and bytes, the
dimensions an instance may be split on (``H`` rows, ``OC`` output channels) and
the window of input rows an output row reads, whether it is channel-local, and
per layout (``buffer``, ``image``) whether that kernel set supports an
instance, the weight preparation and the kernel call; plus the call into a
whole-op kernel module (``coinfer.kernels.reference`` or ``buffer``) for the
interpreter.  The IR, the interpreter, the planners' view, the lowering to
kernel calls, the measured costs and the executor all read :data:`SPECS`;
adding an op means one ``OpSpec``, its kernels and its tests.

Op types have names here (:data:`CONV` = ``"conv"``, ...; ``op.type`` stays a plain
str), with grouped sets (:data:`POOLS`, :data:`WINDOWED`, :data:`ELEMENTWISE`,
:data:`MOVEMENT`, :data:`WEIGHTED`) and cost families (:data:`FAMILIES`,
:func:`cost_family`: what a latency predictor fits one model per, and a device
profile scales by).  Every other module uses these names, not the strings; only
ONNX import and export (which map ONNX's names) and the model zoo spell them out
(``tests/graph/test_op_names.py`` checks it).

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
clip            min [-inf], max [inf]; min(max(x, min), max), so all max when
                min > max (ONNX); ReLU6 is ``clip`` with min 0, max 6
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

FLOPs per op (``OpSpec.flops`` of a :class:`Dims`, the one rule for a graph's op and for a
predictor's description of one): conv and fc count 2 per multiply-accumulate (bias and a fused
ReLU are not counted); max/avg pool count the window size per output; global
average pool counts one per input element; relu, clip and add count one per
output element; LRN counts 2*size + 3 per output (square and sum over the
window, then scale, power and divide); softmax counts 3 per element (exp, sum,
divide); concat, flatten, reshape and dropout count zero.  Bytes per op are
input + output + weight bytes (float32).

Both kernel sets support every instance of every op today (image: grouped
conv, depthwise with any channel multiplier, softmax and concat on any axis).
The ``supports`` predicate stays the one place a layout may decline an
instance: the planners, the profiler and the executor then keep it off that
layout (the CPU takes it, as MACE's device placer does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple

import numpy as np

from ..kernels import LAYOUTS, layout
from ..kernels import args as _args
from ..kernels import buffer as kb
from ..kernels import image as ki
from ..kernels.entry import buffer as eb
from ..kernels.entry import image as ei
from ..kernels.geometry import pool_output_size

if TYPE_CHECKING:  # the IR imports this module; it needs the IR's types only for annotations
    from .ir import Graph, Op

Shape = tuple
DTYPE_BYTES = 4  # float32

# ---------------------------------------------------------------------------
# Op types, their grouped sets and cost families: the names every other module
# uses (``op.type`` stays a plain str, so JSON, CSV datasets and traces hold the
# same text).

CONV = "conv"
MAXPOOL = "maxpool"
AVGPOOL = "avgpool"
GLOBALAVGPOOL = "globalavgpool"
FC = "fc"
RELU = "relu"
CLIP = "clip"
LRN = "lrn"
SOFTMAX = "softmax"
CONCAT = "concat"
ADD = "add"
FLATTEN = "flatten"
DROPOUT = "dropout"
RESHAPE = "reshape"

#: The attribute, and output flag, of a ReLU fused into a conv, an fc or an add.
FUSED_RELU = "relu"

#: Pools over a kernel window (kernel, stride, padding, ceil_mode).
POOLS = frozenset({MAXPOOL, AVGPOOL})
#: Ops whose output row reads a window of input rows wider than one (conv and the pools).
WINDOWED = frozenset({CONV}) | POOLS
#: One FLOP per output element, output shaped as the input.
ELEMENTWISE = frozenset({RELU, CLIP, ADD})
#: Ops that only move data (no FLOPs).
MOVEMENT = frozenset({CONCAT, FLATTEN, DROPOUT, RESHAPE})
#: Ops with a weight ``w`` (and an optional bias ``b``).
WEIGHTED = frozenset({CONV, FC})

#: Cost families: op instances whose kernels scale alike.  A latency predictor fits one
#: model per family, and a device profile scales each by its own factor (they are the op
#: classes of :data:`coinfer.hw.calibration.CLASSES`, which adds ``transform``).
FAMILY_CONV = "conv"
FAMILY_DEPTHWISE = "depthwise"
FAMILY_POOL = "pool"
FAMILY_GLOBALPOOL = "globalpool"
FAMILY_FC = "fc"
FAMILY_ELTWISE = "eltwise"
FAMILY_LRN = "lrn"
FAMILY_SOFTMAX = "softmax"
FAMILIES = (FAMILY_CONV, FAMILY_DEPTHWISE, FAMILY_POOL, FAMILY_GLOBALPOOL, FAMILY_FC, FAMILY_ELTWISE, FAMILY_LRN,
            FAMILY_SOFTMAX)
#: An OC split needs at least two texels of output channels.
MIN_SPLIT_CHANNELS = 8


class Window(NamedTuple):
    """The input rows an output row reads along H: rows [r*stride - pad_top, r*stride - pad_top
    + dilation*(kernel-1) + 1).  Element-wise ops read row r alone: stride 1, pad 0, kernel 1."""

    stride: int = 1
    pad_top: int = 0
    kernel: int = 1
    dilation: int = 1


# Defaults of the spec fields.


def _always(graph: "Graph", op: "Op") -> bool:
    return True


def _plain_weights(graph: "Graph", op: "Op") -> dict:
    return {"w": op.params.get("w"), "b": op.params.get("b")}


def _no_splits(graph: "Graph", op: "Op") -> frozenset:
    return frozenset()


def _row_window(graph: "Graph", op: "Op") -> Window:
    return Window()


def _n_out(graph: "Graph", op: "Op") -> int:
    return math.prod(graph.shape(op.output))


def _io_bytes(graph: "Graph", op: "Op") -> int:
    """Inputs + output + weights, float32."""
    n = sum(math.prod(graph.shape(t)) for t in op.inputs) + _n_out(graph, op)
    return (n + op.param_count) * DTYPE_BYTES


@dataclass(frozen=True)
class LayoutKernels:
    """One layout's kernel set for one op type.

    ``call(graph, op, weights, ins, out, region)`` computes ``op`` into ``out``
    from input arrays ``ins`` in this layout; ``region`` is ``{}`` or
    ``{"rows": (r0, r1)}`` / ``{"channels": (c0, c1)}`` (see :attr:`OpSpec.region`).
    ``supports(graph, op)`` says whether the kernels handle this instance;
    ``prepare(graph, op)`` converts the op's weights for this layout, once.
    ``native(graph, op, weights, ins, out, region)`` is ``call`` bound instead of run: a
    :class:`coinfer.kernels.entry.NativeCall` for a native program (the same kernel loop on
    the same arrays), through the layout's entry module (``coinfer.kernels.entry.buffer`` /
    ``.image``); it raises ``coinfer.kernels.entry.NoEntry`` for an instance that has none,
    and is None for an op with no native entry at all.
    """

    call: Callable[..., None]
    supports: Callable[["Graph", "Op"], bool] = _always
    prepare: Callable[["Graph", "Op"], dict] = _plain_weights
    native: Callable[..., object] | None = None


class Dims(NamedTuple):
    """What an op's FLOPs rule reads: its input shapes, its output shape, its normalised
    attributes and its weight's shape (None for an op without weights).  :func:`dims` reads
    it off an op of a graph; :func:`coinfer.graph.costs.sampling.dims` off a latency
    predictor's flat description of one, so both count FLOPs by the same rule."""

    in_shapes: tuple
    out_shape: tuple
    attrs: Mapping
    weight_shape: tuple | None = None


@dataclass(frozen=True)
class OpSpec:
    """Everything coinfer knows about one op type.

    - ``n_inputs``: the number of inputs, ``None`` for one or more.
    - ``infer(op, in_shapes) -> (attrs, out_shape)``: normalised attributes (defaults
      filled in, types checked) and the output shape; raises ValueError/TypeError naming the op.
    - ``flops(dims) -> int`` (of a :class:`Dims`; :func:`flops` reads an op's) and
      ``bytes(graph, op) -> int`` (see the module docstring).
    - ``reference(graph, op, xs, kernels) -> array``: the whole op with a kernel module that
      allocates its outputs (``coinfer.kernels.reference`` or ``coinfer.kernels.buffer``).
    - ``kernels``: ``{layout: LayoutKernels}`` for ``buffer`` and ``image``.
    - ``split_dims(graph, op) -> frozenset``: of ``"H"`` and ``"OC"``, how this instance
      may be divided between processors.
    - ``window(graph, op) -> Window``: the input rows an output row reads (height splits, halos).
    - ``channel_local``: output channel c reads only input channel c (may follow an OC chain's head).
    - ``region``: how a kernel call names part of the output: ``"map"`` (``rows=`` and
      ``channels=`` on a 4-D output, nothing on a 2-D one), ``"vector"`` (``channels=`` on an
      (N, K) output) or ``"whole"`` (the op always runs whole).
    - ``flags``: boolean output flags the op carries (``(FUSED_RELU,)``: a fused ReLU).
    - ``fuses_as``: for an op that may fold into its producer, the producer's flag it becomes.
    - ``family``: the cost family (one of :data:`FAMILIES`; a depthwise conv is
      :data:`FAMILY_DEPTHWISE`, see :func:`cost_family`).
    """

    type: str
    n_inputs: int | None
    infer: Callable[["Op", list], tuple]
    flops: Callable[["Graph", "Op"], int]
    reference: Callable[..., np.ndarray]
    kernels: Mapping[str, LayoutKernels]
    split_dims: Callable[["Graph", "Op"], frozenset] = _no_splits
    window: Callable[["Graph", "Op"], Window] = _row_window
    channel_local: bool = False
    region: str = "map"
    flags: tuple = ()
    fuses_as: str | None = None
    bytes: Callable[["Graph", "Op"], int] = _io_bytes
    family: str = FAMILY_ELTWISE

    def __post_init__(self):
        if set(self.kernels) != set(LAYOUTS):
            raise ValueError(f"OpSpec {self.type!r}: kernels must cover the layouts {LAYOUTS}")
        if self.region not in ("map", "vector", "whole"):
            raise ValueError(f"OpSpec {self.type!r}: region must be 'map', 'vector' or 'whole'")
        if self.family not in FAMILIES or self.family == FAMILY_DEPTHWISE:
            raise ValueError(f"OpSpec {self.type!r}: family must be one of {FAMILIES} but depthwise, "
                             f"got {self.family!r}")


# ---------------------------------------------------------------------------
# Reading the table.


def who(op: "Op") -> str:
    """How errors name an op: ``op 'conv1' (conv)``."""
    return f"op {op.name!r} ({op.type})"


def supports(graph: "Graph", op: "Op", layout_name: str) -> bool:
    """Whether the ``layout_name`` kernel set can compute this instance of ``op``."""
    return SPECS[op.type].kernels[layout_name].supports(graph, op)


def dims(graph: "Graph", op: "Op") -> Dims:
    """What ``op``'s FLOPs rule reads (see :class:`Dims`)."""
    w = op.params.get("w")
    return Dims(tuple(graph.shape(t) for t in op.inputs), graph.shape(op.output), op.attrs,
                None if w is None else tuple(w.shape))


def flops(graph: "Graph", op: "Op") -> int:
    """Floating-point operations of ``op`` (the rules are in the module docstring)."""
    return SPECS[op.type].flops(dims(graph, op))


def cost_family(op_type: str, *, groups: int = 1, in_channels: int = 0, out_channels: int = 0) -> str:
    """The cost family of an op of ``op_type`` (one of :data:`FAMILIES`): the spec's
    ``family``, except that a conv with one filter per channel (``groups`` > 1 and
    ``groups == in_channels == out_channels``) is :data:`FAMILY_DEPTHWISE`.
    Raises KeyError for an unknown op type."""
    fam = SPECS[op_type].family
    if fam == FAMILY_CONV and groups > 1 and groups == in_channels == out_channels:
        return FAMILY_DEPTHWISE
    return fam


def layouts_of(graph: "Graph", op: "Op") -> frozenset:
    """The layouts whose kernels support this instance of ``op``."""
    return frozenset(lay for lay in LAYOUTS if supports(graph, op, lay))


def image_shape(shape) -> tuple:
    """Image shape of an activation: (N, C, H, W) or (N, K) seen as (N, K, 1, 1)."""
    return layout.image_shape(shape if len(shape) == 4 else (shape[0], shape[1], 1, 1))


def as4d(a: np.ndarray) -> np.ndarray:
    """A buffer activation as NCHW (a 2-D (N, K) one as (N, K, 1, 1)); a view."""
    return a if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1], 1, 1)


# ---------------------------------------------------------------------------
# Shared pieces of the specs.


def _int(who_: str, name: str, v, minimum: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{who_}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{who_}: {name} must be >= {minimum}, got {v}")
    return int(v)


def _float(who_: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who_}: {name} must be a number, got {v!r}")
    return float(v)


def _rank(who_: str, what: str, shape: Shape, ndim: int) -> None:
    if len(shape) != ndim:
        raise ValueError(f"{who_}: {what} must be {ndim}-D, got shape {shape}")


def _axis(who_: str, axis, rank: int) -> int:
    a = _int(who_, "axis", axis, -rank)
    if not -rank <= a < rank:
        raise ValueError(f"{who_}: axis must be in [{-rank}, {rank}), got {a}")
    return a % rank


def _param(op: "Op", key: str, shape: Shape | None, required: bool = True):
    p = op.params.get(key)
    if p is None:
        if required:
            raise ValueError(f"{who(op)}: missing parameter {key!r}")
        return None
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{who(op)}: parameter {key!r} must be a numpy.ndarray, got {type(p).__name__}")
    if shape is not None and p.shape != tuple(shape):
        raise ValueError(f"{who(op)}: parameter {key!r} must have shape {tuple(shape)}, got {p.shape}")
    return p


def _window_out(who_: str, axis: str, n: int, pad: int, eff_k: int, s: int) -> int:
    out = (n + pad - eff_k) // s + 1
    if n + pad < eff_k or out < 1:
        raise ValueError(f"{who_}: window {eff_k} is larger than the padded input {axis} {n + pad}")
    return out


def _split_on(*dims: str):
    """``split_dims`` for an op that may split on ``dims``: H needs a 4-D output, OC at least
    :data:`MIN_SPLIT_CHANNELS` output channels."""
    def split_dims(graph: "Graph", op: "Op") -> frozenset:
        out = graph.shape(op.output)
        s = set()
        if "H" in dims and len(out) == 4:
            s.add("H")
        if "OC" in dims and out[1] >= MIN_SPLIT_CHANNELS:
            s.add("OC")
        return frozenset(s)
    return split_dims


def _same_call(fn, native=None) -> dict:
    """Both layouts call ``fn(K, graph, op, weights, ins, out, region)`` with their kernel module ``K``,
    and bind it natively with their entry module (``native``, by default ``fn`` itself)."""
    native = fn if native is None else native
    return {"buffer": LayoutKernels(partial(fn, kb), native=partial(native, eb)),
            "image": LayoutKernels(partial(fn, ki), native=partial(native, ei))}


def _channels(graph: "Graph", op: "Op") -> int:
    """The true output channel count, which image kernels cannot read off a padded image."""
    return graph.shape(op.output)[1]


# ---------------------------------------------------------------------------
# conv


def _conv_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    (x,) = shapes
    _rank(w_, "input", x, 4)
    a = op.attrs
    w = _param(op, "w", None)
    if w.ndim != 4:
        raise ValueError(f"{w_}: weight 'w' must be 4-D (O, C/groups, KH, KW), got shape {w.shape}")
    groups = _int(w_, "groups", a.get("groups", 1), 1)
    oc, cg, kh, kw = w.shape
    if x[1] != cg * groups or oc % groups:
        raise ValueError(
            f"{w_}: input channels {x[1]} and weight shape {w.shape} do not fit groups={groups} "
            f"(expected C = {cg}*{groups} and O divisible by {groups})"
        )
    _param(op, "b", (oc,), required=False)
    attrs = {
        "stride": _args.pair(w_, "stride", a.get("stride", 1)),
        "padding": _args.padding4(w_, a.get("padding", 0)),
        "dilation": _args.pair(w_, "dilation", a.get("dilation", 1)),
        "groups": groups,
        "relu": bool(a.get("relu", False)),
    }
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = attrs["stride"], attrs["padding"], attrs["dilation"]
    oh = _window_out(w_, "height", x[2], pt + pb, dh * (kh - 1) + 1, sh)
    ow = _window_out(w_, "width", x[3], pl + pr, dw * (kw - 1) + 1, sw)
    return attrs, (x[0], oc, oh, ow)


def _conv_flops(d: Dims) -> int:
    _, cg, kh, kw = d.weight_shape
    return 2 * math.prod(d.out_shape) * cg * kh * kw


def _conv_depthwise(graph, op) -> bool:
    """One filter per channel: groups == C_in == C_out (multiplier 1)."""
    return op.attrs["groups"] == graph.shape(op.inputs[0])[1] == graph.shape(op.output)[1]


def _conv_splits(graph, op) -> frozenset:
    dims = _split_on("H", "OC")(graph, op)
    return dims - {"OC"} if op.attrs["groups"] > 1 and _conv_depthwise(graph, op) else dims


def _conv_window(graph, op) -> Window:
    a = op.attrs
    return Window(a["stride"][0], a["padding"][0], op.params["w"].shape[2], a["dilation"][0])


def _conv_buffer_weights(graph, op) -> dict:
    """OIHW weights packed once for the buffer conv tiles (depthwise convs take them as given)."""
    w = op.params["w"]
    if not _conv_depthwise(graph, op):
        w = kb.prepack_weights(w, op.attrs["groups"])
    return {"w": w, "b": op.params.get("b")}


def _conv_one_per_channel(graph, op) -> bool:
    """Depthwise with any channel multiplier: one input channel per group (groups == C_in)."""
    return op.attrs["groups"] > 1 and op.attrs["groups"] == graph.shape(op.inputs[0])[1]


def _conv_image_weights(graph, op) -> dict:
    """A filter image packed once (groups 1), a depthwise filter (OCB, KH, KW, 4) (any channel
    multiplier), or a grouped filter image (OCB, KH, KW, C/groups, 4)."""
    w = op.params["w"]
    if op.attrs["groups"] == 1:
        wi = ki.prepack_filter(layout.filter_to_image(w))  # packed once per model
    elif _conv_one_per_channel(graph, op):
        wi = layout.depthwise_to_image(w)
    else:
        wi = layout.filter_to_image(w)
    return {"w": wi, "b": op.params.get("b")}


def _conv_buffer(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.conv2d(ins[0], p["w"], p["b"], stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
              groups=a["groups"], relu=a["relu"], out=out, **reg)


def _conv_image(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.conv2d(ins[0], p["w"], p["b"], stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
              groups=a["groups"], relu=a["relu"], out=out, out_channels=_channels(graph, op), **reg)


def _conv_reference(graph, op, xs, k):
    a = op.attrs
    return k.conv2d(xs[0], op.params["w"], op.params.get("b"), stride=a["stride"], padding=a["padding"],
                    dilation=a["dilation"], groups=a["groups"], relu=a["relu"])


# ---------------------------------------------------------------------------
# maxpool, avgpool, globalavgpool


def _pool_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    (x,) = shapes
    _rank(w_, "input", x, 4)
    a = op.attrs
    if "kernel" not in a:
        raise ValueError(f"{w_}: missing attribute 'kernel'")
    kernel = _args.pair(w_, "kernel", a["kernel"])
    attrs = {
        "kernel": kernel,
        "stride": _args.pair(w_, "stride", kernel if a.get("stride") is None else a["stride"]),
        "padding": _args.padding4(w_, a.get("padding", 0)),
        "ceil_mode": bool(a.get("ceil_mode", False)),
    }
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, attrs["stride"], attrs["padding"]
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(f"{w_}: padding {attrs['padding']} must be smaller than kernel {kernel}")
    _window_out(w_, "height", x[2], pt + pb, kh, 1)
    _window_out(w_, "width", x[3], pl + pr, kw, 1)
    oh = pool_output_size(x[2], kh, sh, pt, pb, attrs["ceil_mode"])
    ow = pool_output_size(x[3], kw, sw, pl, pr, attrs["ceil_mode"])
    return attrs, (x[0], x[1], oh, ow)


def _avgpool_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    attrs, out = _pool_infer(op, shapes)
    attrs["count_include_pad"] = bool(op.attrs.get("count_include_pad", False))
    return attrs, out


def _pool_flops(d: Dims) -> int:
    kh, kw = d.attrs["kernel"]
    return math.prod(d.out_shape) * kh * kw


def _pool_window(graph, op) -> Window:
    a = op.attrs
    return Window(a["stride"][0], a["padding"][0], a["kernel"][0], 1)


def _maxpool_call(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.max_pool2d(ins[0], a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"],
                 out=out, **reg)


def _maxpool_reference(graph, op, xs, k):
    a = op.attrs
    return k.max_pool2d(xs[0], a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"])


def _avgpool_call(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.avg_pool2d(ins[0], a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"],
                 count_include_pad=a["count_include_pad"], out=out, **reg)


def _avgpool_reference(graph, op, xs, k):
    a = op.attrs
    return k.avg_pool2d(xs[0], a["kernel"], stride=a["stride"], padding=a["padding"],
                        ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])


def _globalavgpool_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    (x,) = shapes
    _rank(who(op), "input", x, 4)
    return {}, (x[0], x[1], 1, 1)


def _globalavgpool_call(K, graph, op, p, ins, out, reg):
    return K.global_avg_pool(ins[0], out=out, **reg)


def _globalavgpool_reference(graph, op, xs, k):
    y = k.global_avg_pool(xs[0])
    return y.reshape(y.shape[0], y.shape[1], 1, 1)


# ---------------------------------------------------------------------------
# fc


def _fc_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    (x,) = shapes
    _rank(w_, "input (flatten it first)", x, 2)
    w = _param(op, "w", None)
    if w.ndim != 2 or w.shape[1] != x[1]:
        raise ValueError(f"{w_}: weight 'w' must have shape (M, {x[1]}), got {w.shape}")
    _param(op, "b", (w.shape[0],), required=False)
    return {"relu": bool(op.attrs.get("relu", False))}, (x[0], w.shape[0])


def _fc_flops(d: Dims) -> int:
    return 2 * math.prod(d.out_shape) * d.weight_shape[1]


def _fc_buffer(K, graph, op, p, ins, out, reg):
    return K.fully_connected(ins[0], p["w"], p["b"], relu=op.attrs["relu"], out=out, **reg)


def _fc_image(K, graph, op, p, ins, out, reg):
    return K.fully_connected(ins[0], p["w"], p["b"], relu=op.attrs["relu"], out=out,
                       out_channels=_channels(graph, op), **reg)


def _fc_image_weights(graph, op) -> dict:
    return {"w": layout.fc_to_image(op.params["w"]), "b": op.params.get("b")}


def _fc_reference(graph, op, xs, k):
    return k.fully_connected(xs[0], op.params["w"], op.params.get("b"), relu=op.attrs["relu"])


# ---------------------------------------------------------------------------
# Element-wise: relu, clip, add


def _same_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    return {}, shapes[0]


def _per_output(d: Dims) -> int:
    return math.prod(d.out_shape)


def _relu_call(K, graph, op, p, ins, out, reg):
    return K.relu(ins[0], out=out, **reg)


def _clip_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    lo = _float(w_, "min", op.attrs.get("min", -math.inf))
    hi = _float(w_, "max", op.attrs.get("max", math.inf))
    for name, v in (("min", lo), ("max", hi)):
        if math.isnan(v):
            raise ValueError(f"{w_}: {name} must be a number, got NaN")
    return {"min": lo, "max": hi}, shapes[0]  # min > max: every element becomes max (ONNX)


def _clip_buffer(K, graph, op, p, ins, out, reg):
    return K.clip(ins[0], min=op.attrs["min"], max=op.attrs["max"], out=out, **reg)


def _clip_image(K, graph, op, p, ins, out, reg):
    return K.clip(ins[0], min=op.attrs["min"], max=op.attrs["max"], out=out, c=_channels(graph, op), **reg)


def _clip_reference(graph, op, xs, k):
    """The module's ``clip`` when it has one, else numpy (float32 in, float32 out)."""
    lo, hi = op.attrs["min"], op.attrs["max"]
    f = getattr(k, "clip", None)
    if f is not None:
        return f(xs[0], min=lo, max=hi)
    x = xs[0]
    return np.clip(x, x.dtype.type(lo), x.dtype.type(hi))


def _add_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    a, b = shapes
    if a != b:
        raise ValueError(f"{who(op)}: input shapes must be equal (no broadcasting), got {a} and {b}")
    return {"relu": bool(op.attrs.get("relu", False))}, a


def _add_call(K, graph, op, p, ins, out, reg):
    return K.add(ins[0], ins[1], relu=op.attrs["relu"], out=out, **reg)


# ---------------------------------------------------------------------------
# lrn, softmax


def _lrn_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    (x,) = shapes
    _rank(w_, "input", x, 4)
    a = op.attrs
    attrs = {
        "size": _int(w_, "size", a.get("size", 5), 1),
        "alpha": _float(w_, "alpha", a.get("alpha", 1e-4)),
        "beta": _float(w_, "beta", a.get("beta", 0.75)),
        "k": _float(w_, "k", a.get("k", 1.0)),
    }
    return attrs, x


def _lrn_flops(d: Dims) -> int:
    return math.prod(d.out_shape) * (2 * d.attrs["size"] + 3)


def _lrn_buffer(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.lrn(ins[0], size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"], out=out, **reg)


def _lrn_image(K, graph, op, p, ins, out, reg):
    a = op.attrs
    return K.lrn(ins[0], _channels(graph, op), size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"],
           out=out, **reg)


def _lrn_reference(graph, op, xs, k):
    a = op.attrs
    return k.lrn(xs[0], size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])


def _softmax_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    (x,) = shapes
    return {"axis": _axis(who(op), op.attrs.get("axis", 1), len(x))}, x


def _softmax_buffer(K, graph, op, p, ins, out, reg):
    return K.softmax(ins[0], axis=op.attrs["axis"], out=out)


def _softmax_image(K, graph, op, p, ins, out, reg):
    """Any axis; a 2-D (N, K) tensor is the image of (N, K, 1, 1), so its axes keep their numbers."""
    return K.softmax(ins[0], _channels(graph, op), out=out, axis=op.attrs["axis"])


# ---------------------------------------------------------------------------
# concat


def _concat_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    x0 = shapes[0]
    axis = _axis(w_, op.attrs.get("axis", 1), len(x0))
    for s in shapes[1:]:
        if len(s) != len(x0) or any(a != b for i, (a, b) in enumerate(zip(s, x0)) if i != axis):
            raise ValueError(f"{w_}: input shapes {list(shapes)} differ outside the concat axis {axis}")
    out = list(x0)
    out[axis] = sum(s[axis] for s in shapes)
    return {"axis": axis}, tuple(out)


def _concat_splits(graph, op) -> frozenset:
    """Output row r reads row r of every input, unless the inputs are joined along H."""
    return frozenset() if op.attrs["axis"] == 2 else _split_on("H")(graph, op)


def _concat_buffer(K, graph, op, p, ins, out, reg):
    return K.concat(ins, axis=op.attrs["axis"], out=out, **reg)


def _concat_image(K, graph, op, p, ins, out, reg):
    """Any axis; a 2-D (N, K) tensor is the image of (N, K, 1, 1), so its axes keep their numbers."""
    return K.concat(ins, [graph.shape(i)[1] for i in op.inputs], out, axis=op.attrs["axis"], rows=reg.get("rows"),
              out_region=reg.get("channels"))


# ---------------------------------------------------------------------------
# flatten, reshape, dropout: data movement only


def _flatten_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    (x,) = shapes
    if len(x) < 2:
        raise ValueError(f"{who(op)}: input must be at least 2-D, got shape {x}")
    return {}, (x[0], int(math.prod(x[1:])))


def _reshape_infer(op: "Op", shapes: list) -> tuple[dict, Shape]:
    w_ = who(op)
    (x,) = shapes
    target = op.attrs.get("shape")
    if not (isinstance(target, (tuple, list)) and len(target) == 2):
        raise ValueError(f"{w_}: attribute 'shape' must be a 2-D target (a, b), got {target!r}")
    t = [_int(w_, "shape entry", v, -1) for v in target]
    t = [x[i] if v == 0 else v for i, v in enumerate(t)]
    total = int(math.prod(x))
    if t.count(-1) > 1:
        raise ValueError(f"{w_}: at most one -1 in shape, got {tuple(target)}")
    if -1 in t:
        known = math.prod(v for v in t if v != -1)
        if known == 0 or total % known:
            raise ValueError(f"{w_}: cannot reshape {x} to {tuple(target)}")
        t[t.index(-1)] = total // known
    if math.prod(t) != total:
        raise ValueError(f"{w_}: cannot reshape {x} ({total} elements) to {tuple(target)}")
    return {"shape": tuple(int(v) for v in target)}, tuple(t)


def _no_flops(d: Dims) -> int:
    return 0


def _reshape_buffer(graph, op, p, ins, out, reg) -> None:
    np.copyto(out, ins[0].reshape(out.shape))


def _reshape_image(graph, op, p, ins, out, reg) -> None:
    """The image of (N, C, H, W) flattened is a repack: through the buffer layout, in C."""
    ishape, oshape = graph.shape(op.inputs[0]), graph.shape(op.output)
    buf = np.empty(ishape, np.float32)
    layout.to_buffer(ins[0], ishape[1], out=as4d(buf))
    layout.to_image(as4d(buf.reshape(oshape)), out=out)


def _reshape_reference(graph, op, xs, k):
    return np.ascontiguousarray(xs[0]).reshape(graph.shape(op.output))


def _copy_call(K, graph, op, p, ins, out, reg) -> None:
    np.copyto(out, ins[0])


def _copy_native(E, graph, op, p, ins, out, reg):
    return E.copy(ins[0], out)


def _reshape_buffer_native(graph, op, p, ins, out, reg):
    return eb.copy(ins[0], out)


def _reshape_image_native(graph, op, p, ins, out, reg):
    return ei.reshape(ins[0], graph.shape(op.inputs[0]), out, graph.shape(op.output))


# ---------------------------------------------------------------------------
# The table.

_RESHAPE_KERNELS = {"buffer": LayoutKernels(_reshape_buffer, native=_reshape_buffer_native),
                    "image": LayoutKernels(_reshape_image, native=_reshape_image_native)}


def _layouts(buffer_fn, image_fn, buffer_prepare=None, image_prepare=None) -> dict:
    """Each layout's own call (``fn(K, graph, op, ...)``), bound to its kernel module and, natively,
    to its entry module."""
    out = {}
    for lay, fn, k, e, prep in (("buffer", buffer_fn, kb, eb, buffer_prepare), ("image", image_fn, ki, ei, image_prepare)):
        extra = {} if prep is None else {"prepare": prep}
        out[lay] = LayoutKernels(partial(fn, k), native=partial(fn, e), **extra)
    return out

SPECS: dict[str, OpSpec] = {s.type: s for s in (
    OpSpec(CONV, 1, _conv_infer, _conv_flops, _conv_reference,
           _layouts(_conv_buffer, _conv_image, _conv_buffer_weights, _conv_image_weights),
           split_dims=_conv_splits, window=_conv_window, flags=(FUSED_RELU,), family=FAMILY_CONV),
    OpSpec(MAXPOOL, 1, _pool_infer, _pool_flops, _maxpool_reference, _same_call(_maxpool_call),
           split_dims=_split_on("H", "OC"), window=_pool_window, channel_local=True, family=FAMILY_POOL),
    OpSpec(AVGPOOL, 1, _avgpool_infer, _pool_flops, _avgpool_reference, _same_call(_avgpool_call),
           split_dims=_split_on("H", "OC"), window=_pool_window, channel_local=True, family=FAMILY_POOL),
    OpSpec(GLOBALAVGPOOL, 1, _globalavgpool_infer, lambda d: math.prod(d.in_shapes[0]),
           _globalavgpool_reference,
           _same_call(_globalavgpool_call),
           split_dims=_split_on("OC"), channel_local=True, family=FAMILY_GLOBALPOOL),
    OpSpec(FC, 1, _fc_infer, _fc_flops, _fc_reference,
           _layouts(_fc_buffer, _fc_image, image_prepare=_fc_image_weights),
           split_dims=_split_on("OC"), region="vector", flags=(FUSED_RELU,), family=FAMILY_FC),
    OpSpec(RELU, 1, _same_infer, _per_output, lambda graph, op, xs, k: k.relu(xs[0]), _same_call(_relu_call),
           split_dims=_split_on("H", "OC"), channel_local=True, fuses_as=FUSED_RELU),
    OpSpec(CLIP, 1, _clip_infer, _per_output, _clip_reference,
           _layouts(_clip_buffer, _clip_image),
           split_dims=_split_on("H", "OC"), channel_local=True),
    OpSpec(LRN, 1, _lrn_infer, _lrn_flops, _lrn_reference,
           _layouts(_lrn_buffer, _lrn_image),
           split_dims=_split_on("H", "OC"), family=FAMILY_LRN),
    OpSpec(SOFTMAX, 1, _softmax_infer, lambda d: 3 * math.prod(d.out_shape),
           lambda graph, op, xs, k: k.softmax(xs[0], axis=op.attrs["axis"]),
           _layouts(_softmax_buffer, _softmax_image),
           region="whole", family=FAMILY_SOFTMAX),
    OpSpec(CONCAT, None, _concat_infer, _no_flops,
           lambda graph, op, xs, k: k.concat(list(xs), axis=op.attrs["axis"]),
           _layouts(_concat_buffer, _concat_image),
           split_dims=_concat_splits),
    OpSpec(ADD, 2, _add_infer, _per_output, lambda graph, op, xs, k: k.add(xs[0], xs[1], relu=op.attrs["relu"]),
           _same_call(_add_call), split_dims=_split_on("H", "OC"), flags=(FUSED_RELU,)),
    OpSpec(FLATTEN, 1, _flatten_infer, _no_flops, _reshape_reference, _RESHAPE_KERNELS, region="whole"),
    OpSpec(DROPOUT, 1, _same_infer, _no_flops, lambda graph, op, xs, k: xs[0], _same_call(_copy_call, _copy_native),
           region="whole"),
    OpSpec(RESHAPE, 1, _reshape_infer, _no_flops, _reshape_reference, _RESHAPE_KERNELS, region="whole"),
)}

#: Every op type, in table order.
OP_TYPES = tuple(SPECS)


def run_reference(graph: "Graph", op: "Op", xs: list, kernels: ModuleType) -> np.ndarray:
    """The whole of ``op`` on input arrays ``xs`` with a kernel module (see :attr:`OpSpec.reference`)."""
    return SPECS[op.type].reference(graph, op, xs, kernels)
