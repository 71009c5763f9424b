"""Compiling a plan into a program of SoC calls: CoDL's sharing protocol, per chain layout.

Each chain runs its GPU share in the chain's ``layout`` (``image``: MACE's
texels; ``buffer``: NCHW, as muLayer's GPU does) and its CPU share on buffers.
The canonical copy of a tensor is in the layout of the chain that made it
(graph inputs start in buffers).  For every chain, in order:

1. Inputs.  A side that needs a region of a tensor in the other layout than
   its canonical copy gets it converted by the GPU queue (CoDL: the GPU runs
   the transforms), once: a converted region stays valid for later readers.
2. The CPU syncs on what it must wait for, maps the input regions the GPU
   wrote (cache maintenance), computes its share, and unmaps the shares the
   GPU will read (by a transform back to image, or directly on buffers).
3. The GPU syncs on what it must wait for and computes its share.
4. An image chain's escaping CPU shares are transformed back to image.

Syncs are derived, not assumed: every task records which region of which
arena array it reads and writes, and a processor syncs on the other's last
task that wrote what it reads, or touched what it writes (arrays that share
arena memory count as touching).  So a chain pays exactly the transforms,
maps, unmaps and syncs its placement entails, and a plan mixing image and
buffer chains moves the GPU's canonical copy between layouts with recorded
transforms at the chain boundaries.
"""
from __future__ import annotations

from ..ops import as4d
from .plan import Plan
from .regions import Region, chain_regions, empty, full

_OTHER = {"cpu": "gpu", "gpu": "cpu"}


def _overlap(a: Region, b: Region) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _covered(regions, r: Region) -> bool:
    return any(q[0] <= r[0] and r[1] <= q[1] and q[2] <= r[2] and r[3] <= q[3] for q in regions)


