"""Models an edge server serves, by name or content hash, and the graph digest both sides check.

A **model id** (an OPEN frame's text) is either a name, ``[A-Za-z0-9_.-]{1,128}``:
a zoo model (:func:`coinfer.graph.zoo.names`), a branchy model
(``branchy_alexnet``, ``branchy_lenet``) or the file stem of an ONNX file
the server was given, or a content hash, ``sha256:`` + 64 lowercase hex
digits: the SHA-256 of a served ONNX file's bytes, or the graph digest of a
model the server has loaded.

The **graph digest** (:func:`graph_digest`) is the SHA-256 of a canonical
description of a :class:`~coinfer.graph.ir.Graph`: its input names and shapes,
every op (name, type, inputs, outputs, attributes as canonical JSON, weights
as name, shape and float32 little-endian bytes) in topological order, the
outputs and the exits (name, root, ops, output, threshold).  The graph's own
name is left out, so the same model read from two files has one digest.  The
server sends it in READY; a client that built the model itself compares it
with its own, so the two halves of a split model are known to hold the same
weights.

Models load as the rest of coinfer loads them: zoo models at their default
input size with relus fused (:func:`coinfer.graph.ir.fuse_relu`), branchy
models with their trained weights, ONNX files through
:func:`coinfer.graph.onnx.load` (fused).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["graph_digest", "file_sha256", "load", "check_model_id", "Catalog", "UnknownModel"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")


class UnknownModel(LookupError):
    pass


def check_model_id(model_id: str) -> str:
    """``model_id`` if it is a well-formed name or content hash, else ValueError."""
    if not isinstance(model_id, str) or not (_NAME.fullmatch(model_id) or _HASH.fullmatch(model_id)):
        raise ValueError(f"model id must be a name [A-Za-z0-9_.-]{{1,128}} or 'sha256:' + 64 lowercase hex "
                         f"digits, got {model_id!r}")
    return model_id


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_plain(e) for e in v]
    if isinstance(v, dict):
        return {str(k): _plain(e) for k, e in v.items()}
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    return v


def graph_digest(graph) -> str:
    """Hex SHA-256 of the graph's canonical description (see the module docstring)."""
    h = hashlib.sha256()

    def put(obj) -> None:
        b = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":")).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    put(["coinfer-graph", 1, [[t, list(graph.shape(t))] for t in graph.inputs]])
    for op in graph.ops:
        put([op.name, op.type, list(op.inputs), list(op.outputs), op.attrs, sorted(op.params)])
        for k in sorted(op.params):
            w = np.ascontiguousarray(op.params[k], dtype="<f4")
            put([k, list(w.shape)])
            h.update(w.reshape(-1).view(np.uint8))
    put(["outputs", list(graph.outputs)])
    put(["exits", [[e.name, e.root, list(e.ops), e.output, float(e.threshold)] for e in graph.exits]])
    return h.hexdigest()


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(spec):
    """A Graph from a zoo or branchy name, or an ``.onnx`` path (see the module docstring)."""
    from .. import zoo
    from ..edgent.models import MODELS, build
    from ..ir import fuse_relu

    spec = os.fspath(spec)
    if spec in MODELS:
        return build(spec)
    if spec in zoo.names():
        return fuse_relu(zoo.build(spec))
    if spec.endswith(".onnx"):
        from .. import onnx as onnx_import

        return fuse_relu(onnx_import.load(spec))
    raise UnknownModel(f"unknown model {spec!r}; known: {', '.join(list(MODELS) + zoo.names())} or an .onnx file")


class Catalog:
    """What a server serves: every zoo and branchy model, plus ``onnx_paths``.

    ``get(model_id) -> (graph, digest)`` loads on first use and keeps the
    ``max_models`` most recently used graphs (a connection that holds a graph
    keeps it alive after eviction).  Thread-safe; loads are serialised.
    """

    def __init__(self, onnx_paths=(), *, max_models: int = 4):
        from .. import zoo
        from ..edgent.models import MODELS

        if max_models < 1:
            raise ValueError(f"Catalog: max_models must be >= 1, got {max_models}")
        self.max_models = int(max_models)
        self.names: dict = {n: n for n in list(MODELS) + zoo.names()}  # name -> load spec
        self.hashes: dict = {}  # content hash -> name
        if onnx_paths:
            from .. import onnx as _onnx  # noqa: F401 - ImportError naming the extra, at start, not at OPEN
        for p in onnx_paths:
            p = os.fspath(p)
            if not os.path.isfile(p):
                raise ValueError(f"edge-server: ONNX file {p!r} does not exist")
            stem = os.path.splitext(os.path.basename(p))[0]
            if not _NAME.fullmatch(stem) or stem in self.names:
                raise ValueError(f"edge-server: ONNX file {p!r}: its name {stem!r} must be a free model name "
                                 "[A-Za-z0-9_.-] (not a zoo or branchy name, not given twice)")
            self.names[stem] = p
            self.hashes[file_sha256(p)] = stem
        self._loaded: OrderedDict = OrderedDict()  # name -> (graph, digest)
        self._lock = threading.Lock()

    def resolve(self, model_id: str) -> str:
        """The name a model id stands for; UnknownModel if none."""
        check_model_id(model_id)
        if model_id.startswith("sha256:"):
            name = self.hashes.get(model_id[7:])
            if name is None:
                raise UnknownModel(f"no served model has content hash {model_id} (ONNX files given to the "
                                   "server, and models loaded so far, are known by hash)")
            return name
        if model_id not in self.names:
            raise UnknownModel(f"unknown model {model_id!r}")
        return model_id

    def get(self, model_id: str):
        """``(graph, hex digest, first_load)`` for a model id."""
        with self._lock:
            name = self.resolve(model_id)
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return (*self._loaded[name], False)
            g = load(self.names[name])
            d = graph_digest(g)
            self.hashes[d] = name
            self._loaded[name] = (g, d)
            while len(self._loaded) > self.max_models:
                self._loaded.popitem(last=False)
            return g, d, True
