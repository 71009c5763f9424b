"""Op instances to measure: a flat description of one op, and samplers of them.

A latency predictor learns from single ops timed alone, then answers for
any op of any model.  Both sides meet in one flat description, a
:data:`DESC_KEYS` dict of ints plus ``type``: :func:`describe` reads it off
an op of a model (its :class:`~coinfer.graph.coexec.view.OpView`), and
:func:`build` makes a one-op graph from it, with seeded weights, to time.

:func:`sample` draws ``n`` descriptions the way nn-Meter's adaptive sampling
does (MobiSys 2021, Sec. 4): part of them around the layers of coinfer's
model zoo (each zoo layer with its channels and spatial size perturbed), the
rest uniformly over the space the issue names: conv with kernel 1-11, stride
1-4, groups 1 or C (depthwise), 3-1024 channels, 7-227 pixels a side; max,
average and global pools, FC, LRN, softmax, and the element-wise ops (relu,
clip, add, concat).  Each sample also gets an output region: the whole op, or
a band of rows or of channels (the share one processor computes in a split),
so a predictor learns the partial tiles of split ops.  Work is capped
(:data:`MAX_FLOPS`, :data:`MAX_WEIGHT_BYTES`) so that measuring stays bounded.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .. import ops
from ..coexec.regions import band, full
from ..coexec.view import OpView
from ..ops import ADD, AVGPOOL, CLIP, CONCAT, CONV, DROPOUT, FC, FLATTEN, FUSED_RELU, GLOBALAVGPOOL, LRN, MAXPOOL, \
    POOLS, RELU, SOFTMAX

#: The integer fields of a description (see :func:`describe`).
DESC_KEYS = ("n", "c", "h", "w", "oc", "oh", "ow", "kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr",
             "dh", "dw", "groups", FUSED_RELU, "inputs", "size", "ceil", "axis")
#: Op types the samplers draw (flatten, reshape and dropout only move data and are
#: predicted as element-wise copies).
SAMPLED_TYPES = (CONV, MAXPOOL, AVGPOOL, GLOBALAVGPOOL, FC, RELU, CLIP, ADD, CONCAT, LRN, SOFTMAX)
#: A sampled op does at most this much work (FLOPs) ...
MAX_FLOPS = 1.2e9
#: ... and holds at most this many weight bytes (AlexNet's fc6 holds 151 MB).
MAX_WEIGHT_BYTES = 160e6
#: Zoo models the adaptive sampler perturbs.
ZOO_MODELS = ("alexnet", "nin", "squeezenet", "vgg16", "resnet18", "mobilenet_v1", "yolov2_tiny")


def _dims(shape) -> tuple[int, int, int, int]:
    return (shape[0], shape[1], shape[2], shape[3]) if len(shape) == 4 else (shape[0], shape[1], 1, 1)


def describe(op: OpView) -> dict:
    """The flat description of ``op`` (``type`` and every :data:`DESC_KEYS` field)."""
    n, c, h, w = _dims(op.in_shapes[0])
    _, oc, oh, ow = _dims(op.out_shape)
    d = dict.fromkeys(DESC_KEYS, 0)
    d.update(type=op.type, n=n, c=c, h=h, w=w, oc=oc, oh=oh, ow=ow, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1,
             groups=1, inputs=len(op.inputs), axis=1)
    a = op.attrs
    if op.type == CONCAT:
        d["c"] = sum(_dims(s)[1] for s in op.in_shapes)
    if "weight_shape" in a and op.type == CONV:
        d["kh"], d["kw"] = a["weight_shape"][2], a["weight_shape"][3]
    if "kernel" in a:
        d["kh"], d["kw"] = a["kernel"]
    if op.type == GLOBALAVGPOOL:
        d["kh"], d["kw"] = h, w
    if "stride" in a:
        d["sh"], d["sw"] = a["stride"]
    if "padding" in a:
        d["pt"], d["pl"], d["pb"], d["pr"] = a["padding"]
    if "dilation" in a:
        d["dh"], d["dw"] = a["dilation"]
    d["groups"] = int(a.get("groups", 1))
    d[FUSED_RELU] = int(bool(a.get(FUSED_RELU, False)))
    d["size"] = int(a.get("size", 0))
    d["ceil"] = int(bool(a.get("ceil_mode", False)))
    if "axis" in a:
        d["axis"] = int(a["axis"])
    return {k: (v if k == "type" else int(v)) for k, v in d.items()}


def depthwise(desc: dict) -> bool:
    """Whether ``desc`` is a conv with one filter per channel (:func:`coinfer.graph.ops.cost_family`)."""
    return family(desc) == ops.FAMILY_DEPTHWISE


def family(desc: dict) -> str:
    """The cost family of the op ``desc`` describes (:func:`coinfer.graph.ops.cost_family`)."""
    return ops.cost_family(desc["type"], groups=desc["groups"], in_channels=desc["c"], out_channels=desc["oc"])


def dims(desc: dict) -> ops.Dims:
    """What the op table's FLOPs rule reads (:class:`coinfer.graph.ops.Dims`), from a description:
    an (N, C, H, W) input, an (N, OC, OH, OW) output, the window and LRN size, and the weight
    shape of a conv (OC, C/groups, KH, KW) or an fc (OC, C)."""
    t, d = desc["type"], desc
    weight = None
    if t == CONV:
        weight = (d["oc"], d["c"] // d["groups"], d["kh"], d["kw"])
    elif t == FC:
        weight = (d["oc"], d["c"])
    attrs = {"kernel": (d["kh"], d["kw"]), "size": d["size"], "groups": d["groups"]}
    return ops.Dims(((d["n"], d["c"], d["h"], d["w"]),), (d["n"], d["oc"], d["oh"], d["ow"]), attrs, weight)


def flops(desc: dict) -> int:
    """FLOPs of the whole op ``desc`` describes, by the op table's rule."""
    return ops.SPECS[desc["type"]].flops(dims(desc))


