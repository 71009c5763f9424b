"""Early exits (BranchyNet, Teerapittayanon et al., ICPR 2016).

A branchy model's :attr:`Graph.exits <coinfer.graph.ir.Graph>` is a list of
:class:`Exit`, shallowest first.  Exit ``i`` reads the trunk tensor ``root``,
runs its own ``ops`` (the branch, in order) and answers with ``output``, a
softmax over the classes.  The last exit's ``ops`` are the trunk's tail after
the previous exit's root, ending in the main classifier.

At run time (BranchyNet) a sample leaves at the first exit whose softmax
``y`` has entropy ``-sum_c y_c ln y_c`` (nats) below that exit's
``threshold``; the last exit always answers (:func:`early_exit`).  Edgent
instead right-sizes the model: a plan's exit ``i`` runs the sub-model that
ends at exit ``i`` (:func:`submodel`) and answers there.

``Exit.accuracy`` is the exit's accuracy alone, measured on held-out data with
coinfer's kernels (:func:`evaluate`), or None for untrained weights.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import interpret
from ..ir import Graph

__all__ = ["Exit", "entropy", "check_exits", "submodel_ops", "submodel", "early_exit", "evaluate",
           "ExitReport", "with_exits"]


@dataclass(frozen=True)
class Exit:
    """One exit: ``name``, trunk tensor ``root`` it branches from, its ``ops`` (op names,
    in order), the softmax tensor ``output`` it answers with, the entropy
    ``threshold`` (nats) below which a sample leaves here, and its measured
    held-out ``accuracy`` (a fraction, or None)."""

    name: str
    root: str
    ops: tuple
    output: str
    threshold: float = 0.0
    accuracy: float | None = None


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of ``p`` (N, C) of probabilities; 0 ln 0 counts 0."""
    p = np.asarray(p, np.float64)
    if p.ndim != 2:
        raise ValueError(f"entropy: probabilities must be 2-D (N, C), got shape {p.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -t.sum(axis=1)


def check_exits(graph: Graph) -> list[Exit]:
    """``graph.exits`` validated: Exit instances naming the graph's ops and tensors,
    each branch reading its root, outputs 2-D.  Raises ValueError naming the exit."""
    exits = list(graph.exits)
    if not exits:
        raise ValueError(f"graph {graph.name!r} has no exits (not a branchy model)")
    names = {op.name for op in graph.ops}
    for e in exits:
        if not isinstance(e, Exit):
            raise TypeError(f"graph {graph.name!r}: exits must be Exit instances, got {type(e).__name__}")
        who = f"graph {graph.name!r} exit {e.name!r}"
        bad = [o for o in e.ops if o not in names]
        if bad or not e.ops:
            raise ValueError(f"{who}: ops must be non-empty op names of the graph; unknown: {bad}")
        if e.root not in graph.tensors or e.output not in graph.tensors:
            raise ValueError(f"{who}: root {e.root!r} and output {e.output!r} must be graph tensors")
        if e.root not in graph.op(e.ops[0]).inputs:
            raise ValueError(f"{who}: its first op {e.ops[0]!r} must read the root {e.root!r}")
        if graph.op(e.ops[-1]).output != e.output or len(graph.shape(e.output)) != 2:
            raise ValueError(f"{who}: its last op must produce the 2-D output {e.output!r}")
        if not np.isfinite(e.threshold) or e.threshold < 0:
            raise ValueError(f"{who}: threshold must be a finite entropy >= 0 nats, got {e.threshold!r}")
    return exits


def submodel_ops(graph: Graph, exit: Exit | int) -> list[str]:
    """Names of the ops the exit's output depends on, in the graph's topological order."""
    e = graph.exits[exit] if isinstance(exit, (int, np.integer)) else exit
    need, stack = set(), [e.output]
    while stack:
        t = stack.pop()
        p = graph.tensors[t].producer
        if p is not None and p not in need:
            need.add(p)
            stack.extend(graph.op(p).inputs)
    return [op.name for op in graph.ops if op.name in need]


def submodel(graph: Graph, exit: Exit | int) -> Graph:
    """The sub-model that ends at ``exit`` (Edgent's right-sized model), one output."""
    e = graph.exits[exit] if isinstance(exit, (int, np.integer)) else exit
    ops = [graph.op(n) for n in submodel_ops(graph, e)]
    return Graph(f"{graph.name}/{e.name}", {t: graph.shape(t) for t in graph.inputs}, ops, [e.output])


def early_exit(graph: Graph, x: np.ndarray, kernels=None) -> tuple[np.ndarray, int]:
    """BranchyNet inference of one sample: ``(probabilities (1, C), exit index)``.

    Runs the trunk up to each exit's root, then its branch; leaves at the first
    exit whose entropy is below its threshold, or at the last.  ``kernels``
    defaults to ``coinfer.kernels.buffer``.
    """
    if kernels is None:
        from ...kernels import buffer as kernels
    exits = check_exits(graph)
    if len(graph.inputs) != 1 or graph.shape(graph.inputs[0])[0] != 1:
        raise ValueError(f"early_exit: graph {graph.name!r} must have one input of batch 1")
    env = {graph.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}
    if env[graph.inputs[0]].shape != graph.shape(graph.inputs[0]):
        raise ValueError(f"early_exit: input must have shape {graph.shape(graph.inputs[0])}, "
                         f"got {env[graph.inputs[0]].shape}")
    for i, e in enumerate(exits):
        for name in submodel_ops(graph, e):
            if graph.op(name).output not in env:
                op = graph.op(name)
                env[op.output] = interpret.run_op(graph, op, [env[t] for t in op.inputs], kernels)
        p = env[e.output]
        if i == len(exits) - 1 or entropy(p)[0] < e.threshold:
            return p, i
    raise AssertionError("unreachable")


@dataclass
class ExitReport:
    """BranchyNet Table I style: per exit, accuracy alone; under the thresholds,
    the fraction of samples leaving there; and the overall accuracy."""

    names: list
    samples: int
    accuracy_alone: list
    fractions: list
    overall: float
    thresholds: list

    def table(self) -> str:
        lines = [f"{'exit':<8} {'threshold':>10} {'acc alone':>10} {'leave here':>11}"]
        for n, th, a, f in zip(self.names, self.thresholds, self.accuracy_alone, self.fractions):
            lines.append(f"{n:<8} {th:>10.4f} {100 * a:>9.2f}% {100 * f:>10.1f}%")
        lines.append(f"overall accuracy under the thresholds: {100 * self.overall:.2f}% "
                     f"on {self.samples} held-out samples")
        return "\n".join(lines)


def exit_probabilities(graph: Graph, x: np.ndarray, kernels=None, batch: int = 100) -> list[np.ndarray]:
    """Every exit's softmax for samples ``x`` (N, ...) with ``kernels`` (default buffer):
    a list of (N, C) arrays, one per exit.  Runs the whole graph ``batch`` samples at a time."""
    if kernels is None:
        from ...kernels import buffer as kernels
    exits = check_exits(graph)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    outs = [[] for _ in exits]
    whole = Graph(graph.name, {t: graph.shape(t) for t in graph.inputs}, graph.ops, [e.output for e in exits])
    for a in range(0, n, batch):
        xb = x[a:a + batch]
        gb = whole.with_batch(xb.shape[0])
        ys = interpret.run(gb, xb, kernels)
        ys = ys if isinstance(ys, dict) else {exits[0].output: ys}
        for i, e in enumerate(exits):
            outs[i].append(np.asarray(ys[e.output]))
    return [np.concatenate(o) for o in outs]


def evaluate(graph: Graph, x: np.ndarray, labels: np.ndarray, kernels=None,
             thresholds=None) -> ExitReport:
    """Measure ``graph``'s exits on held-out samples with coinfer's kernels.

    ``x`` (N, C, H, W) float32, ``labels`` (N,) ints.  ``thresholds`` default
    to the exits' own.
    """
    exits = check_exits(graph)
    labels = np.asarray(labels).astype(np.int64).ravel()
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"evaluate: {x.shape[0]} samples but {labels.shape[0]} labels")
    th = [e.threshold for e in exits] if thresholds is None else list(thresholds)
    probs = exit_probabilities(graph, x, kernels)
    right = [p.argmax(axis=1) == labels for p in probs]
    ents = [entropy(p) for p in probs]
    left = np.ones(labels.shape[0], bool)
    fractions, correct = [], 0
    for i in range(len(exits)):
        take = left if i == len(exits) - 1 else left & (ents[i] < th[i])
        fractions.append(float(take.mean()))
        correct += int((take & right[i]).sum())
        left &= ~take
    return ExitReport([e.name for e in exits], int(labels.shape[0]), [float(r.mean()) for r in right],
                      fractions, correct / labels.shape[0], [float(t) for t in th])


def with_exits(graph: Graph, **fields) -> Graph:
    """A copy of ``graph`` whose exits have ``fields`` replaced, each a list with one
    value per exit (e.g. ``threshold=[...]``, ``accuracy=[...]``)."""
    exits = check_exits(graph)
    new = []
    for i, e in enumerate(exits):
        new.append(replace(e, **{k: v[i] for k, v in fields.items()}))
    g = graph.with_batch(graph.shape(graph.inputs[0])[0])
    g.exits = new
    return g
