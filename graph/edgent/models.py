"""Branchy models: B-AlexNet (Edgent) and B-LeNet (BranchyNet), with trained weights.

``branchy_alexnet()``: BranchyNet's AlexNet for 32x32x3 CIFAR-10 input, with
five exits as in Edgent (MECOMM 2018): side branches after norm1, norm2, conv3
and conv4, and the main classifier.  Trunk: conv 5x5/32, pool 3/2, LRN,
conv 5x5/64, pool 3/2, LRN, conv 3x3/96, 3x3/96, 3x3/64, pool 3/2,
fc 256, fc 128, fc 10, softmax.  Each side branch is a 3x3 conv (32 maps), a
3/2 max pool, a flatten, an fc to 10 classes and a softmax.

``branchy_lenet()``: B-LeNet for 28x28x1 input, three exits: after pool1
(conv 3x3/8, pool 2/2, fc 10), after pool2 (fc 10), and LeNet-5's classifier
(conv 5x5/6, pool, conv 5x5/16, pool, fc 120, fc 84, fc 10).

With ``trained=True`` (the default) the weights, the exits' entropy
thresholds and their measured held-out accuracies come from the ``.npz``
files in ``coinfer/graph/edgent/weights/`` (see the README there for the
command that made them and the dataset: MNIST digits stand in for CIFAR-10).
``trained=False`` gives He-initialised weights drawn with ``seed``, thresholds
0 and no accuracies.
"""
from __future__ import annotations

import json
from importlib import resources

import numpy as np

from ..ir import Graph, GraphBuilder
from .exits import Exit

__all__ = ["branchy_alexnet", "branchy_lenet", "MODELS", "build", "load_weights", "weights_meta", "pack_params",
           "unpack_params", "INT8_MIN_SIZE"]

NUM_CLASSES = 10


class _Builder:
    def __init__(self, name: str, shape: tuple, seed: int):
        self.b = GraphBuilder(name, {"data": shape})
        self.rng = np.random.default_rng(seed)

    def _he(self, shape, fan_in):
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))

    def conv(self, name, x, oc, k, pad=0, relu=True):
        c = self.b.shape(x)[1]
        w = self._he((oc, c, k, k), c * k * k)
        return self.b.add("conv", name, [x], params={"w": w, "b": np.zeros(oc, np.float32)},
                          padding=pad, relu=relu)

    def fc(self, name, x, m, relu=True):
        k = self.b.shape(x)[1]
        return self.b.add("fc", name, [x], params={"w": self._he((m, k), k), "b": np.zeros(m, np.float32)},
                          relu=relu)

    def pool(self, name, x, k, s, ceil=True):
        return self.b.add("maxpool", name, [x], kernel=k, stride=s, ceil_mode=ceil)

    def op(self, type, name, x, **attrs):
        return self.b.add(type, name, [x], **attrs)

    def head(self, prefix, x, exits, name, root, conv=None, pool=(3, 2)):
        """A side branch from ``root``: [conv 3x3, pool,] flatten, fc 10, softmax."""
        first = len(self.b.ops)
        y = x
        if conv:
            y = self.conv(f"{prefix}_conv", y, conv, 3, pad=1)
            y = self.pool(f"{prefix}_pool", y, *pool)
        y = self.op("flatten", f"{prefix}_flatten", y)
        y = self.fc(f"{prefix}_fc", y, NUM_CLASSES, relu=False)
        y = self.op("softmax", f"{prefix}_prob", y, axis=1)
        exits.append(Exit(name, root, tuple(o.name for o in self.b.ops[first:]), y))
        return y


def _alexnet(batch: int, seed: int) -> Graph:
    n = _Builder("branchy_alexnet", (batch, 3, 32, 32), seed)
    exits: list = []
    x = n.conv("conv1", "data", 32, 5, pad=2)
    x = n.pool("pool1", x, 3, 2)
    x = n.op("lrn", "norm1", x, size=5, alpha=1e-4, beta=0.75, k=1.0)
    n.head("b1", x, exits, "exit1", x, conv=32)
    x = n.conv("conv2", x, 64, 5, pad=2)
    x = n.pool("pool2", x, 3, 2)
    x = n.op("lrn", "norm2", x, size=5, alpha=1e-4, beta=0.75, k=1.0)
    n.head("b2", x, exits, "exit2", x, conv=32)
    x = n.conv("conv3", x, 96, 3, pad=1)
    n.head("b3", x, exits, "exit3", x, conv=32)
    x = n.conv("conv4", x, 96, 3, pad=1)
    n.head("b4", x, exits, "exit4", x, conv=32)
    root = x
    first = len(n.b.ops)
    x = n.conv("conv5", x, 64, 3, pad=1)
    x = n.pool("pool5", x, 3, 2)
    x = n.op("flatten", "flatten", x)
    x = n.fc("fc6", x, 256)
    x = n.op("dropout", "drop6", x)
    x = n.fc("fc7", x, 128)
    x = n.op("dropout", "drop7", x)
    x = n.fc("fc8", x, NUM_CLASSES, relu=False)
    x = n.op("softmax", "prob", x, axis=1)
    exits.append(Exit("exit5", root, tuple(o.name for o in n.b.ops[first:]), x))
    return n.b.build([e.output for e in exits], exits=exits)


