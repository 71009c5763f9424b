"""The profiling pass: per-op latencies measured on this SoC's processors.

:class:`MeasuredCosts` is the planner's cost source for ``codl`` (see
:mod:`coinfer.graph.coexec.costmodel`).  For every op it times, on each processor's
own pinned thread and with the same kernels the executor runs, the whole op
and half of it along each dimension it can be split on (and the whole op on
the GPU's thread with the buffer kernels: ``gpu_buffer``), and fits
``t(f) = a + b*f`` in the covered fraction ``f`` of the output; the fixed part
``a`` is what makes small shares of small ops not worth splitting.  Each op is
also timed on both processors at once, and the ratio to its time alone scales
the predictions for co-executed work: two cores computing together share
caches and memory bandwidth, and a plan balanced on solo times leaves the
more slowed processor late.  Sharing
costs (transform, map, unmap) are timed at two sizes and fitted linear in
bytes; a sync is timed as a ping-pong between the two processors.  Every
prediction adds the measured per-task dispatch time of a processor thread.
The image side is timed only for ops whose image kernels support them (the op
table's predicate); the others cost infinity there, so no plan puts them on
the GPU.  Timings go through the one harness, :mod:`.measure`.
"""
from __future__ import annotations

import time

import numpy as np

from ...hw import memory
from ...kernels import layout
from ..coexec import lower
from ..coexec.regions import gpu_channels, region_fraction
from ..ops import as4d
from ..progress import Progress
from .measure import clocked, measure, samples


def _fit(points) -> tuple[float, float]:
    """Least-squares (a, b) of t = a + b*x over (x, t) points, a and b >= 0."""
    xs = np.array([p[0] for p in points], np.float64)
    ts = np.array([p[1] for p in points], np.float64)
    if len(set(xs.tolist())) < 2:
        return 0.0, float(ts.mean() / max(xs.mean(), 1e-12))
    b, a = np.polyfit(xs, ts, 1)
    if a < 0:
        return 0.0, float((ts * xs).sum() / (xs * xs).sum())
    if b < 0:
        return float(ts.mean()), 0.0
    return float(a), float(b)


