"""The executor: runs a :class:`~coinfer.graph.coexec.plan.Plan` on an :class:`~coinfer.hw.SoC`.

Each chain of the plan names the layout the GPU works in (``Chain.layout``):

- ``image`` (``gpu``, ``codl``, ``codl-nochain``): the GPU computes its share on
  images; the GPU queue transforms the CPU's input regions image->buffer, the
  CPU syncs on that, maps its input, computes its share on buffers, unmaps its
  output share; the GPU syncs on the CPU and transforms the CPU's share back
  to image (CoDL's sharing protocol).  Only a chain's ends pay for sharing.
- ``buffer`` (``cpu``, ``mulayer``, and the chains CoDL finds faster on
  buffers): both processors work on one NCHW buffer; splitting still costs a
  map, an unmap and two syncs, but no transforms (muLayer's design).

The canonical copy of a tensor is in the layout of the chain that made it; a
chain that needs it in the other layout gets it transformed by the GPU queue
at its start.  :mod:`.program` compiles a plan into this protocol, deriving
every sync from what each task reads and writes.

Every step is a task on a processor thread, submitted ahead with its
dependencies and recorded in ``soc.trace``.  A plan is compiled once into a
program of SoC calls (``Executor.program``).  By default that program is then
compiled once more, into a native program (:class:`coinfer.hw.dispatch.Program`):
every kernel call bound to its arrays as a C entry point, which each
processor's worker runs with no interpreter in its loop.  ``run`` runs it and
records the same tasks in the trace.  ``native=False`` (or a plan with a
kernel call that has no native entry, or a processor with several threads:
``native_reason`` says which) replays the program of SoC calls in Python
instead, sending each chain side's kernels to a one-thread pool as one
command list: the reference implementation, with the same outputs, bit for
bit, and the same task graph.
"""
from __future__ import annotations

import time

import numpy as np

from ...hw import Arena
from ...kernels.entry import NoEntry
from ..ops import image_shape, who
from . import lower
from .plan import Plan
from .program import Compiler, image_tensors
from .regions import chain_regions


def arena_for(graph, plan: Plan, with_image: set):
    """(arena, buffers, images): one :class:`~coinfer.hw.Arena` planned over the lifetimes of
    ``plan``'s chains, with a buffer view per tensor and an image view per tensor of
    ``with_image`` (:func:`.program.image_tensors`).  Nothing is written; the caller owns
    the arena (close it)."""
    life = graph.lifetimes({n: i for i, c in enumerate(plan.chains) for n in c.ops})
    entries, keys = [], []
    for t, (a, b) in life.items():
        shape = graph.shape(t)
        entries.append((4 * int(np.prod(shape)), a, b))
        keys.append(("buffer", t))
        if t in with_image:
            entries.append((4 * int(np.prod(image_shape(shape))), a, b))
            keys.append(("image", t))
    arena = Arena(entries)
    buf, img = {}, {}
    for i, (kind, t) in enumerate(keys):
        shape = graph.shape(t)
        if kind == "buffer":
            buf[t] = arena.view(i, shape)
        else:
            img[t] = arena.view(i, image_shape(shape))
    return arena, buf, img