def _texels(r: Region) -> Region:
    """An image region widened to whole texels (4 channels share one)."""
    return (r[0], r[1], r[2] // 4 * 4, -(-r[3] // 4) * 4)


def image_tensors(view, plan: Plan, regions) -> set:
    """Tensors that need an image copy: made or taken by an op of an image chain's GPU
    share, or handed back to image by an image chain's CPU share."""
    out = set()
    for chain, reg in zip(plan.chains, regions):
        if chain.layout != "image":
            continue
        for n in chain.ops:
            op = view.op(n)
            if not empty(reg.gpu.compute[n]):
                out.add(op.output)
                out.update(op.inputs)  # the kernel takes them even when its rows read only padding
            elif not empty(reg.cpu.shares.get(op.output, (0, 0, 0, 0))):
                out.add(op.output)
    return out


def _gpu_reads_buffer(view, plan: Plan, regions) -> set:
    """Tensors whose buffer copy the GPU reads at some point: the CPU must unmap what it writes there."""
    canon = {t: "buffer" for t in view.inputs}
    for chain in plan.chains:
        for n in chain.ops:
            canon[view.op(n).output] = chain.layout
    out = set()
    for chain, reg in zip(plan.chains, regions):
        if chain.layout == "image" and reg.cpu.active():
            out.update(t for t, r in reg.cpu.shares.items() if not empty(r))
        if reg.gpu.active():
            out.update(t for t in reg.gpu.needs if chain.layout == "buffer" or canon[t] == "buffer")
    return out


class Compiler:
    """Records the program of one plan (see the module docstring).

    ``rec`` stands in for the SoC (it records calls); ``arrays[(tensor, layout)]``
    are the arena arrays; ``step(proc, layout, op, region)`` makes one kernel
    call step; ``threads[proc]`` is each pool's thread count.
    """

    def __init__(self, graph, view, plan: Plan, rec, arrays: dict, step, threads: dict, regions=None):
        self.graph, self.view, self.plan, self.rec = graph, view, plan, rec
        self.arrays, self.step, self.threads = arrays, step, threads
        self.regions = regions if regions is not None else [chain_regions(view, c) for c in plan.chains]
        self.gpu_reads_buffer = _gpu_reads_buffer(view, plan, self.regions)
        self.last = {"cpu": None, "gpu": None}
        self.synced = {"cpu": -1, "gpu": -1}  # the other's last task each has synced on
        self.valid = {(t, "buffer"): [full(graph.shape(t))] for t in graph.inputs}
        self.gpu_wrote: dict = {}  # tensor -> regions of its buffer the CPU has mapped since the GPU wrote it
        self.access: dict = {key: {"cpu": [], "gpu": []} for key in arrays}
        spans = {key: (a.ctypes.data, a.ctypes.data + a.nbytes) for key, a in arrays.items()}
        self.aliases = {k: [j for j, (b0, b1) in spans.items() if b0 < e1 and s0 < b1]
                        for k, (s0, e1) in spans.items()}

    # -- hazards ----------------------------------------------------------------
    def _region(self, key, r: Region) -> Region:
        return _texels(r) if key[1] == "image" else r

    def _wait_for(self, proc: str, reads=(), writes=(), op: str = "") -> None:
        """Sync ``proc`` on the other processor's last task that wrote what it reads or
        touched what it writes; ``reads``/``writes`` are ((tensor, layout), region) pairs."""
        other = _OTHER[proc]
        need = self.synced[proc]
        for items, writing in ((reads, False), (writes, True)):
            for key, r in items:
                r = self._region(key, r)
                for k2 in self.aliases[key]:
                    for idx, r2, w2 in self.access[k2][other]:
                        if idx > need and (w2 or writing) and (k2 != key or _overlap(r, r2)):
                            need = idx
        if need > self.synced[proc]:
            events = [need] + ([self.last[proc]] if self.threads[proc] > 1 and self.last[proc] is not None else [])
            self.last[proc] = self.rec.sync(events, on=proc, op=op)
            self.synced[proc] = need

    def _did(self, proc: str, idx: int, reads=(), writes=()) -> None:
        for items, writing in ((reads, False), (writes, True)):
            for key, r in items:
                self.access[key][proc].append((idx, self._region(key, r), writing))

    def _after(self, proc: str) -> list:
        return [] if self.last[proc] is None else [self.last[proc]]

    # -- sharing steps ------------------------------------------------------------
    def _ensure(self, t: str, lay: str, r: Region, op: str) -> None:
        """Make region ``r`` of ``t`` valid in layout ``lay``: the GPU queue converts it."""
        if empty(r) or _covered(self.valid.get((t, lay), ()), r):
            return
        src = "image" if lay == "buffer" else "buffer"
        if not _covered(self.valid.get((t, src), ()), r):
            raise AssertionError(f"program: region {r} of {t!r} is valid in no layout")  # a compiler bug
        self._transform(t, lay, r, op)

    def _transform(self, t: str, to: str, r: Region, op: str) -> None:
        src, dst = ((t, "image"), (t, "buffer")) if to == "buffer" else ((t, "buffer"), (t, "image"))
        self._wait_for("gpu", reads=[(src, r)], writes=[(dst, r)], op=op)
        a, b = self.arrays[src], self.arrays[dst]
        idx = self.rec.transform(a if to == "buffer" else as4d(a), to=to, out=as4d(b) if to == "buffer" else b,
                                 rows=(r[0], r[1]), channels=(r[2], r[3]), op=op, on="gpu",
                                 after=self._after("gpu"))
        self.last["gpu"] = idx
        self._did("gpu", idx, reads=[(src, r)], writes=[(dst, r)])
        self.valid.setdefault(dst, []).append(r)
        if to == "buffer":
            self.gpu_wrote[t] = []

    def _cut(self, key, r: Region):
        a = self.arrays[key]
        return a[:, r[2]:r[3], r[0]:r[1], :] if a.ndim == 4 else a[:, r[2]:r[3]]

    def _cache(self, kind: str, t: str, r: Region, op: str) -> None:
        key = (t, "buffer")
        idx = getattr(self.rec, kind)(self._cut(key, r), op=op, on="cpu", after=self._after("cpu"))
        self.last["cpu"] = idx
        self._did("cpu", idx, writes=[(key, r)])  # the GPU must not read it before this ends

    def _compute(self, proc: str, lay: str, work: dict) -> None:
        """Queue ``proc``'s kernels for ``work`` ({op: region}): one command list on a
        one-thread pool, else one task per op (the pool tiles each region)."""
        steps = [self.step(lay, name, r) for name, r in work.items() if not empty(r)]
        if not steps:
            return
        after = self._after(proc)
        if self.threads[proc] == 1:
            task = self.rec.run_list(proc, steps, after=after)
        else:
            for op_name, fn, kw, _, nbytes, meta in steps:
                split = {"split": "rows"} if "rows" in kw else {}
                task = self.rec.run(proc, op_name, fn, after=after, nbytes=nbytes, meta=meta, **kw, **split)
                after = [task]
        self.last[proc] = task

    # -- chains -----------------------------------------------------------------
    def compile(self) -> list:
        """Record every chain and the fetch of the outputs; returns the last task of each processor."""
        for chain, reg in zip(self.plan.chains, self.regions):
            self._chain(chain, reg)
            self.rec.chain_end()
        for t in self.graph.outputs:
            self._ensure(t, "buffer", full(self.graph.shape(t)), op="output")
        return [i for i in self.last.values() if i is not None]

    def _chain(self, chain, reg) -> None:
        lay, view = chain.layout, self.view
        head, tail = chain.ops[0], chain.ops[-1]
        cpu_on, gpu_on = reg.cpu.active(), reg.gpu.active()
        outputs = {n: view.op(n).output for n in chain.ops}
        if cpu_on:
            for t, r in reg.cpu.needs.items():
                self._ensure(t, "buffer", r, head)
        if gpu_on:
            for t, r in reg.gpu.needs.items():
                self._ensure(t, lay, r, head)
        if cpu_on:
            reads = [((t, "buffer"), r) for t, r in reg.cpu.needs.items()]
            writes = [((outputs[n], "buffer"), r) for n, r in reg.cpu.compute.items() if not empty(r)]
            self._wait_for("cpu", reads, writes, op=head)
            for t, r in reg.cpu.needs.items():
                mapped = self.gpu_wrote.get(t)
                if mapped is not None and not _covered(mapped, r):
                    self._cache("map", t, r, head)
                    mapped.append(r)
            self._compute("cpu", "buffer", reg.cpu.compute)
            self._did("cpu", self.last["cpu"], reads, writes)
            for t, r in reg.cpu.shares.items():
                if not empty(r) and t in self.gpu_reads_buffer:
                    self._cache("unmap", t, r, tail)
        if gpu_on:
            reads = [((t, lay), r) for t, r in reg.gpu.needs.items()]
            writes = [((outputs[n], lay), r) for n, r in reg.gpu.compute.items() if not empty(r)]
            self._wait_for("gpu", reads, writes, op=head)
            self._compute("gpu", lay, reg.gpu.compute)
            self._did("gpu", self.last["gpu"], reads, writes)
        for n in chain.ops:
            t = outputs[n]
            if t not in reg.gpu.shares:
                continue  # made and used inside the chain
            shape = self.graph.shape(t)
            cpu_r = reg.cpu.compute[n]
            if lay == "image":
                if not empty(reg.cpu.shares[t]):
                    self._transform(t, "image", reg.cpu.shares[t], tail)
                self.valid[(t, "image")] = [full(shape)]
                self.valid[(t, "buffer")] = [] if empty(cpu_r) else [cpu_r]
            else:
                self.valid[(t, "buffer")] = [full(shape)]
                if gpu_on and not empty(reg.gpu.compute[n]):
                    self.gpu_wrote[t] = []