def _lenet(batch: int, seed: int) -> Graph:
    n = _Builder("branchy_lenet", (batch, 1, 28, 28), seed)
    exits: list = []
    x = n.conv("conv1", "data", 6, 5, pad=2)
    x = n.pool("pool1", x, 2, 2, ceil=False)
    n.head("b1", x, exits, "exit1", x, conv=8, pool=(2, 2))
    x = n.conv("conv2", x, 16, 5)
    x = n.pool("pool2", x, 2, 2, ceil=False)
    n.head("b2", x, exits, "exit2", x)
    root = x
    first = len(n.b.ops)
    x = n.op("flatten", "flatten", x)
    x = n.fc("fc3", x, 120)
    x = n.fc("fc4", x, 84)
    x = n.fc("fc5", x, NUM_CLASSES, relu=False)
    x = n.op("softmax", "prob", x, axis=1)
    exits.append(Exit("exit3", root, tuple(o.name for o in n.b.ops[first:]), x))
    return n.b.build([e.output for e in exits], exits=exits)


MODELS = {"branchy_alexnet": _alexnet, "branchy_lenet": _lenet}


#: Parameters of at least this many elements are stored as int8, one float32 scale per output
#: channel (axis 0), which keeps B-AlexNet's file under 1 MiB; smaller ones as float16.
INT8_MIN_SIZE = 1 << 16
_SCALE = ".scale"


def pack_params(params: dict) -> dict:
    """The arrays a weights file stores for ``params`` (``{"op.w": float array}``).

    A tensor of fewer than :data:`INT8_MIN_SIZE` elements is stored as float16.  A larger one
    is stored as int8 ``q`` under its key, with ``s`` (float32, one per output channel) under
    ``key + ".scale"``: symmetric per-channel quantization, ``s = max|w_c| / 127``,
    ``q = round(w / s)``; :func:`unpack_params` gives back ``q * s``.
    """
    out = {}
    for k, w in params.items():
        w = np.asarray(w, np.float32)
        if w.size < INT8_MIN_SIZE:
            out[k] = w.astype(np.float16)
            continue
        rows = w.reshape(w.shape[0], -1)
        s = np.abs(rows).max(axis=1) / np.float32(127)
        s[s == 0] = 1.0
        out[k] = np.clip(np.rint(rows / s[:, None]), -127, 127).astype(np.int8).reshape(w.shape)
        out[k + _SCALE] = s.astype(np.float32)
    return out


def unpack_params(files) -> dict:
    """``{"op.w": float32 array}`` from the arrays of a weights file (a mapping such as an open
    ``.npz``; see :func:`pack_params`).  Keys without a dot (``meta``) are not parameters."""
    out = {}
    for k in files:
        if "." not in k or k.endswith(_SCALE):
            continue
        a = np.asarray(files[k])
        if k + _SCALE in files:
            s = np.asarray(files[k + _SCALE], np.float32)
            out[k] = (a.reshape(a.shape[0], -1).astype(np.float32) * s[:, None]).reshape(a.shape)
        else:
            out[k] = a.astype(np.float32)
    return out


def _weights_file(name: str):
    return resources.files(__package__).joinpath("weights", f"{name}.npz")


def weights_meta(name: str) -> dict:
    """The metadata stored with a model's trained weights (dataset, command, Table I)."""
    with resources.as_file(_weights_file(name)) as p, np.load(p, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def load_weights(graph: Graph, path=None) -> Graph:
    """``graph`` with the trained parameters, thresholds and accuracies of its ``.npz``
    (default: the shipped file named after the graph)."""
    if path is None:
        ctx = resources.as_file(_weights_file(graph.name))
    else:
        from contextlib import nullcontext
        ctx = nullcontext(path)
    with ctx as p, np.load(p, allow_pickle=False) as z:
        params = unpack_params({k: z[k] for k in z.files})
        meta = json.loads(str(z["meta"]))
    ops = []
    for op in graph.ops:
        new = {}
        for k, v in op.params.items():
            key = f"{op.name}.{k}"
            if key not in params or params[key].shape != v.shape:
                raise ValueError(f"load_weights({graph.name}): {key} missing or of shape "
                                 f"{None if key not in params else params[key].shape}, expected {v.shape}")
            new[k] = params[key]
        op.params = new
        ops.append(op)
    exits = [Exit(e.name, e.root, e.ops, e.output, float(meta["thresholds"][i]), float(meta["accuracy"][i]))
             for i, e in enumerate(graph.exits)]
    return Graph(graph.name, {t: graph.shape(t) for t in graph.inputs}, ops, graph.outputs, exits=exits)


def build(name: str, *, batch: int = 1, trained: bool = True, seed: int = 0) -> Graph:
    """A branchy model by name (``branchy_alexnet`` or ``branchy_lenet``)."""
    if name not in MODELS:
        raise ValueError(f"unknown branchy model {name!r}; known: {', '.join(MODELS)}")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"{name}: batch must be a positive int, got {batch!r}")
    g = MODELS[name](int(batch), seed)
    return load_weights(g) if trained else g


def branchy_alexnet(*, batch: int = 1, trained: bool = True, seed: int = 0) -> Graph:
    """B-AlexNet, (batch, 3, 32, 32) input, 5 exits (see the module docstring)."""
    return build("branchy_alexnet", batch=batch, trained=trained, seed=seed)


def branchy_lenet(*, batch: int = 1, trained: bool = True, seed: int = 0) -> Graph:
    """B-LeNet, (batch, 1, 28, 28) input, 3 exits (see the module docstring)."""
    return build("branchy_lenet", batch=batch, trained=trained, seed=seed)
