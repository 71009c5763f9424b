"""Cost tables measured once per host and cached, so plans made from them are reproducible.

Planning from timings taken on the spot is not deterministic: two profiling
passes on a shared machine give slightly different per-op seconds, and a
planner that compares near-equal candidates may then choose differently.
Where plans must be the same every time (a sweep run by different schedulers,
:mod:`coinfer.graph.studies.sweep`; the per-call answers of
:func:`coinfer.graph.latency`), the costs are measured **once per host and
model**, kept as a JSON file, and every later plan reads that file:

- ``codl``: a :class:`~.measured.MeasuredCosts` profiling pass of the graph on
  :meth:`SoC.host() <coinfer.hw.SoC.host>` (:meth:`MeasuredCosts.to_json`);
- ``edgent``: host seconds of every op on the device's and the edge's threads
  of a :class:`~coinfer.graph.edgent.runtime.CoRunner`
  (:attr:`MeasuredSideCosts.host <.sides.MeasuredSideCosts>`; branchy models only).

A table is ``{"kind", "version", "host": {"host", "isa", "coinfer"}, "graph",
"digest", "data"}`` in ``<cache dir>/costs/<kind>-<graph name>-<digest[:16]>.json``;
the digest is the graph's (:func:`coinfer.graph.edge.catalog.graph_digest`:
ops, attributes, shapes and weights).  It is reused while the host name, the
ISA the kernels are compiled for (``coinfer.kernels.isa()``) and coinfer's
version match, else measured again (``refresh=True`` forces it).  The cache
directory is ``$COINFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/coinfer``, else
``~/.cache/coinfer``.  Files are JSON, written to a temporary name and renamed.
"""
from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path

__all__ = ["KINDS", "host_info", "cache_dir", "table", "codl_costs", "edgent_host"]

KINDS = ("codl", "edgent")
VERSION = 1


@functools.lru_cache(maxsize=None)
def host_info() -> dict:
    """``{"host": host name, "isa": coinfer.kernels.isa(), "coinfer": version}`` of this process."""
    from importlib.metadata import PackageNotFoundError, version

    from ...kernels import isa

    try:
        v = version("coinfer")
    except PackageNotFoundError:  # run from a source tree that is not installed
        v = "unknown"
    return {"host": socket.gethostname(), "isa": isa(), "coinfer": v}


def cache_dir() -> Path:
    """``$COINFER_CACHE_DIR``, ``$XDG_CACHE_HOME/coinfer`` or ``~/.cache/coinfer``: the one
    per-machine cache directory (:func:`coinfer.hw.host.cache_dir`)."""
    from ...hw.host import cache_dir as host_cache_dir

    return host_cache_dir()


def _path(kind: str, graph, digest: str, where) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in graph.name)[:64]
    return Path(where if where is not None else cache_dir()) / "costs" / f"{kind}-{safe}-{digest[:16]}.json"


def _read(path: Path, kind: str, digest: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (isinstance(doc, dict) and doc.get("kind") == kind and doc.get("version") == VERSION
          and doc.get("digest") == digest and doc.get("host") == host_info() and isinstance(doc.get("data"), dict))
    return doc if ok else None


def _measure(kind: str, graph, repeats: int | None, progress: bool) -> dict:
    if kind == "codl":
        from ...hw import SoC
        from .measured import MeasuredCosts

        with SoC.host() as soc:
            return MeasuredCosts(graph, soc, repeats=repeats or 3, progress=progress).to_json()
    from ..edgent.runtime import CoRunner
    from .sides import MeasuredSideCosts

    with CoRunner(graph) as runner:
        return {"host": MeasuredSideCosts(runner, repeats=repeats or 9, progress=progress).host}


def table(kind: str, graph, *, refresh: bool = False, progress: bool = False, repeats: int | None = None,
          where=None) -> dict:
    """The ``kind`` cost table of ``graph`` on this host: read from the cache, or measured
    now (``repeats`` per measurement, progress on stderr) and cached.  ``where``: another
    cache directory."""
    if kind not in KINDS:
        raise ValueError(f"cost table: kind must be one of {KINDS}, got {kind!r}")
    if kind == "edgent" and not graph.exits:
        raise ValueError(f"cost table: model {graph.name!r} has no exits; the edgent table is for branchy models")
    from ..edge.catalog import graph_digest

    digest = graph_digest(graph)
    path = _path(kind, graph, digest, where)
    if not refresh:
        doc = _read(path, kind, digest)
        if doc is not None:
            return doc
    doc = {"kind": kind, "version": VERSION, "host": host_info(), "graph": graph.name, "digest": digest,
           "data": _measure(kind, graph, repeats, progress)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
    return doc


def _data(doc: dict, kind: str, graph) -> dict:
    if not isinstance(doc, dict) or doc.get("kind") != kind or doc.get("version") != VERSION:
        raise ValueError(f"cost table: expected a version {VERSION} {kind!r} table")
    if doc.get("graph") != graph.name:
        raise ValueError(f"cost table: the table is of graph {doc.get('graph')!r}, not {graph.name!r}")
    return doc["data"]


def codl_costs(graph, doc: dict | None = None):
    """A :class:`~.measured.MeasuredCosts` (host seconds) from ``graph``'s ``codl`` table
    (``doc``, or this host's, measured if not cached)."""
    from .measured import MeasuredCosts

    return MeasuredCosts.from_json(_data(doc if doc is not None else table("codl", graph), "codl", graph), graph)


def edgent_host(graph, doc: dict | None = None) -> dict:
    """``{op: {"device": host s, "edge": host s}}`` from ``graph``'s ``edgent`` table."""
    host = _data(doc if doc is not None else table("edgent", graph), "edgent", graph)["host"]
    missing = [op.name for op in graph.ops if op.name not in host]
    if missing:
        raise ValueError(f"cost table: no host seconds for ops {missing[:3]} of graph {graph.name!r}")
    return host
