"""A plan's latency as the executor runs it: its compiled program, priced task by task.

The chain cost model (:mod:`.costmodel`) prices chains for the planner's
search.  A whole-model prediction (CoDL, MobiSys 2022, Sec. 5: compute,
sharing and dispatch) must price what actually runs, so :func:`predict` compiles
the plan into the same program of SoC calls the executor replays
(:class:`~.program.Compiler`: every transform, map, unmap, sync and kernel call,
with the syncs derived from what each task reads and writes, over the same
arena), then times that program:

- the caller copies the input in (``host_in``), then submits the program's
  steps one by one (``submit`` seconds each);
- each processor thread takes its tasks in order; a task starts once it is
  submitted, its thread is free and its dependencies are done, plus the
  **dispatch gap** of the path by which it became ready (:data:`PATHS`):
  ``step`` (the next kernel of a command list), ``next`` (the next queue entry
  of a busy thread), ``wake`` (an idle thread woken by the submission),
  ``cross`` (a thread woken by the other processor finishing what it waits on);
- a task lasts what the cost source predicts: the kernel of an op region on
  ``cpu``, ``gpu`` (images) or ``gpu_buffer``, concurrent when its chain has both
  processors computing; a transform, map or unmap of its bytes; a sync nothing
  beyond its gap;
- once the last task ends the caller wakes and checks every task
  (``main_wake``: a constant plus one per task) and copies the outputs out
  (``host_out``).

The dispatch gaps are per-path constants measured from real runs' traces
(:func:`trace_gaps` classifies every task of a trace by path, as
:func:`predict` does), so they follow whatever runtime dispatches the tasks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .plan import Plan
from .program import Compiler, image_tensors
from .regions import chain_regions
from .view import GraphView, view_of

#: Dispatch paths, each with one constant gap (seconds); see the module docstring.
PATHS = ("submit", "step", "next", "wake", "cross", "main_wake")
#: Gaps used when a cost source has no measured ones (this project's runtime on an idle
#: 2-core host; :func:`trace_gaps` measures them).
DEFAULT_GAPS = {"submit": 1e-5, "step": 7e-6, "next": 2e-5, "wake": 6e-5, "cross": 3e-5, "main_wake": 5e-5}
#: Host copies of the input and the output: (fixed s, s per byte).
DEFAULT_HOST_COPY = (5e-6, 1.5e-10)


@dataclass
class Timeline:
    """A predicted run: ``total_s`` (input copy to output copy, as ``Executor.last_wall``),
    busy seconds by kind (``compute`` per processor, ``sharing``), the dispatch gaps
    on the critical path's threads (``dispatch_s``), and the end of each task."""

    total_s: float
    compute_s: dict = field(default_factory=dict)
    sharing_s: float = 0.0
    dispatch_s: float = 0.0
    tasks: list = field(default_factory=list)  # (processor, kind, op, start, end)


class _Rec:
    """Records the compiler's SoC calls: (kind, processor, deps, payload) per task."""

    def __init__(self):
        self.steps: list = []

    def _add(self, kind, on, after, payload):
        self.steps.append((kind, on, [int(i) for i in after], payload))
        return len(self.steps) - 1

    def transform(self, src, *, to, out, rows, channels, op, on, after):
        n, w = (out.shape[0], out.shape[3]) if to == "buffer" else (src.shape[0], src.shape[3])
        nbytes = 4 * n * (rows[1] - rows[0]) * w * (channels[1] - channels[0])
        return self._add("transform_to_" + to, on, after, nbytes)

    def map(self, region, *, op, on, after):
        return self._add("map", on, after, _span_bytes(region))

    def unmap(self, region, *, op, on, after):
        return self._add("unmap", on, after, _span_bytes(region))

    def sync(self, events, *, on, op):
        return self._add("sync", on, events, 0)

    def run(self, proc, op, fn, *, after, nbytes, meta, **kw):
        return self._add("compute", proc, after, [meta])

    def run_list(self, proc, steps, *, after):
        return self._add("compute", proc, after, [s[5] for s in steps])

    def chain_end(self):
        pass