def flat(desc: dict) -> bool:
    """Whether the op ``desc`` describes takes and gives (N, K) tensors: FC, and softmax over
    a 1x1 map; every other op takes NCHW ones."""
    return desc["type"] == FC or (desc["type"] == SOFTMAX and desc["h"] == desc["w"] == 1)


def build(desc: dict, seed: int = 0, params: dict | None = None):
    """A one-op :class:`~coinfer.graph.ir.Graph` for ``desc``, with seeded weights or the given
    ``params`` (``{"w": ..., "b": ...}``, float32, of the op's shapes); raises ValueError when the
    description is not a valid op.  The inputs are ``x`` (``x0``, ``x1``, ... for add and
    concat); the op and its output are ``op``."""
    from ..ir import GraphBuilder

    rng = np.random.default_rng(seed)
    t, d = desc["type"], desc
    shape = (d["n"], d["c"]) if flat(d) else (d["n"], d["c"], d["h"], d["w"])
    ins = {"x": shape}
    if t == CONCAT:
        k = max(2, d["inputs"])
        parts = [d["c"] // k] * k
        parts[-1] += d["c"] - sum(parts)
        ins = {f"x{i}": (shape[0], p) + tuple(shape[2:]) for i, p in enumerate(parts)}
    elif t == ADD:
        ins = {"x0": shape, "x1": shape}
    b = GraphBuilder(f"sample_{t}", ins)
    names = list(ins)
    relu = bool(d[FUSED_RELU])
    if t == CONV:
        if params is None:
            cg = d["c"] // d["groups"]
            w = rng.standard_normal((d["oc"], cg, d["kh"], d["kw"]), dtype=np.float32)
            w *= np.float32(math.sqrt(2.0 / (cg * d["kh"] * d["kw"])))
            params = {"w": w, "b": rng.standard_normal(d["oc"], dtype=np.float32) * np.float32(0.01)}
        b.add(t, "op", names, params=params, stride=(d["sh"], d["sw"]),
              padding=(d["pt"], d["pl"], d["pb"], d["pr"]), dilation=(d["dh"], d["dw"]), groups=d["groups"],
              relu=relu)
    elif t in POOLS:
        b.add(t, "op", names, kernel=(d["kh"], d["kw"]), stride=(d["sh"], d["sw"]),
              padding=(d["pt"], d["pl"], d["pb"], d["pr"]), ceil_mode=bool(d["ceil"]))
    elif t == FC:
        if params is None:
            w = rng.standard_normal((d["oc"], d["c"]), dtype=np.float32) * np.float32(math.sqrt(2.0 / d["c"]))
            params = {"w": w, "b": np.zeros(d["oc"], np.float32)}
        b.add(t, "op", names, params=params, relu=relu)
    elif t == LRN:
        b.add(t, "op", names, size=max(1, d["size"]))
    elif t in (SOFTMAX, CONCAT):
        b.add(t, "op", names, axis=1)
    elif t == CLIP:
        b.add(t, "op", names, min=0.0, max=6.0)
    elif t == ADD:
        b.add(t, "op", names, relu=relu)
    elif t in (RELU, GLOBALAVGPOOL, DROPOUT, FLATTEN):
        b.add(t, "op", names)
    else:
        raise ValueError(f"sampling.build: cannot build op type {t!r}")
    return b.build()


# ---------------------------------------------------------------------------
# Samplers


def _logu(rng, lo: float, hi: float) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def _base(t: str, **kw) -> dict:
    d = dict.fromkeys(DESC_KEYS, 0)
    d.update(type=t, n=1, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, groups=1, inputs=1, axis=1)
    d.update(kw)
    return d


def one_op(t: str, **fields) -> dict:
    """The whole description of a one-op graph of type ``t`` given some of its fields (batch 1,
    unit strides and dilations and one group unless ``fields`` say otherwise): what
    :func:`describe` reads off :func:`build`'s op, the output's size filled in."""
    from ..coexec.view import view_of

    return describe(view_of(build(_base(t, **fields))).ops[0])


def _uniform(rng, t: str) -> dict:
    """One description drawn uniformly over the issue's ranges for op type ``t``."""
    side = _logu(rng, 7, 227)
    if t == CONV:
        k = int(rng.choice([1, 1, 3, 3, 3, 5, 7, 11]))
        s = int(rng.integers(1, min(4, k) + 1)) if k > 1 else int(rng.choice([1, 1, 2]))
        depthwise = k in (3, 5) and rng.random() < 0.25
        c = _logu(rng, 8, 1024) if depthwise else _logu(rng, 3, 1024)
        oc = c if depthwise else _logu(rng, 8, 1024)
        pad = int(rng.choice([0, k // 2])) if k > 1 else 0
        side = max(side, k)
        return _base(CONV, c=c, h=side, w=side, oc=oc, kh=k, kw=k, sh=s, sw=s, pt=pad, pl=pad, pb=pad, pr=pad,
                     groups=c if depthwise else 1, relu=int(rng.random() < 0.7))
    if t in POOLS:
        k = int(rng.choice([2, 3, 3, 5]))
        s = int(rng.integers(1, k + 1))
        pad = int(rng.choice([0, 0, k // 2])) if k > 2 else 0
        side = max(_logu(rng, 7, 114), k)
        return _base(t, c=_logu(rng, 16, 1024), h=side, w=side, kh=k, kw=k, sh=s, sw=s, pt=pad, pl=pad, pb=pad,
                     pr=pad, ceil=int(rng.random() < 0.3))
    if t == GLOBALAVGPOOL:
        side = _logu(rng, 4, 28)
        return _base(t, c=_logu(rng, 32, 2048), h=side, w=side)
    if t == FC:
        return _base(t, c=_logu(rng, 64, 25088), h=1, w=1, oc=_logu(rng, 10, 4096), relu=int(rng.random() < 0.5))
    if t == LRN:
        side = _logu(rng, 7, 112)
        return _base(t, c=_logu(rng, 16, 512), h=side, w=side, size=int(rng.choice([3, 5])))
    if t == SOFTMAX:
        if rng.random() < 0.7:
            return _base(t, c=_logu(rng, 10, 4096), h=1, w=1)
        side = _logu(rng, 1, 28)
        return _base(t, c=_logu(rng, 2, 1024), h=side, w=side)
    side = _logu(rng, 7, 114)
    c = _logu(rng, 8, 1024)
    if t == CONCAT:
        return _base(t, c=c, h=side, w=side, inputs=int(rng.integers(2, 5)))
    if t == ADD:
        return _base(t, c=c, h=side, w=side, inputs=2, relu=int(rng.random() < 0.5))
    return _base(t, c=c, h=side, w=side)


def _perturbed(rng, d: dict) -> dict:
    """A zoo layer's description with its channels and spatial size scaled at random."""
    d = dict(d)
    fs, fc = rng.uniform(0.6, 1.4), rng.uniform(0.5, 1.5)
    if d["h"] > 1:
        d["h"] = max(d["kh"], int(round(d["h"] * fs)))
        d["w"] = max(d["kw"], int(round(d["w"] * fs)))
        if d["type"] == GLOBALAVGPOOL:
            d["kh"], d["kw"] = d["h"], d["w"]
    dw = depthwise(d)
    c = max(1, int(round(d["c"] * fc)))
    if d["type"] == CONV and d["groups"] > 1 and not dw:
        c = max(d["groups"], c // d["groups"] * d["groups"])
    d["c"] = c
    if dw:
        d["oc"] = d["groups"] = c
    elif d["type"] in ops.WEIGHTED:
        d["oc"] = max(1, int(round(d["oc"] * rng.uniform(0.5, 1.5))))
        if d["groups"] > 1:
            d["oc"] = max(d["groups"], d["oc"] // d["groups"] * d["groups"])
    else:
        d["oc"] = c
    return d


def zoo_descriptions(models=ZOO_MODELS) -> list[dict]:
    """The descriptions of every op of the zoo's models (ReLU fused), duplicates dropped."""
    from .. import zoo
    from ..coexec.view import view_of
    from ..ir import fuse_relu

    seen, out = set(), []
    for m in models:
        g = fuse_relu(zoo.build(m, weights=False))
        for op in view_of(g).ops:
            d = describe(op)
            if d["type"] not in SAMPLED_TYPES:
                continue
            key = tuple(sorted(d.items()))
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def fits_budget(graph) -> bool:
    """Whether a sampled one-op graph stays within :data:`MAX_FLOPS` and :data:`MAX_WEIGHT_BYTES`."""
    op = graph.ops[0]
    return graph.flops(op) <= MAX_FLOPS and 4 * op.param_count <= MAX_WEIGHT_BYTES


def region_for(op: OpView, rng) -> tuple[str, tuple]:
    """A region to time: ``("full", whole)`` half the time, else a band of rows (``"H"``) or of
    channels (``"OC"``) that one side of a split at a random ratio computes."""
    if rng.random() < 0.5 or not op.splits:
        return "full", full(op.out_shape)
    dim = str(rng.choice(sorted(op.splits)))
    for _ in range(8):
        r = band(op.out_shape, dim, float(rng.uniform(0.1, 0.9)), str(rng.choice(["gpu", "cpu"])))
        if r[1] > r[0] and r[3] > r[2]:
            return dim, r
    return "full", full(op.out_shape)


#: The share of samples drawn around the zoo's layers (the rest are uniform).
ZOO_SHARE = 0.5
#: Relative frequency of each op type among the uniform samples.
TYPE_WEIGHTS = {CONV: 10, MAXPOOL: 2, AVGPOOL: 1, GLOBALAVGPOOL: 1, FC: 2, RELU: 1, CLIP: 1, ADD: 1, CONCAT: 1,
                LRN: 1, SOFTMAX: 1}


def sample(n: int, seed: int = 0, *, zoo: list | None = None) -> Iterator[dict]:
    """``n`` valid descriptions within the work caps, reproducibly from ``seed``."""
    from ..coexec.view import view_of

    rng = np.random.default_rng(seed)
    zoo = zoo_descriptions() if zoo is None else zoo
    types = list(TYPE_WEIGHTS)
    p = np.array([TYPE_WEIGHTS[t] for t in types], float)
    p /= p.sum()
    made = tries = 0
    while made < n:
        tries += 1
        if tries > 50 * n + 100:
            raise RuntimeError(f"sampling.sample: could not draw {n} valid ops in {tries} tries")
        if zoo and rng.random() < ZOO_SHARE:
            d = _perturbed(rng, zoo[int(rng.integers(len(zoo)))])
        else:
            d = _uniform(rng, str(rng.choice(types, p=p)))
        try:
            g = build(d, seed=made)
        except ValueError:
            continue
        if not fits_budget(g):
            continue
        op = view_of(g).ops[0]
        dim, region = region_for(op, rng)
        made += 1
        yield {"desc": describe(op), "split": dim, "region": region, "graph": g}
