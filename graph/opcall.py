"""One op of the IR as a kernel call, in either layout, on a region of its output.

:func:`prepare` converts every op's weights once (packed OIHW conv weights,
else as given, for buffer kernels; packed filter images, depthwise and FC
images for image kernels).  :func:`call` then runs
``op`` on input arrays into ``out`` over ``rows`` x ``channels`` of the output.
Both layouts go through the same table of op types, so a strategy differs only
in where each region runs.
"""
from __future__ import annotations

import numpy as np

from ..kernels import buffer as kb
from ..kernels import image as ki
from ..kernels import LAYOUTS, layout


def prepare(graph, op, layouts=LAYOUTS) -> dict:
    """Per-layout weights of ``op``: {"buffer": {...}, "image": {...}}."""
    p = {}
    w, b = op.params.get("w"), op.params.get("b")
    if "buffer" in layouts:
        wb = w
        if op.type == "conv" and not _depthwise(graph, op):
            wb = kb.prepack_weights(w, op.attrs["groups"])  # packed once per model
        p["buffer"] = {"w": wb, "b": b}
    if "image" in layouts:
        wi = None
        if op.type == "conv":
            if op.attrs["groups"] == 1:
                wi = ki.prepack_filter(layout.filter_to_image(w))  # packed once per model
            elif _depthwise(graph, op):
                wi = layout.depthwise_to_image(w)
        elif op.type == "fc":
            wi = layout.fc_to_image(w)
        p["image"] = {"w": wi, "b": b}
    return p


def _depthwise(graph, op) -> bool:
    c = graph.shape(op.inputs[0])[1]
    return op.attrs["groups"] == c == graph.shape(op.output)[1] and op.params["w"].shape[1] == 1


def supported_on_image(graph, op) -> bool:
    """Image kernels handle conv with groups 1 or depthwise, and every other op type."""
    return op.type != "conv" or op.attrs["groups"] == 1 or _depthwise(graph, op)


def image_shape(shape) -> tuple:
    """Image shape of an activation: (N, C, H, W) or (N, K) seen as (N, K, 1, 1)."""
    return layout.image_shape(shape if len(shape) == 4 else (shape[0], shape[1], 1, 1))


def as4d(a: np.ndarray) -> np.ndarray:
    """A buffer activation as NCHW (a 2-D (N, K) one as (N, K, 1, 1)); a view."""
    return a if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1], 1, 1)


# Ops that always run whole, on one processor: they are neither row- nor channel-local.
WHOLE_OPS = ("softmax", "flatten", "reshape", "dropout")


def region_kwargs(graph, op, region) -> dict:
    """``rows=`` / ``channels=`` for :func:`call` computing ``region`` = (r0, r1, c0, c1);
    empty for ops that run whole.  Channels are named only when they are not all."""
    oshape = graph.shape(op.output)
    four = len(oshape) == 4
    if op.type in WHOLE_OPS or (not four and op.type != "fc"):
        return {}
    rows, chans = (region[0], region[1]), (region[2], region[3])
    if not four:
        return {"channels": chans}
    return {"rows": rows} if chans == (0, oshape[1]) else {"rows": rows, "channels": chans}


def call(graph, op, lay: str, weights: dict, ins: list, out: np.ndarray, rows=None, channels=None,
         scratch=None) -> None:
    """Compute ``rows`` x ``channels`` of ``op``'s output into ``out`` with the
    ``lay`` kernel set.  ``rows`` applies to 4-D outputs only."""
    a = op.attrs
    t = op.type
    oshape = graph.shape(op.output)
    c_out = oshape[1]
    four = len(oshape) == 4
    reg = {}
    if rows is not None and four:
        reg["rows"] = rows
    if channels is not None:
        reg["channels"] = channels
    K = kb if lay == "buffer" else ki
    x = ins[0]
    # Ops whose calls read the same in both layouts.
    if t in ("maxpool", "avgpool"):
        _pool(K, op, x, out, reg)
    elif t == "globalavgpool":
        K.global_avg_pool(x, out=out, **reg)
    elif t == "relu":
        K.relu(x, out=out, **reg)
    elif t == "add":
        K.add(x, ins[1], relu=a["relu"], out=out, **reg)
    elif t == "dropout":
        np.copyto(out, x)
    elif lay == "buffer":
        _call_buffer(op, weights, ins, out, reg)
    else:
        _call_image(graph, op, weights, ins, out, reg, c_out, scratch)