def _span_bytes(a) -> int:
    if a.size == 0:
        return 0
    if a.flags.c_contiguous:
        return a.nbytes
    return a.itemsize + sum((n - 1) * abs(s) for n, s in zip(a.shape, a.strides))


def compile_tasks(graph, plan: Plan, view: GraphView | None = None) -> list:
    """The program the executor would run for ``plan``, as ``(kind, processor, deps,
    payload)`` per task (one-thread pools): ``compute`` tasks carry a list of
    ``{"op", "region", "layout", "both"}`` (a command list), sharing tasks their bytes.
    The arena is planned as the executor plans it (no memory is written)."""
    from .executor import arena_for

    view = view if view is not None else view_of(graph)
    regions = [chain_regions(view, c) for c in plan.chains]
    both = {n: reg.cpu.active() and reg.gpu.active() for c, reg in zip(plan.chains, regions) for n in c.ops}
    arena, buf, img = arena_for(graph, plan, image_tensors(view, plan, regions))
    try:
        arrays = {**{(t, "buffer"): a for t, a in buf.items()}, **{(t, "image"): a for t, a in img.items()}}

        def step(lay, name, region):
            meta = {"op": name, "region": tuple(region), "layout": lay, "both": both[name]}
            return (name, None, {}, {}, 0, meta)

        rec = _Rec()
        Compiler(graph, view, plan, rec, arrays, step, {"cpu": 1, "gpu": 1}, regions).compile()
        return rec.steps
    finally:
        del arrays, buf, img
        arena.close()


# ---------------------------------------------------------------------------
# Pricing


class _Prices:
    """What a task costs, from a cost source: a predictor-backed source answers the kernel
    and sharing seconds without dispatch (``kernel_seconds``, ``sharing_seconds``) and
    its measured ``gaps``; any other :class:`~coinfer.graph.costs.source.CostSource`
    has its per-task dispatch (``task_s``) taken off its answers."""

    def __init__(self, costs, view: GraphView):
        self.costs, self.view = costs, view
        self.gaps = {**DEFAULT_GAPS, **(getattr(costs, "gaps", None) or {})}
        self.host_copy = tuple(getattr(costs, "host_copy", None) or DEFAULT_HOST_COPY)
        self.main_wake = tuple(getattr(costs, "main_wake", None) or (self.gaps["main_wake"], 0.0))
        self._task = dict(getattr(costs, "task_s", None) or {})
        self._kernel = getattr(costs, "kernel_seconds", None)
        self._share = getattr(costs, "sharing_seconds", None)

    def kernel(self, proc: str, meta: dict) -> float:
        op = self.view.op(meta["op"])
        key = "cpu" if proc == "cpu" else ("gpu" if meta["layout"] == "image" else "gpu_buffer")
        if self._kernel is not None:
            return self._kernel(op, key, meta["region"], meta["both"])
        t = self.costs.compute(op, key, meta["region"], meta["both"])
        return max(0.0, t - self._task.get("cpu" if proc == "cpu" else "gpu", 0.0))

    def sharing(self, kind: str, proc: str, nbytes: int) -> float:
        if kind == "sync":
            if self._share is not None:
                return self._share("sync", 0)
            return max(0.0, self.costs.sync() - self._task.get(proc, 0.0))
        if self._share is not None:
            return self._share(kind, nbytes)
        f = self.costs.transform if kind.startswith("transform") else getattr(self.costs, kind)
        return max(0.0, f(nbytes) - self._task.get(proc, 0.0)) if nbytes else 0.0