class Executor:
    """``Executor(graph, plan, soc, prepared=None, native=None)``; ``run(x)`` returns the graph's output(s).

    ``prepared`` is :func:`coinfer.graph.coexec.lower.prepare` of ``graph`` (its
    view and weights per layout), shared with the planner and other executors;
    without it the executor prepares its own.  Activations live in one
    :class:`~coinfer.hw.Arena` planned over chain lifetimes: a buffer per
    tensor, and an image for those an image chain makes or reads.  ``timeout``
    bounds every wait, so a stuck run fails instead of hanging.

    ``native``: None (the default) runs the native program when every kernel call of
    the plan has a native entry and each processor has one thread, else the Python
    path; True requires the native program (ValueError saying why not); False runs
    the Python path.  ``self.native`` says which runs, ``self.native_reason`` why not
    native (None when native).
    """

    def __init__(self, graph, plan: Plan, soc, *, prepared: lower.Prepared | None = None,
                 timeout: float = 120.0, native: bool | None = None):
        self.graph, self.plan, self.soc = graph, plan, soc
        self.timeout = float(timeout)
        if native not in (None, True, False):
            raise TypeError(f"Executor: native must be None, True or False, got {native!r}")
        names = [n for c in plan.chains for n in c.ops]
        if sorted(names) != sorted(op.name for op in graph.ops) or len(set(names)) != len(names):
            raise ValueError(f"Executor: plan {plan.strategy!r} must cover every op of graph "
                             f"{graph.name!r} exactly once")
        order = {op.name: i for i, op in enumerate(graph.ops)}
        if [order[n] for n in names] != sorted(order[n] for n in names):
            raise ValueError(f"Executor: plan {plan.strategy!r} must list ops in topological order")
        for c in plan.chains:
            if c.layout == "buffer" and c.dim == "H" and len(c.ops) > 1:
                raise ValueError(f"Executor: plan {plan.strategy!r} has a height-split chain on shared buffers, "
                                 f"which must hold one op (both processors would write its halo rows); "
                                 f"got {c.ops}")
        layouts = ("buffer", "image") if any(c.layout == "image" for c in plan.chains) else ("buffer",)
        if prepared is None:
            prepared = lower.prepare(graph, layouts)
        prepared.check(graph, layouts, "Executor")
        self.view, self.weights = prepared.view, prepared.weights
        for c in plan.chains:
            if c.layout == "image" and (c.ratio > 0 or c.dim != "none"):
                for n in c.ops:
                    if not self.view.op(n).on_image:
                        op = graph.op(n)
                        raise ValueError(f"Executor: {who(op)} has no image kernel for {op.attrs}; plan it on "
                                         f"the cpu or on a buffer chain")
        self.regions = [chain_regions(self.view, c) for c in plan.chains]
        self._alloc(image_tensors(self.view, plan, self.regions))
        self.native_reason = "native=False" if native is False else None
        self._build()
        self._native = None if self.native_reason else self._native_program()
        if native and self._native is None:
            raise ValueError(f"Executor: plan {plan.strategy!r} cannot run natively: {self.native_reason}")

    @property
    def native(self) -> bool:
        """Whether ``run`` runs the native program (else the Python path)."""
        return self._native is not None
    # -- memory -------------------------------------------------------------
    def _alloc(self, with_image: set) -> None:
        self.arena, self.buf, self.img = arena_for(self.graph, self.plan, with_image)
        for t in self.img:  # padding lanes are zero from the start
            self.img[t][...] = 0.0

    def close(self) -> None:
        self.arena.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- running ------------------------------------------------------------
    def _check_input(self, x):
        g = self.graph
        if isinstance(x, dict):
            xs = x
        else:
            if len(g.inputs) != 1:
                raise ValueError(f"Executor.run: graph {g.name!r} has inputs {g.inputs}; pass a dict")
            xs = {g.inputs[0]: x}
        out = {}
        for name in g.inputs:
            if name not in xs:
                raise ValueError(f"Executor.run: missing input {name!r}")
            a = xs[name]
            if not isinstance(a, np.ndarray):
                raise TypeError(f"Executor.run: input {name!r} must be a numpy.ndarray, got {type(a).__name__}")
            if a.dtype != np.float32:
                raise TypeError(f"Executor.run: input {name!r} must be float32, got {a.dtype}")
            if a.shape != g.shape(name):
                raise ValueError(f"Executor.run: input {name!r} must have shape {g.shape(name)}, got {a.shape}")
            out[name] = np.ascontiguousarray(a)
        return out

    def _build(self) -> None:
        """Record the plan's tasks once as a program of SoC calls (:mod:`.program`); run() replays it."""
        self.program: list = []
        arrays = {**{(t, "buffer"): a for t, a in self.buf.items()}, **{(t, "image"): a for t, a in self.img.items()}}
        threads = {p: self.soc[p].threads for p in ("cpu", "gpu")}
        comp = Compiler(self.graph, self.view, self.plan, _Recorder(self.program), arrays, self._step, threads,
                        self.regions)
        self._last = comp.compile()

    def _native_program(self):
        """The program of SoC calls compiled for the native dispatch loop, or None (with
        ``native_reason``) when it cannot be."""
        from ...hw.dispatch import Program

        try:
            prog = Program(self.soc, sync_timeout=self.soc.sync_timeout)
        except ValueError as e:
            self.native_reason = str(e)
            return None
        methods = {"transform": prog.transform, "map": prog.map, "unmap": prog.unmap, "sync": prog.sync,
                   "cpu_list": lambda steps, **kw: prog.run_list("cpu", steps, **kw),
                   "gpu_list": lambda steps, **kw: prog.run_list("gpu", steps, **kw)}
        handles = []
        for step in self.program:
            if step is _YIELD:
                continue
            method, args, kw, ref_key = step
            if method not in methods:
                self.native_reason = f"the program calls {method!r}, which a native program does not have"
                return None
            if ref_key is not None:
                kw = dict(kw)
                kw[ref_key] = [handles[i] for i in kw[ref_key]]
            handles.append(methods[method](*args, **kw))
        self._handles = handles
        return prog

    def run(self, x, *, keep_trace: bool = False):
        """Run once; returns the output array (a dict if the graph has several).

        The SoC's trace is cleared first unless ``keep_trace``; afterwards it
        holds this run's tasks, with the caller's own work as ``host`` tasks of
        kind ``transfer``: copying the input in, and taking the output out
        once the last task is done.  ``self.last_wall`` is the measured seconds
        from handing the input over to having the output, which the trace's
        replay under ``host`` reproduces.
        """
        xs = self._check_input(x)
        soc = self.soc
        trace = soc.trace
        if not keep_trace:
            trace.clear()
        t0 = time.perf_counter()
        for name, a in xs.items():
            np.copyto(self.buf[name], a)
        t1 = time.perf_counter()
        trace.record("host", 0, "transfer", "input", t0 - trace.t0, t1 - trace.t0, submitted=t0 - trace.t0,
                     bytes=sum(a.nbytes for a in xs.values()))
        if self._native is not None:
            return self._run_native(t0, t1)
        methods = {"transform": soc.transform, "map": soc.map, "unmap": soc.unmap, "sync": soc.sync,
                   "cpu": soc.cpu.run, "gpu": soc.gpu.run,
                   "cpu_list": soc.cpu.run_list, "gpu_list": soc.gpu.run_list}
        tasks = []
        for step in self.program:
            if step is _YIELD:
                # Submitting holds the GIL; yield it after each chain so the workers
                # start on what is queued instead of waiting for the whole plan.
                time.sleep(0)
                continue
            method, args, kw, ref_key = step
            if ref_key is not None:
                kw = dict(kw)
                kw[ref_key] = [tasks[i] for i in kw[ref_key]]
            tasks.append(methods[method](*args, **kw))
            if len(tasks) % YIELD_EVERY == 0:
                time.sleep(0)
        self._tasks = tasks
        self.submit_s = time.perf_counter() - t0
        self._wait()
        t2 = time.perf_counter()
        outs = {t: self.buf[t].copy() for t in self.graph.outputs}
        t3 = time.perf_counter()
        self.last_wall = t3 - t0
        last = [i for k in self._last for i in tasks[k].ids]
        trace.record("host", 0, "transfer", "output", t2 - trace.t0, t3 - trace.t0, deps=last,
                     submitted=t1 - trace.t0, bytes=sum(a.nbytes for a in outs.values()))
        return outs[self.graph.outputs[0]] if len(outs) == 1 else outs

    def _run_native(self, t0: float, t1: float):
        trace, prog = self.soc.trace, self._native
        taken = {}

        def take():
            taken["t2"] = time.perf_counter()
            taken["outs"] = {t: self.buf[t].copy() for t in self.graph.outputs}
            taken["t3"] = time.perf_counter()

        prog.run(timeout=self.timeout, then=take)
        self.submit_s = prog.submitted - t0
        t2, t3, outs = taken["t2"], taken["t3"], taken["outs"]
        self.last_wall = t3 - t0
        last = [prog.ids[self._handles[k]] for k in self._last if self._handles[k] in prog.ids]
        trace.record("host", 0, "transfer", "output", t2 - trace.t0, t3 - trace.t0, deps=last,
                     submitted=t1 - trace.t0, bytes=sum(a.nbytes for a in outs.values()))
        return outs[self.graph.outputs[0]] if len(outs) == 1 else outs

    def _wait(self) -> None:
        """Wait for the last task of each processor (they finish last), then surface
        the first failure of any task."""
        deadline = time.perf_counter() + self.timeout
        for task in (self._tasks[i] for i in self._last):
            if not task.wait(max(0.0, deadline - time.perf_counter())):
                raise TimeoutError(f"Executor: plan {self.plan.strategy!r} on graph {self.graph.name!r} "
                                   f"did not finish within {self.timeout:g} s ({task.processor} {task.kind} "
                                   f"'{task.op}' still pending)")
        for task in self._tasks:
            if task.wait(max(0.0, deadline - time.perf_counter())):
                err = task.exception(timeout=0)
                if err is not None:
                    raise err

    def _step(self, lay: str, name: str, region):
        """(op, fn, kwargs, region, nbytes, meta): one op's region as a kernel call; ``meta``
        names the kernel layout and the op class, by which a profile scales it on replay."""
        op = self.graph.op(name)
        store = self.img if lay == "image" else self.buf
        ins = [store[t] for t in op.inputs]
        out = store[op.output]
        w = self.weights[name][lay]
        kw = lower.region_kwargs(self.graph, op, region)
        graph = self.graph

        def fn(rows=None, channels=None):
            lower.call(graph, op, lay, w, ins, out, rows=rows, channels=channels)

        oshape = self.graph.shape(op.output)
        nbytes = self.view.nbytes(oshape, rows=(region[0], region[1]) if len(oshape) == 4 else None,
                                  channels=(region[2], region[3]))
        meta = {"layout": lay, "op_class": self._op_class(name)}
        if self.native_reason is None:
            try:
                meta["native"] = lower.bind(graph, op, lay, w, ins, out, **kw)
            except NoEntry as e:
                self.native_reason = str(e)
        return (name, fn, kw, dict(kw), nbytes, meta)

    def _op_class(self, name: str) -> str:
        from ..costs.emulated import op_class

        cache = self.__dict__.setdefault("_classes", {})
        if name not in cache:
            cache[name] = op_class(self.view.op(name))
        return cache[name]