def _call_buffer(op, weights, ins, out, reg) -> None:
    a, t, x = op.attrs, op.type, ins[0]
    w, b = weights["w"], weights["b"]
    if t == "conv":
        kb.conv2d(x, w, b, stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                  groups=a["groups"], relu=a["relu"], out=out, **reg)
    elif t == "fc":
        kb.fully_connected(x, w, b, relu=a["relu"], out=out, **reg)
    elif t == "clip":
        kb.clip(x, min=a["min"], max=a["max"], out=out, **reg)
    elif t == "concat":
        kb.concat(ins, axis=a["axis"], out=out, **reg)
    elif t == "lrn":
        kb.lrn(x, size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"], out=out, **reg)
    elif t == "softmax":
        kb.softmax(x, axis=a["axis"], out=out)
    elif t in ("flatten", "reshape"):
        np.copyto(out, x.reshape(out.shape))
    else:
        raise ValueError(f"op {op.name!r}: type {t!r} has no buffer kernel")


def _call_image(graph, op, weights, ins, out, reg, c_out, scratch) -> None:
    """Image kernels take the true channel count where the image cannot tell it."""
    a, t, x = op.attrs, op.type, ins[0]
    w, b = weights["w"], weights["b"]
    if t == "conv":
        if w is None:
            raise ValueError(f"op {op.name!r}: grouped conv with groups={a['groups']} has no image kernel "
                             "(image kernels take groups 1 or depthwise)")
        ki.conv2d(x, w, b, stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                  relu=a["relu"], out=out, out_channels=c_out, **reg)
    elif t == "fc":
        ki.fully_connected(x, w, b, relu=a["relu"], out=out, out_channels=c_out, **reg)
    elif t == "clip":
        ki.clip(x, min=a["min"], max=a["max"], out=out, c=c_out, **reg)
    elif t == "concat":
        if a["axis"] != 1:
            raise ValueError(f"op {op.name!r}: image concat joins channels (axis 1), got axis {a['axis']}")
        ki.concat(ins, [graph.shape(i)[1] for i in op.inputs], out, rows=reg.get("rows"),
                  out_region=reg.get("channels"))
    elif t == "lrn":
        ki.lrn(x, c_out, size=a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"], out=out, **reg)
    elif t == "softmax":
        if a["axis"] != 1:
            raise ValueError(f"op {op.name!r}: image softmax runs over channels (axis 1), got axis {a['axis']}")
        ki.softmax(x, c_out, out=out)
    elif t in ("flatten", "reshape"):
        # The image of (N, C, H, W) flattened is a repack: through the buffer layout, in C.
        ishape, oshape = graph.shape(op.inputs[0]), graph.shape(op.output)
        buf = scratch if scratch is not None else np.empty(ishape, np.float32)
        layout.to_buffer(x, ishape[1], out=buf.reshape(as4d(buf).shape) if buf.ndim == 2 else buf)
        layout.to_image(as4d(buf.reshape(oshape)), out=out)
    else:
        raise ValueError(f"op {op.name!r}: type {t!r} has no image kernel")


def _pool(K, op, x, out, reg) -> None:
    a = op.attrs
    if op.type == "maxpool":
        K.max_pool2d(x, a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"],
                     out=out, **reg)
    else:
        K.avg_pool2d(x, a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"],
                     count_include_pad=a["count_include_pad"], out=out, **reg)
