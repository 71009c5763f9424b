"""Real model files for the cloud-vs-device study (Guo 2018), and timed model loads.

**The files.**  :func:`ensure` writes a model as an ONNX file (with the
``onnx`` package, :func:`coinfer.graph.onnx_export.save`) into a cache
directory once, and reuses it: a file is reused only when its sidecar
``FILE.json`` (written after the file was complete and renamed into place)
names the same format, model and seed, and the file's size and SHA-256 match
it; otherwise it is written again.  The three models of the study, at
224x224 with the zoo's seeded He-initialised weights:

===============  ====================  ===========  =================================
model            file                  bytes        Guo's file
===============  ====================  ===========  =================================
``alexnet``      alexnet-bvlc.onnx     243,863,275  233 MB (BVLC AlexNet caffemodel)
``nin``          nin-imagenet.onnx      30,384,254  29 MB
``squeezenet``   squeezenet-1.0.onnx     5,003,798  4.8 MB
===============  ====================  ===========  =================================

AlexNet is BVLC's two-tower net (:func:`coinfer.graph.zoo.bvlc_alexnet`:
groups=2 on conv2/4/5, 60,965,224 parameters), so the file matches Guo's
233 MiB; the zoo's one-tower ``alexnet`` would be 238 MiB.

**The cache directory** (:func:`default_cache_dir`): ``$COINFER_CACHE_DIR``,
else ``$XDG_CACHE_HOME/coinfer``, else ``~/.cache/coinfer``; the files go in
its ``models/`` folder.

**Loading** (:func:`load`) is the work a device does before its first
inference: read the file, parse it (``onnx`` protobuf, then coinfer's importer
:func:`coinfer.graph.onnx.load`, relus fused), and prepare every op's weights
for the processor's layout (the op table's ``prepare``: conv filters packed for
the tiles, filter images for ``image``; ops the image kernels lack get their
``buffer`` weights).  Each part is timed.  A **cold** load first drops the
file's pages from the page cache (``fsync``, then
``posix_fadvise(POSIX_FADV_DONTNEED)``, :func:`drop_cache`), so the read
comes from storage; :func:`storage_read_bytes` (``/proc/self/io``) tells how
many bytes really came from storage.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable

from ..ops import SPECS, supports

__all__ = ["MODELS", "ModelFile", "LoadTiming", "default_cache_dir", "ensure", "load", "drop_cache",
           "storage_read_bytes", "FORMAT", "SEED", "INPUT_SIZE"]

FORMAT = 1  # bump when the files' content changes, so cached files are rewritten
SEED = 0
INPUT_SIZE = 224  # Guo's input


def _alexnet():
    from .. import zoo

    return zoo.bvlc_alexnet(input_size=INPUT_SIZE, seed=SEED)


def _zoo(name: str):
    def build():
        from .. import zoo

        return zoo.build(name, input_size=INPUT_SIZE, seed=SEED)

    return build


#: model -> (file stem, graph builder).  Stems are free model names for the edge server.
MODELS: dict = {
    "alexnet": ("alexnet-bvlc", _alexnet),
    "nin": ("nin-imagenet", _zoo("nin")),
    "squeezenet": ("squeezenet-1.0", _zoo("squeezenet")),
}


def default_cache_dir() -> str:
    """``$COINFER_CACHE_DIR``, ``$XDG_CACHE_HOME/coinfer`` or ``~/.cache/coinfer``."""
    d = os.environ.get("COINFER_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "coinfer")


@dataclass(frozen=True)
class ModelFile:
    model: str
    path: str
    nbytes: int
    sha256: str
    written: bool  # True when this call wrote it, False when it was reused

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _meta(model: str, stem: str) -> dict:
    return {"format": FORMAT, "model": model, "stem": stem, "seed": SEED, "input_size": INPUT_SIZE}


def _reusable(path: str, meta_path: str, want: dict) -> dict | None:
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in want.items()):
            return None
        if os.path.getsize(path) != meta.get("bytes") or _sha256(path) != meta.get("sha256"):
            return None
        return meta
    except (OSError, ValueError):
        return None


def ensure(model: str, cache_dir: str | None = None, *, build: Callable | None = None,
           stem: str | None = None) -> ModelFile:
    """The ONNX file of ``model`` in ``cache_dir/models``, written if missing or corrupt.

    ``model`` is a key of :data:`MODELS`, or any name with ``build`` (a function
    returning the Graph) and ``stem`` given, e.g. a small model in tests.
    """
    from ..onnx_export import save

    if build is None:
        if model not in MODELS:
            raise ValueError(f"model files: unknown model {model!r}; known: {', '.join(MODELS)}")
        stem, build = MODELS[model]
    elif not stem:
        raise ValueError("model files: a model given with build= needs a file stem")
    folder = os.path.join(cache_dir or default_cache_dir(), "models")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{stem}.onnx")
    meta_path = path + ".json"
    want = _meta(model, stem)
    meta = _reusable(path, meta_path, want)
    if meta is not None:
        return ModelFile(model, path, meta["bytes"], meta["sha256"], False)
    for p in (meta_path, path):  # the sidecar goes first: a file without one is never trusted
        if os.path.exists(p):
            os.remove(p)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        n = save(build(), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    meta = {**want, "bytes": n, "sha256": _sha256(path)}
    with open(meta_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    return ModelFile(model, path, n, meta["sha256"], True)


def drop_cache(path: str) -> None:
    """Drop ``path``'s pages from the page cache: fsync, then POSIX_FADV_DONTNEED on the whole file.
    Raises OSError where the platform has no posix_fadvise."""
    if not hasattr(os, "posix_fadvise"):
        raise OSError("model files: this platform has no posix_fadvise, so a cold load cannot be made")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def storage_read_bytes() -> int | None:
    """Bytes this process has caused to be fetched from storage (``read_bytes`` of
    ``/proc/self/io``), or None where that is not available."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class LoadTiming:
    """One timed load (seconds): ``read`` the file, ``parse`` it into a Graph, ``prepare``
    the weights for ``layout``; ``storage_bytes`` fetched from storage during the read
    (None if unknown)."""

    nbytes: int
    layout: str
    cold: bool
    read: float
    parse: float
    prepare: float
    storage_bytes: int | None

    @property
    def total(self) -> float:
        return self.read + self.parse + self.prepare


def prepare_weights(graph, layout: str) -> dict:
    """Every op's weights for ``layout`` (``buffer`` for ops the layout's kernels lack)."""
    out = {}
    for op in graph.ops:
        lay = layout if supports(graph, op, layout) else "buffer"
        out[op.name] = SPECS[op.type].kernels[lay].prepare(graph, op)
    return out


def load(path: str, layout: str = "buffer", *, cold: bool = False):
    """Read, parse and prepare the model file at ``path`` for ``layout``; ``(graph, LoadTiming)``.

    ``cold``: drop the file's pages from the page cache first (:func:`drop_cache`)."""
    import onnx

    from .. import onnx as onnx_import

    if layout not in ("buffer", "image"):
        raise ValueError(f"model files: layout must be 'buffer' or 'image', got {layout!r}")
    if cold:
        drop_cache(path)
    before = storage_read_bytes()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    t1 = time.perf_counter()
    after = storage_read_bytes()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ValueError(f"model files: {path!r} is not a valid ONNX model: {e}") from e
    del data
    graph = onnx_import.load(proto)
    t2 = time.perf_counter()
    prepare_weights(graph, layout)
    t3 = time.perf_counter()
    sb = None if before is None or after is None else after - before
    return graph, LoadTiming(os.path.getsize(path), layout, cold, t1 - t0, t2 - t1, t3 - t2, sb)
