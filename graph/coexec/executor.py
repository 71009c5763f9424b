"""The executor: runs a :class:`~coinfer.graph.coexec.plan.Plan` on an :class:`~coinfer.hw.SoC`.

Two modes, chosen by the plan:

- **image-canonical** (``gpu``, ``codl``, ``codl-nochain``): the GPU owns the
  canonical copy of every activation, as an image in the arena.  For each chain
  the GPU queue transforms the CPU's input regions image->buffer, the CPU syncs
  on that, maps its input, computes its share on buffers, unmaps its output
  share; the GPU computes its share on images, syncs on the CPU, and
  transforms the CPU's share back to image (CoDL's sharing protocol).  Only a
  chain's ends pay for sharing.
- **buffer-shared** (``cpu``, ``mulayer``): every activation is one NCHW buffer
  both processors use; splitting still costs a map, an unmap and two syncs per
  op, but no transforms (muLayer's design).

Every step is a task on a processor thread, submitted ahead with its
dependencies and recorded in ``soc.trace``.  A plan is compiled once into a
program of SoC calls (``Executor.program``); ``run`` replays it, sending each
chain side's kernels to a one-thread pool as one command list.
"""
from __future__ import annotations

import time

import numpy as np

from ...hw import Arena
from ..ops import as4d, image_shape
from . import lower
from .plan import Plan
from .regions import chain_regions, empty