def predict(graph, plan: Plan, costs, *, view: GraphView | None = None) -> Timeline:
    """The predicted :class:`Timeline` of one run of ``plan`` (see the module docstring)."""
    view = view if view is not None else view_of(graph)
    tasks = compile_tasks(graph, plan, view)
    pr = _Prices(costs, view)
    gap = pr.gaps
    fixed, per_byte = pr.host_copy
    in_bytes = sum(4 * int(np.prod(graph.shape(t))) for t in graph.inputs)
    out_bytes = sum(4 * int(np.prod(graph.shape(t))) for t in graph.outputs)
    now = fixed + per_byte * in_bytes  # the caller's clock: input copied
    free = {"cpu": None, "gpu": None}  # end of each thread's last task (None: never busy)
    ends, out = [], Timeline(0.0, {"cpu": 0.0, "gpu": 0.0})
    for kind, proc, deps, payload in tasks:
        now += gap["submit"]
        dep_end = max((ends[d] for d in deps), default=0.0)
        prev = free[proc]
        ready = max(now, prev or 0.0, dep_end)
        if prev is not None and prev >= max(now, dep_end):
            path = "next"
        elif dep_end > max(now, prev or 0.0):
            path = "cross"
        else:
            path = "wake"
        start = ready + gap[path]
        out.dispatch_s += gap[path]
        if kind == "compute":
            t = start
            for i, meta in enumerate(payload):
                if i:
                    t += gap["step"]
                    out.dispatch_s += gap["step"]
                d = pr.kernel(proc, meta)
                out.compute_s[proc] += d
                out.tasks.append((proc, kind, meta["op"], t, t + d))
                t += d
            end = t
        else:
            d = pr.sharing(kind, proc, payload)
            out.sharing_s += d
            end = start + d
            out.tasks.append((proc, kind, "", start, end))
        ends.append(end)
        free[proc] = end
    last = max([now] + [e for e in free.values() if e is not None])
    wake = pr.main_wake[0] + pr.main_wake[1] * len(tasks)  # the caller checks every task once woken
    out.dispatch_s += wake
    out.total_s = last + wake + fixed + per_byte * out_bytes
    return out


# ---------------------------------------------------------------------------
# Measuring the gaps


def trace_gaps(trace) -> dict:
    """{path: [seconds, ...]} of every task of one executor run's ``trace`` (a
    :class:`~coinfer.hw.Trace` or its task list), classified as :func:`predict`
    classifies them, plus ``host_in``/``host_out`` as (bytes, seconds) pairs.

    A task's gap is its start minus the latest of its submission, its thread's
    previous end and its dependencies' ends; ``submit`` gaps are the differences
    between successive submission times of queue entries."""
    tasks = list(trace.tasks if hasattr(trace, "tasks") else trace)
    by_id = {t.id: t for t in tasks}
    out: dict = {p: [] for p in PATHS}
    out["host_in"], out["host_out"] = [], []
    prev_end: dict = {}
    subs = []
    work = [t for t in tasks if t.processor != "host"]
    host = [t for t in tasks if t.processor == "host"]
    for t in sorted(work, key=lambda t: t.start):
        key = (t.processor, t.thread)
        p_end = prev_end.get(key)
        prev_end[key] = t.end
        deps = [by_id[d] for d in t.deps if d in by_id]
        sub = t.submitted if t.submitted is not None else t.start
        listed = (t.kind == "compute" and len(deps) == 1 and deps[0].kind == "compute"
                  and deps[0].processor == t.processor and deps[0].submitted == t.submitted
                  and p_end is not None and abs(deps[0].end - p_end) < 1e-12)
        if listed:
            out["step"].append(t.start - p_end)
            continue
        subs.append(sub)
        dep_end = max((d.end for d in deps), default=-np.inf)
        ready = max(sub, p_end if p_end is not None else -np.inf, dep_end)
        if p_end is not None and p_end >= max(sub, dep_end):
            path = "next"
        elif dep_end > max(sub, p_end if p_end is not None else -np.inf):
            path = "cross"
        else:
            path = "wake"
        out[path].append(t.start - ready)
    subs.sort()
    out["submit"] = [b - a for a, b in zip(subs, subs[1:])]
    ins = [t for t in host if t.op == "input"]
    outs = [t for t in host if t.op == "output"]
    if outs and work:
        out["main_wake"].append(outs[0].start - max(t.end for t in work))
    out["host_in"] = [(t.bytes, t.duration) for t in ins]
    out["host_out"] = [(t.bytes, t.duration) for t in outs]
    return out