_YIELD = object()  # program marker: let the workers have the GIL
# A worker coming back from a kernel needs the GIL; a submitting thread that never
# blocks would keep it for a whole switch interval (5 ms), so submission yields
# every few steps as well as after each chain.
YIELD_EVERY = 16


class _Recorder:
    """Stands in for the SoC while a plan is compiled: every call becomes a program
    step, and a step's index stands in for the Task it will return."""

    def __init__(self, program: list):
        self.program = program
        self.count = 0

    def _add(self, method, args, kw, ref_key):
        self.program.append((method, args, kw, ref_key))
        self.count += 1
        return self.count - 1

    def transform(self, src, **kw):
        return self._add("transform", (src,), kw, "after")

    def map(self, region, **kw):
        return self._add("map", (region,), kw, "after")

    def unmap(self, region, **kw):
        return self._add("unmap", (region,), kw, "after")

    def sync(self, events, **kw):
        return self._add("sync", (), {"events": list(events), **kw}, "events")

    def run(self, proc, op, fn, **kw):
        return self._add(proc, (op, fn), kw, "after")

    def run_list(self, proc, steps, **kw):
        return self._add(proc + "_list", (steps,), kw, "after")

    def chain_end(self):
        """A chain is recorded: let the workers start on it."""
        self.program.append(_YIELD)