class MeasuredCosts:
    """Latencies measured on ``soc``'s processors for ``graph``'s ops.

    ``MeasuredCosts(graph, soc, repeats=3)`` profiles at construction
    (progress on stderr unless ``progress=False``); ``prepared``
    (:func:`coinfer.graph.coexec.lower.prepare` of ``graph``) gives the view and
    the weights, shared with the planners and executors.  ``fits[op][proc][dim]``
    is the (a, b) of each fit; ``full[op][proc]`` the whole-op seconds.
    """

    def __init__(self, graph, soc, *, prepared: lower.Prepared | None = None, repeats: int = 3,
                 progress: bool = True, buffer_on_gpu: bool = True):
        self.graph, self.soc = graph, soc
        if prepared is None:
            prepared = lower.prepare(graph)
        prepared.check(graph, ("buffer", "image"), "MeasuredCosts")
        self.view, self._weights = prepared.view, prepared.weights
        self.repeats = int(repeats)
        self.fits: dict = {}
        self.full: dict = {}
        self.slowdown: dict = {}
        self._data = self._make_data()
        self.task_s = {p: self._dispatch(p) for p in ("cpu", "gpu")}
        with Progress(len(graph.ops), f"profile {graph.name}", enabled=progress) as prog:
            for op in graph.ops:
                prog.step(op.name)
                self._profile_op(op, buffer_on_gpu)
        self._share = self._profile_sharing()
        self._sync = self._profile_sync()

    # -- data ---------------------------------------------------------------
    def _make_data(self) -> dict:
        rng = np.random.default_rng(0)
        g = self.graph
        data = {"buffer": {}, "image": {}}
        for t, ten in g.tensors.items():
            b = rng.standard_normal(ten.shape, dtype=np.float32)
            data["buffer"][t] = b
            data["image"][t] = layout.to_image(as4d(b))
        return data

    # -- timing -------------------------------------------------------------
    def _timer(self, lay: str, op, region):
        """A sample (see :mod:`.measure`): runs ``op`` over ``region``, returns its seconds."""
        ins = [self._data[lay][t] for t in op.inputs]
        out = self._data[lay][op.output]
        w = self._weights[op.name][lay]
        g = self.graph
        kw = lower.region_kwargs(g, op, region)
        return clocked(lambda: lower.call(g, op, lay, w, ins, out, **kw))

    def _time(self, proc: str, lay: str, op, region) -> float:
        """Fastest of the kernel calls, measured on ``proc``'s thread.

        The minimum, not the median: what other work on the machine adds is
        noise that only ever lengthens a call, and plans built on noisy timings
        change from run to run."""
        fn = self._timer(lay, op, region)
        p = self.soc[proc]
        return measure(lambda: p.submit(fn, op=f"profile {op.name}").result(timeout=600)[0],
                       repeats=self.repeats).min

    def _time_together(self, op) -> dict:
        """Fastest time of the whole op on each processor while the other runs it too.

        The image and buffer copies of the data are separate, as in co-execution."""
        fc = self._timer("buffer", op, self._full(op))
        fg = self._timer("image", op, self._full(op))

        def both():
            c = self.soc.cpu.submit(fc, op=f"profile {op.name}")
            g = self.soc.gpu.submit(fg, op=f"profile {op.name}")
            return c.result(timeout=600)[0], g.result(timeout=600)[0]

        pairs = samples(both, repeats=self.repeats)
        return {"cpu": min(c for c, _ in pairs), "gpu": min(g for _, g in pairs)}

    def _full(self, op) -> tuple:
        v = self.view.op(op.name)
        return (0, v.out_rows, 0, v.out_channels)

    def _native_program(self):
        """A native program on this SoC (the executor's default path), or None when its
        processors cannot run one (then the Python path's overheads are measured)."""
        from ...hw.dispatch import Program

        try:
            return Program(self.soc)
        except ValueError:
            return None

    def _native_span(self, prog, n_steps: int) -> float:
        """Run ``prog`` twice (the first warms it up); seconds from the first step's start to the
        last step's end of the second run."""
        prog.run(timeout=60)
        self.soc.trace.clear()
        prog.run(timeout=60)
        tasks = self.soc.trace.tasks
        self.soc.trace.clear()
        return (max(t.end for t in tasks) - min(t.start for t in tasks)) / n_steps

    def _dispatch(self, proc: str) -> float:
        """Per-task overhead of a processor thread: on the native path a step of its loop (a
        no-op kernel entry), else the queue, wrapper and trace record of the Python path."""
        prog = self._native_program()
        if prog is not None:
            from ...kernels.entry import buffer as native_calls

            n, last = 200, ()
            for _ in range(n):
                last = prog.compute(proc, "dispatch", native_calls.noop(), after=last)
            return self._native_span(prog, n)
        p = self.soc[proc]
        n = 200
        t0 = time.perf_counter()
        last = None
        for _ in range(n):
            last = p.submit(lambda: None, op="dispatch", after=[last] if last else [])
        last.result(timeout=60)
        dt = (time.perf_counter() - t0) / n
        self.soc.trace.clear()
        return dt

    def _profile_op(self, op, buffer_on_gpu: bool) -> None:
        v = self.view.op(op.name)
        full = (0, v.out_rows, 0, v.out_channels)
        image_ok = v.on_image
        fits, whole = {}, {}
        for proc, lay in (("cpu", "buffer"), ("gpu", "image")):
            if proc == "gpu" and not image_ok:
                fits[proc] = {"none": (float("inf"), 0.0)}
                whole[proc] = float("inf")
                continue
            t1 = self._time(proc, lay, op, full)
            whole[proc] = t1
            fits[proc] = {"none": (0.0, t1)}
            for dim in sorted(v.splits):
                if dim == "H":
                    half = (0, max(1, v.out_rows // 2), 0, v.out_channels)
                else:
                    half = (0, v.out_rows, 0, max(4, gpu_channels(0.5, v.out_channels)))
                f = region_fraction(v, half)
                if f >= 1.0:
                    fits[proc][dim] = (0.0, t1)
                    continue
                th = self._time(proc, lay, op, half)
                fits[proc][dim] = _fit([(f, th), (1.0, t1)])
        if buffer_on_gpu:
            # The GPU on buffers runs the CPU's kernels on its own thread: its whole-op time
            # is measured, and its region fits are the CPU's scaled to it.
            t1 = self._time("gpu", "buffer", op, full)
            whole["gpu_buffer"] = t1
            s = t1 / whole["cpu"] if whole["cpu"] > 0 else 1.0
            fits["gpu_buffer"] = {d: (a * s, b * s) for d, (a, b) in fits["cpu"].items()}
        if image_ok:
            together = self._time_together(op)
            slow = {p: max(1.0, together[p] / whole[p]) if whole[p] > 0 else 1.0 for p in ("cpu", "gpu")}
        else:
            slow = {"cpu": 1.0, "gpu": 1.0}
        slow["gpu_buffer"] = slow["cpu"]
        self.slowdown[op.name] = slow
        self.fits[op.name] = fits
        self.full[op.name] = whole
        self.soc.trace.clear()

    def _profile_sharing(self) -> dict:
        soc = self.soc
        out = {}
        sizes = [(1, 16, 32, 32), (1, 64, 64, 64)]
        for kind in ("transform", "map", "unmap"):
            pts = []
            for shape in sizes:
                b = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
                img = layout.to_image(b)
                if kind == "transform":
                    def fn(img=img, b=b):
                        t0 = time.perf_counter()
                        layout.to_buffer(img, b.shape[1], out=b)
                        return time.perf_counter() - t0
                    proc = "gpu"
                else:
                    f = memory.cache_flush if kind == "map" else memory.cache_clean

                    def fn(b=b, f=f):
                        b += 0.0  # dirty the lines, as the kernel writing them would
                        t0 = time.perf_counter()
                        f(b)
                        return time.perf_counter() - t0
                    proc = "cpu"
                t = measure(lambda fn=fn, proc=proc: soc[proc].submit(fn, op=f"profile {kind}").result(timeout=60)[0],
                            repeats=self.repeats + 1).median
                pts.append((b.nbytes, t))
            out[kind] = _fit(pts)
        soc.trace.clear()
        return out

    def _profile_sync(self) -> float:
        """Seconds one processor's thread takes to notice the other's event (ping-pong), on the
        path the executor takes (see :meth:`_dispatch`)."""
        soc = self.soc
        n = 50
        prog = self._native_program()
        if prog is not None:
            from ...kernels.entry import buffer as native_calls

            last = None
            for _ in range(n):
                a = prog.compute("cpu", "ping", native_calls.noop(), after=() if last is None else last)
                s = prog.sync([a], on="gpu", op="ping")
                b = prog.compute("gpu", "pong", native_calls.noop(), after=s)
                last = prog.sync([b], on="cpu", op="pong")
            per = self._native_span(prog, 2 * n)
            return max(0.0, per - 2 * min(self.task_s.values()))
        t0 = time.perf_counter()
        last = None
        for i in range(n):
            a = soc.cpu.submit(lambda: None, op="ping", after=[last] if last is not None and last.processor == "cpu" else [])
            s = soc.sync([a], on="gpu", op="ping")
            b = soc.gpu.submit(lambda: None, op="pong", after=[s])
            last = soc.sync([b], on="cpu", op="pong")
        last.result(timeout=60)
        per = (time.perf_counter() - t0) / (2 * n)
        soc.trace.clear()
        return max(0.0, per - 2 * min(self.task_s.values()))

    # -- the CostSource protocol ---------------------------------------------
    def compute(self, op, proc, region, concurrent: bool = False) -> float:
        """Seconds for ``proc`` (``cpu``, ``gpu`` on images, ``gpu_buffer``: the GPU on
        buffers) to compute ``region`` of ``op``; infinite where it was not measured."""
        f = region_fraction(op, region)
        if f <= 0:
            return 0.0
        fits = self.fits[op.name].get(proc)
        if fits is None:
            return float("inf")
        full_rows = region[0] == 0 and region[1] == op.out_rows
        full_chans = region[2] == 0 and region[3] == op.out_channels
        if full_rows and full_chans:
            a, b = fits["none"]
        elif not full_rows and "H" in fits:
            a, b = fits["H"]
        elif "OC" in fits:
            a, b = fits["OC"]
        else:
            a, b = fits["none"]
        t = a + b * f
        if concurrent:
            t *= self.slowdown[op.name][proc]
        return t + self.task_s["cpu" if proc == "cpu" else "gpu"]

    def transform(self, nbytes: int) -> float:
        a, b = self._share["transform"]
        return (a + b * nbytes + self.task_s["gpu"]) if nbytes else 0.0

    def map(self, nbytes: int) -> float:
        a, b = self._share["map"]
        return (a + b * nbytes + self.task_s["cpu"]) if nbytes else 0.0

    def unmap(self, nbytes: int) -> float:
        a, b = self._share["unmap"]
        return (a + b * nbytes + self.task_s["cpu"]) if nbytes else 0.0

    def sync(self) -> float:
        return self._sync + self.task_s["cpu"]

    # -- reports ------------------------------------------------------------
    def throughput(self, key: str) -> float:
        """FLOPs per second of a processor over the whole model (muLayer's predictor)."""
        t = sum(v[key] for v in self.full.values() if key in v and np.isfinite(v[key]))
        return self.graph.total_flops() / t if t > 0 else 0.0

    # -- a snapshot, for caches and other processes ----------------------------
    def to_json(self) -> dict:
        """The measurements the answers come from, as plain JSON data (no SoC, no arrays).

        :meth:`from_json` gives back a cost source that answers exactly as this one
        (floats round-trip through JSON unchanged), in any process."""
        return {"kind": "codl-measured", "version": 1, "graph": self.graph.name,
                "ops": [op.name for op in self.graph.ops], "repeats": self.repeats,
                "fits": {op: {p: {d: list(ab) for d, ab in dims.items()} for p, dims in per.items()}
                         for op, per in self.fits.items()},
                "full": self.full, "slowdown": self.slowdown, "task_s": self.task_s,
                "share": {k: list(ab) for k, ab in self._share.items()}, "sync": self._sync}

    @classmethod
    def from_json(cls, data: dict, graph) -> "MeasuredCosts":
        """The cost source a :meth:`to_json` snapshot describes, for ``graph`` (whose ops it must
        name, in order); it measures nothing and holds no SoC."""
        if not isinstance(data, dict) or data.get("kind") != "codl-measured" or data.get("version") != 1:
            raise ValueError("MeasuredCosts.from_json: not a version 1 'codl-measured' snapshot")
        ops = [op.name for op in graph.ops]
        if data["ops"] != ops:
            raise ValueError(f"MeasuredCosts.from_json: the snapshot of graph {data['graph']!r} names other ops "
                             f"than graph {graph.name!r}")
        new = object.__new__(cls)
        new.graph, new.soc, new.view, new._weights, new._data = graph, None, None, None, None
        new.repeats = int(data["repeats"])
        new.fits = {op: {p: {d: tuple(ab) for d, ab in dims.items()} for p, dims in per.items()}
                    for op, per in data["fits"].items()}
        new.full = {op: dict(v) for op, v in data["full"].items()}
        new.slowdown = {op: dict(v) for op, v in data["slowdown"].items()}
        new.task_s = dict(data["task_s"])
        new._share = {k: tuple(ab) for k, ab in data["share"].items()}
        new._sync = float(data["sync"])
        return new
