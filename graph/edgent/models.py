"""Branchy models: B-AlexNet (Edgent) and B-LeNet (BranchyNet), with trained weights.

``branchy_alexnet()``: BranchyNet's AlexNet for 32x32x3 CIFAR-10 input, with
five exits as in Edgent (MECOMM 2018): side branches after norm1, norm2, conv3
and conv4, and the main classifier.  ``branchy_lenet()``: B-LeNet for 28x28x1
input, three exits.  Their graphs are defined in the model zoo
(:data:`coinfer.graph.zoo.BRANCHY`, where the layers are listed); this module
holds their weights files: packing, loading, metadata.

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

from ..ir import Graph
from ..zoo import BRANCHY, NUM_CLASSES
from .exits import Exit

__all__ = ["branchy_alexnet", "branchy_lenet", "MODELS", "NUM_CLASSES", "build", "load_weights", "weights_meta",
           "pack_params", "unpack_params", "INT8_MIN_SIZE"]

#: The branchy models by name, ``MODELS[name](batch, seed)``: their graph definitions are the
#: zoo's (:data:`coinfer.graph.zoo.BRANCHY`), with He-initialised weights.
MODELS = BRANCHY


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