class Executor:
    """``Executor(graph, plan, soc, prepared=None)``; ``run(x)`` returns the graph's output(s).

    ``prepared`` is :func:`coinfer.graph.coexec.lower.prepare` of ``graph`` (its
    view and weights per layout), shared with the planner and other executors;
    without it the executor prepares its own.  Activations live in one
    :class:`~coinfer.hw.Arena` planned over chain lifetimes (an image and a
    buffer copy per tensor in image-canonical mode).  ``timeout`` bounds every
    wait, so a stuck run fails instead of hanging.
    """

    def __init__(self, graph, plan: Plan, soc, *, prepared: lower.Prepared | None = None,
                 timeout: float = 120.0):
        self.graph, self.plan, self.soc = graph, plan, soc
        self.timeout = float(timeout)
        self.mode = "buffer" if plan.shared_layout == "buffer" else "image"
        names = [n for c in plan.chains for n in c.ops]
        if sorted(names) != sorted(op.name for op in graph.ops) or len(set(names)) != len(names):
            raise ValueError(f"Executor: plan {plan.strategy!r} must cover every op of graph "
                             f"{graph.name!r} exactly once")
        order = {op.name: i for i, op in enumerate(graph.ops)}
        if [order[n] for n in names] != sorted(order[n] for n in names):
            raise ValueError(f"Executor: plan {plan.strategy!r} must list ops in topological order")
        if self.mode == "buffer":
            for c in plan.chains:
                if c.split and len(c.ops) > 1:
                    raise ValueError(f"Executor: plan {plan.strategy!r} shares buffers, so a split chain must "
                                     f"hold one op (both processors would write its halo rows); got {c.ops}")
        layouts = ("buffer",) if self.mode == "buffer" else ("buffer", "image")
        if prepared is None:
            prepared = lower.prepare(graph, layouts)
        prepared.check(graph, layouts, "Executor")
        self.view, self.weights = prepared.view, prepared.weights
        if self.mode == "image":
            for c in plan.chains:
                for n in c.ops:
                    if not self.view.op(n).on_image and (c.ratio > 0 or c.dim != "none"):
                        op = graph.op(n)
                        raise ValueError(f"Executor: op {n!r} ({op.type}) has no image kernel for "
                                         f"{op.attrs}; plan it on the cpu")
        self._alloc()
        self._build()

    # -- memory -------------------------------------------------------------
    def _alloc(self) -> None:
        g = self.graph
        life = g.lifetimes({n: i for i, c in enumerate(self.plan.chains) for n in c.ops})
        entries, keys = [], []
        for t, (a, b) in life.items():
            shape = g.shape(t)
            n = int(np.prod(shape))
            entries.append((4 * n, a, b))
            keys.append(("buf", t))
            if self.mode == "image":
                entries.append((4 * int(np.prod(image_shape(shape))), a, b))
                keys.append(("img", t))
        self.arena = Arena(entries)
        self.buf, self.img = {}, {}
        for i, (kind, t) in enumerate(keys):
            shape = g.shape(t)
            if kind == "buf":
                self.buf[t] = self.arena.view(i, shape)
            else:
                self.img[t] = self.arena.view(i, image_shape(shape))
        if self.mode == "image":
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
        """Record the plan's tasks once as a program of SoC calls; run() replays it."""
        self.program: list = []
        self._g = self._c = None  # last step per processor
        self._g_dirty = self._c_dirty = False  # results the other processor has not synced on
        rec = _Recorder(self.program)
        self._rec = rec
        if self.mode == "buffer":
            for chain in self.plan.chains:
                self._chain_buffer(chain)
                self.program.append(_YIELD)
        else:
            for name in self.graph.inputs:
                self._g = rec.transform(self.buf[name], to="image", out=self.img[name], op="input",
                                        on="gpu", after=self._after_g())
            for chain in self.plan.chains:
                self._chain_image(chain)
                self.program.append(_YIELD)
            for t in self.graph.outputs:
                self._g = rec.transform(self.img[t], to="buffer", out=as4d(self.buf[t]),
                                        op="output", on="gpu", after=self._after_g())
        self._last = [i for i in (self._g, self._c) if i is not None]
        del self._rec

    def run(self, x, *, keep_trace: bool = False):
        """Run once; returns the output array (a dict if the graph has several).

        The SoC's trace is cleared first unless ``keep_trace``; afterwards it
        holds this run's tasks.  ``self.last_wall`` is the measured seconds,
        from handing the input over to having the output.
        """
        xs = self._check_input(x)
        soc = self.soc
        if not keep_trace:
            soc.trace.clear()
        t0 = time.perf_counter()
        for name, a in xs.items():
            np.copyto(self.buf[name], a)
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
        self.last_wall = time.perf_counter() - t0
        outs = {t: self.buf[t].copy() for t in self.graph.outputs}
        return outs[self.graph.outputs[0]] if len(outs) == 1 else outs

    def _after_g(self):
        return [self._g] if self._g is not None else []

    def _after_c(self):
        return [self._c] if self._c is not None else []

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

    def _compute(self, proc: str, lay: str, work: dict) -> None:
        """Queue ``proc``'s compute for ``work`` ({op: region}, empty regions skipped).

        On a one-thread pool the ops go as one command list (one queue entry,
        one trace record per op); a pool with several threads gets one task per
        op so it can tile each region across its threads."""
        steps = [self._step(lay, name, r) for name, r in work.items() if not empty(r)]
        if not steps:
            return
        prev = self._g if proc == "gpu" else self._c
        after = [prev] if prev is not None else []
        if self.soc[proc].threads == 1:
            task = self._rec.run_list(proc, steps, after=after)
        else:
            for op_name, fn, kw, _, nbytes, _meta in steps:
                split = {"split": "rows"} if "rows" in kw else {}
                task = self._rec.run(proc, op_name, fn, after=after, nbytes=nbytes, **kw, **split)
                after = [task]
        if proc == "gpu":
            self._g = task
        else:
            self._c = task

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
        return (name, fn, kw, dict(kw), nbytes, {"layout": lay, "op_class": self._op_class(name)})

    def _op_class(self, name: str) -> str:
        from ..costs.emulated import op_class

        cache = self.__dict__.setdefault("_classes", {})
        if name not in cache:
            cache[name] = op_class(self.view.op(name))
        return cache[name]

    @staticmethod
    def _cut(a: np.ndarray, region):
        r0, r1, c0, c1 = region
        return a[:, c0:c1, r0:r1, :] if a.ndim == 4 else a[:, c0:c1]

    # -- image-canonical chains ----------------------------------------------
    def _chain_image(self, chain) -> None:
        soc, reg = self._rec, chain_regions(self.view, chain)
        head = chain.ops[0]
        cpu_on = reg.cpu.active()
        if cpu_on:
            for t, r in reg.cpu.needs.items():
                if t in self.graph.inputs:
                    continue  # run() copies the input into its buffer before any task starts
                self._g = soc.transform(
                    self.img[t], to="buffer", out=as4d(self.buf[t]), rows=(r[0], r[1]),
                    channels=(r[2], r[3]), op=head, on="gpu", after=self._after_g())
            if self._g is not None:
                self._c = soc.sync([self._g], on="cpu", op=head)
            for t, r in reg.cpu.needs.items():
                self._c = soc.map(self._cut(self.buf[t], r), op=head, on="cpu",
                                              after=self._after_c())
            self._compute("cpu", "buffer", reg.cpu.compute)
            for t, r in reg.cpu.shares.items():
                if not empty(r):
                    self._c = soc.unmap(self._cut(self.buf[t], r), op=chain.ops[-1], on="cpu",
                                                    after=self._after_c())
        self._compute("gpu", "image", reg.gpu.compute)
        if cpu_on:
            self._g = soc.sync([self._c], on="gpu", op=chain.ops[-1])
            for t, r in reg.cpu.shares.items():
                if not empty(r):
                    self._g = soc.transform(
                        as4d(self.buf[t]), to="image", out=self.img[t], rows=(r[0], r[1]),
                        channels=(r[2], r[3]), op=chain.ops[-1], on="gpu", after=self._after_g())

    # -- buffer-shared chains -------------------------------------------------
    def _chain_buffer(self, chain) -> None:
        """One chain on shared buffers.  A processor that reads what the other wrote
        since it last synced first syncs on the other's last task before this chain."""
        soc, reg = self._rec, chain_regions(self.view, chain)
        head, tail = chain.ops[0], chain.ops[-1]
        cpu_on, gpu_on = reg.cpu.active(), reg.gpu.active()
        g_before, c_before = self._g, self._c
        g_dirty, c_dirty = self._g_dirty, self._c_dirty
        if cpu_on:
            if g_dirty:
                self._c = soc.sync([g_before], on="cpu", op=head)
                self._g_dirty = False
            if gpu_on:
                for t, r in reg.cpu.needs.items():
                    self._c = soc.map(self._cut(self.buf[t], r), op=head, on="cpu",
                                                  after=self._after_c())
            self._compute("cpu", "buffer", reg.cpu.compute)
            if gpu_on:
                for t, r in reg.cpu.shares.items():
                    if not empty(r):
                        self._c = soc.unmap(self._cut(self.buf[t], r), op=tail, on="cpu",
                                                        after=self._after_c())
            self._c_dirty = True
        if gpu_on:
            if c_dirty:
                self._g = soc.sync([c_before], on="gpu", op=head)
                self._c_dirty = cpu_on
            self._compute("gpu", "buffer", reg.gpu.compute)
            self._g_dirty = True
            if cpu_on:  # the post-sync: the next op reads both shares
                self._g = soc.sync([self._c], on="gpu", op=tail)
                self._c_dirty = False


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
