"""Lowering: the ops of a graph as kernel calls on regions of their outputs, in either layout.

:func:`prepare` computes, once per graph, what every planner, cost source and
executor of that graph shares: the planner's view (:func:`~.view.view_of`) and
each op's weights converted for each layout (conv weights packed for the tiles of
either layout; depthwise and FC images for image kernels).  :func:`call` then runs an op on
input arrays into ``out`` over ``rows`` x ``channels`` of the output, through
the op table (:mod:`coinfer.graph.ops`), so a strategy differs only in where
each region runs; :func:`bind` makes the same call a native call, for a native
program (``coinfer.hw.dispatch``).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...kernels import LAYOUTS
from ...kernels.entry import NoEntry
from ..ops import SPECS
from .view import GraphView, view_of

if TYPE_CHECKING:
    from ..ir import Graph


@dataclass(frozen=True)
class Prepared:
    """A graph's view and its ops' weights per layout, computed once.

    ``weights[op name][layout]`` is the dict the op's kernel call takes (``w``,
    ``b``).  Weights are read-only and shared by every executor built on it.
    """

    graph: "Graph"
    view: GraphView
    weights: dict
    layouts: tuple

    def check(self, graph, layouts, who: str) -> None:
        """ValueError unless this was prepared for ``graph`` with every layout in ``layouts``."""
        if self.graph is not graph:
            raise ValueError(f"{who}: prepared is for graph {self.graph.name!r}, not this graph {graph.name!r}")
        missing = [lay for lay in layouts if lay not in self.layouts]
        if missing:
            raise ValueError(f"{who}: prepared lacks the weights of layout(s) {missing}")


_WEIGHTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # graph -> {op name: buffer weights}
_WEIGHTS_LOCK = threading.Lock()


def buffer_weights(graph) -> dict:
    """Every op's weights prepared once for the buffer kernels (conv filters packed for the
    tiles, :mod:`coinfer.graph.ops`), kept while the graph lives; ops then run without
    packing their filters on every call (as a deployed model does after its load)."""
    with _WEIGHTS_LOCK:
        w = _WEIGHTS.get(graph)
        if w is None:
            w = {op.name: SPECS[op.type].kernels["buffer"].prepare(graph, op) for op in graph.ops}
            _WEIGHTS[graph] = w
        return w


def prepare(graph, layouts=LAYOUTS) -> Prepared:
    """The view of ``graph`` and every op's weights for each layout in ``layouts``."""
    layouts = tuple(layouts)
    weights = {op.name: {lay: SPECS[op.type].kernels[lay].prepare(graph, op) for lay in layouts}
               for op in graph.ops}
    return Prepared(graph, view_of(graph), weights, layouts)


def region_kwargs(graph, op, region) -> dict:
    """``rows=`` / ``channels=`` for :func:`call` computing ``region`` = (r0, r1, c0, c1);
    empty for ops that run whole.  Channels are named only when they are not all."""
    oshape = graph.shape(op.output)
    kind = SPECS[op.type].region
    if kind == "whole":
        return {}
    if kind == "vector":
        return {"channels": (region[2], region[3])}
    if len(oshape) != 4:
        return {}
    rows, chans = (region[0], region[1]), (region[2], region[3])
    return {"rows": rows} if chans == (0, oshape[1]) else {"rows": rows, "channels": chans}


def call(graph, op, lay: str, weights: dict, ins: list, out: np.ndarray, rows=None, channels=None) -> None:
    """Compute ``rows`` x ``channels`` of ``op``'s output into ``out`` with the ``lay`` kernel set.

    ``weights`` is ``prepare(graph).weights[op.name][lay]``; ``rows`` applies to 4-D outputs only.
    """
    reg = {}
    if rows is not None and len(graph.shape(op.output)) == 4:
        reg["rows"] = rows
    if channels is not None:
        reg["channels"] = channels
    SPECS[op.type].kernels[lay].call(graph, op, weights, ins, out, reg)


def bind(graph, op, lay: str, weights: dict, ins: list, out: np.ndarray, rows=None, channels=None):
    """:func:`call` bound instead of run: a :class:`coinfer.kernels.entry.NativeCall` that computes the
    same region of ``op`` into ``out`` when a native program runs it (reading ``ins`` then).

    Raises :class:`coinfer.kernels.entry.NoEntry` naming the op when its ``lay`` kernels have no
    native entry for this instance, or an array is not C-contiguous (a native call reads its
    arrays in place).
    """
    spec = SPECS[op.type].kernels[lay]
    if spec.native is None:
        raise NoEntry(f"op {op.name!r} ({op.type}) has no native entry on {lay}")
    for a in (*ins, out):
        if not a.flags.c_contiguous:
            raise NoEntry(f"op {op.name!r} ({op.type}): an array is not C-contiguous")
    reg = {}
    if rows is not None and len(graph.shape(op.output)) == 4:
        reg["rows"] = rows
    if channels is not None:
        reg["channels"] = channels
    try:
        return spec.native(graph, op, weights, ins, out, reg)
    except NoEntry as e:
        raise NoEntry(f"op {op.name!r} ({op.type}) on {lay}: {e}") from None
