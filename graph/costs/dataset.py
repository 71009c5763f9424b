"""The latency dataset: sampled ops and sharing operations timed on this host's processors.

:func:`collect` measures ``n`` sampled op instances (:mod:`.sampling`) on each
processor's pinned thread with its own kernel set (``cpu`` on buffers,
``gpu`` on images where the image kernels support the op), alone and with
the other processor computing the same op at the same time.  An op with a
native entry (every sampled type today) is timed as the default executor runs
it: a native program of the op's call repeated back to back
(:func:`native_steps`, C timestamps, no interpreter between calls), its first
step dropped; with both processors the steps that overlapped the other's.
Each op is timed in :data:`ROUNDS` rounds over chunks of :data:`ROUND_OPS`
ops, seconds apart, and the quietest round (least median) is kept:
``seconds`` is its median step, ``min_seconds`` the fastest step of all rounds.
An op without a native entry goes through the Python harness
(:mod:`.measure`: a warm-up call, then ``repeats`` samples, the median).  It
adds the sharing operations by bytes: layout
transforms both ways (on the GPU's thread, as the executor runs them), map
and unmap (cache maintenance, on the CPU's thread), a sync (a ping-pong
between the threads) and the per-task dispatch time of a processor thread.

It also traces runs of the zoo's models (:func:`trace_plans`: each processor
alone, and every channel-splittable op split half and half): every kernel
call as it runs inside a model (its inputs just written, its weights and
output not in cache, the interpreter shared), and every task's dispatch gap
by path (:func:`coinfer.graph.coexec.timeline.trace_gaps`).  Predictors learn
an in-model correction and the dispatch terms from these.

Why native steps and rounds: the same 150 samples timed twice through the Python
harness agreed within ±10% for 71% / 67% (cpu / gpu, alone) and 44% / 33% (concurrent)
of the held-out ones.  The Python call (8-15 µs) dominated the small ops, and the
shared VM runs its cores up to 1.5x slower for seconds at a time (no run-queue wait
shows it, and a speed probe timed beside the sample tracked it too loosely to
correct it).  Native steps repeat within about 1%; rounds seconds apart keep a quiet
timing of most ops.

Samples on the Python path are retaken when another process took its core
(:func:`~.measure.clocked` with ``retries``) and brought to the thread's
quiet speed by the speed probe timed before and after it
(:class:`~.measure.SpeedProbe`); a timing whose median exceeds its fastest
sample by more than :data:`MAX_SPREAD`, or taken while the probe ran more than
:data:`QUIET_SLACK` slow, is taken again.  ``probe`` records the slowdown
the probe saw (1: the quiet speed).

A :class:`Dataset` is rows of plain values and a header of facts about the
host (``isa``, ``cpu``, ``clock_ghz``) and the run (``version``, ``samples``,
``seed``, ``repeats``).  It is saved as CSV with the header as ``# key:
value`` comment lines (:meth:`Dataset.save`, :meth:`Dataset.load`; never
pickle) and cached per host (:func:`cached`: same ISA, CPU and clock within
6%), so later runs reuse it.

Row fields: ``kind`` (``op``, ``inmodel``, ``gap``, ``transform_to_buffer``,
``transform_to_image``, ``map``, ``unmap``, ``sync``, ``dispatch``), the op description
(:data:`~.sampling.DESC_KEYS` and ``type``), ``split`` (``full``, ``H``,
``OC``; for a ``gap`` row the runtime that dispatched the run, ``native`` or ``python``) and
the region ``r0 r1 c0 c1``, ``processor``, ``layout``, ``mode``
(``alone`` or ``concurrent``), ``bytes``, ``seconds`` (the median),
``min_seconds`` and ``model`` (traced rows: the model, and for gaps its plan).
"""
from __future__ import annotations

import csv
import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...hw import host as hw_host
from ...hw import memory
from ...hw.dispatch import Program
from ...kernels import layout
from ...kernels.entry import NoEntry
from ..coexec import lower
from ..coexec.view import view_of
from ..ops import as4d
from .measure import SpeedProbe, Timing, clocked, disturbed, measure, samples, waited
from .sampling import DESC_KEYS, sample, zoo_descriptions

VERSION = 4
FIELDS = ("kind", "type", *DESC_KEYS, "split", "r0", "r1", "c0", "c1", "processor", "layout", "mode",
          "bytes", "seconds", "min_seconds", "model", "probe")
_INT = set(DESC_KEYS) | {"r0", "r1", "c0", "c1", "bytes"}
_FLOAT = {"seconds", "min_seconds", "probe"}
#: Each timed sample lasts at least this long (a kernel call is repeated to fill it).
MIN_SAMPLE_S = 1e-3
#: A native timing (:func:`native_steps`) runs its op's call back to back for about this long ...
NATIVE_SPAN_S = 0.02
#: ... in at least and at most this many steps.
NATIVE_STEPS = (6, 200)
#: With both processors computing, the shorter op repeats up to this many steps to span the longer.
NATIVE_STEPS_BOTH = 2000
#: Every op is timed in this many rounds, over chunks of this many ops (a round times each op of
#: its chunk once); the quietest round's timing (least median) is kept: a shared VM's cores run
#: up to 1.5x slower for seconds at a time, so a timing repeated seconds later is more often
#: quiet than one repeated at once.
ROUNDS = 3
ROUND_OPS = 16
#: A sample another process disturbed is retaken up to this many times (see :func:`~.measure.clocked`).
RETRIES = 4
#: A timing whose median exceeds its fastest sample by more than this factor is taken again ...
MAX_SPREAD = 1.1
#: ... up to this many times.
RETIMES = 2
#: A measurement is taken again while the speed probe runs more than this much slower than
#: the fastest probe seen (the machine is busy with other work) ...
QUIET_SLACK = 0.05
#: ... up to this many times in all, ...
QUIET_TRIES = 2
#: ... pausing this long between tries.
QUIET_PAUSE_S = 0.05
#: Calls of the speed probe whose median is one probe time.  A single call right after other
#: work runs cold and slow (a probe of one call read 1.9-3.7x slowdowns where the median
#: of 15 read 1.1-1.3x), which brought samples to too fast a "quiet" speed.
PROBE_CALLS = 5
#: Zoo models whose runs are traced (kernel calls as they run inside a model, dispatch gaps).
TRACE_MODELS = ("alexnet", "nin", "squeezenet", "vgg16", "resnet18", "mobilenet_v1", "yolov2_tiny")
#: Sizes (float32 NCHW shapes) of the sharing operations timed.
SHARE_SHAPES = ((1, 8, 16, 16), (1, 16, 28, 28), (1, 32, 32, 32), (1, 64, 28, 28), (1, 32, 56, 56),
                (1, 64, 56, 56), (1, 128, 56, 56), (1, 96, 112, 112), (1, 64, 112, 112), (1, 128, 112, 112))


@dataclass
class Dataset:
    """Rows (dicts of :data:`FIELDS`) and the header (``meta``)."""

    rows: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def ops(self, processor=None, mode=None) -> list:
        return [r for r in self.rows if r["kind"] == "op" and (processor is None or r["processor"] == processor)
                and (mode is None or r["mode"] == mode)]

    def sharing(self, kind: str) -> list:
        return [r for r in self.rows if r["kind"] == kind]

    def save(self, path) -> Path:
        path = Path(path)
        with open(path, "w", newline="") as f:
            f.write("# coinfer latency dataset\n")
            for k, v in {"version": VERSION, **self.meta}.items():
                f.write(f"# {k}: {v}\n")
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: r.get(k, "") for k in FIELDS})
        return path

    @classmethod
    def load(cls, path) -> "Dataset":
        """Read a dataset saved by :meth:`save`; ValueError if it is not one or of another version."""
        meta, lines = {}, []
        with open(path, newline="") as f:
            for line in f:
                if line.startswith("#"):
                    if ":" in line:
                        k, v = line[1:].split(":", 1)
                        meta[k.strip()] = v.strip()
                else:
                    lines.append(line)
        if str(meta.get("version")) != str(VERSION):
            raise ValueError(f"Dataset.load: {path} is version {meta.get('version')!r}, expected {VERSION}")
        rows = []
        for r in csv.DictReader(lines):
            out = {}
            for k, v in r.items():
                if k in _INT:
                    out[k] = int(v) if v not in ("", None) else 0
                elif k in _FLOAT:
                    out[k] = float(v) if v not in ("", None) else 0.0
                else:
                    out[k] = v
            rows.append(out)
        meta.pop("version", None)
        for k in ("clock_ghz", "probe_cpu", "probe_gpu"):
            if k in meta:
                meta[k] = float(meta[k])
        for k in ("samples", "seed", "repeats", "runs"):
            if k in meta:
                meta[k] = int(meta[k])
        return cls(rows, meta)

    def split(self, test_share: float = 0.3, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """(train, test): op rows split by sample (both modes and processors of an
        instance go to the same side); sharing rows go to both."""
        keys = [_instance_key(r) for r in self.rows if r["kind"] == "op"]
        uniq = sorted(set(keys))
        rng = np.random.default_rng(seed)
        test = set(rng.choice(len(uniq), size=int(round(test_share * len(uniq))), replace=False).tolist()) \
            if uniq else set()
        test_keys = {uniq[i] for i in test}
        tr, te = [], []
        for r in self.rows:
            if r["kind"] != "op":
                tr.append(r)
                te.append(r)
            elif _instance_key(r) in test_keys:
                te.append(r)
            else:
                tr.append(r)
        return Dataset(tr, dict(self.meta)), Dataset(te, dict(self.meta))


def _instance_key(r: dict) -> tuple:
    return (r["type"],) + tuple(r[k] for k in DESC_KEYS) + (r["r0"], r["r1"], r["c0"], r["c1"])


# ---------------------------------------------------------------------------
# Measuring


class _Op:
    """One sampled op, ready to time in either layout."""

    def __init__(self, graph, region):
        self.graph = graph
        self.op = graph.ops[0]
        lays = ("buffer", "image")
        self.view = view_of(graph)
        self.vop = self.view.ops[0]
        if not self.vop.on_image:
            lays = ("buffer",)
        self.layouts = lays
        self.weights = lower.prepare(graph, lays).weights[self.op.name]
        rng = np.random.default_rng(0)
        self.data = {lay: {} for lay in lays}
        for t, ten in graph.tensors.items():
            b = rng.standard_normal(ten.shape, dtype=np.float32)
            self.data["buffer"][t] = b
            if "image" in lays:
                self.data["image"][t] = layout.to_image(as4d(b))
        self.kw = lower.region_kwargs(graph, self.op, region)

    def call(self, lay: str):
        g, op, w = self.graph, self.op, self.weights[lay]
        ins = [self.data[lay][t] for t in op.inputs]
        out = self.data[lay][op.output]
        kw = self.kw
        return lambda: lower.call(g, op, lay, w, ins, out, **kw)

    def native(self, lay: str):
        """The same call as a native call (:func:`~coinfer.graph.coexec.lower.bind`), or None
        when the op has no native entry on ``lay``."""
        op = self.op
        try:
            return lower.bind(self.graph, op, lay, self.weights[lay], [self.data[lay][t] for t in op.inputs],
                              self.data[lay][op.output], **self.kw)
        except NoEntry:
            return None


def _on(proc, fn, loops: int, label: str, speed=None):
    """A harness sample: ``fn`` called ``loops`` times on ``proc``'s thread, seconds per call
    (retaken when other work took the core, at the thread's quiet speed with ``speed``;
    see :func:`~.measure.clocked`)."""
    s = clocked(fn, loops, retries=RETRIES, speed=speed)
    return lambda: proc.submit(s, op=label).result(timeout=600)[0]


def _loops(one_s: float) -> int:
    return max(1, int(np.ceil(MIN_SAMPLE_S / max(one_s, 1e-7))))


def _steady(timing_fn):
    """The timing of ``timing_fn()`` (a :class:`~.measure.Timing`), taken again up to
    :data:`RETIMES` times while its spread (median / min) exceeds :data:`MAX_SPREAD`;
    the least spread one is kept."""
    best = None
    for _ in range(RETIMES + 1):
        t = timing_fn()
        if best is None or t.median / t.min < best.median / best.min:
            best = t
        if best.median <= MAX_SPREAD * best.min:
            break
    return best


class _Quiet:
    """The speed probe (:class:`~.measure.SpeedProbe`) on the processors' threads."""

    def __init__(self, soc, probe=None):
        self.soc, self.probe = soc, probe if probe is not None else SpeedProbe(PROBE_CALLS)
        for p in ("cpu", "gpu"):
            for _ in range(5):
                self(p)

    def __call__(self, proc: str) -> float:
        """The probe's slowdown on ``proc``'s thread now (1: its quiet speed)."""
        return self.soc[proc].submit(lambda: self.probe.slowdown(self.probe()), op="probe").result(timeout=60)[0]

    def timed(self, procs, take):
        """``take()`` with the probe timed on ``procs`` before and after, taken again (up to
        :data:`QUIET_TRIES` times, after a pause) while a probe ran more than
        :data:`QUIET_SLACK` slower than the quiet speed; the quietest try is kept.
        Returns (result, {proc: mean slowdown})."""
        best = None
        for i in range(QUIET_TRIES):
            if i:
                time.sleep(QUIET_PAUSE_S)
            before = {p: self(p) for p in procs}
            res = take()
            after = {p: self(p) for p in procs}
            slow = max(max(before[p], after[p]) for p in procs)
            speed = {p: 0.5 * (before[p] + after[p]) for p in procs}
            if best is None or slow < best[0]:
                best = (slow, res, speed)
            if slow <= 1.0 + QUIET_SLACK:
                break
        return best[1], best[2]


def native_steps(soc, calls: dict) -> dict:
    """Each native call of ``calls`` ({processor name: (NativeCall, steps)}) run ``steps`` times
    back to back on its processor in one native program (the processors at once when both are
    named), timed in C (:class:`~coinfer.hw.dispatch.Program`): {processor: (start, end) seconds
    of each step, an array of shape (steps, 2)}.  No interpreter runs between the steps."""
    prog = Program(soc)
    for proc, (call, steps) in calls.items():
        for _ in range(int(steps)):
            prog.compute(proc, "sample", call)
    soc.trace.clear()
    prog.run(timeout=600)
    out = {}
    for name in calls:
        ts = sorted((t.start, t.end) for t in soc.trace.tasks if t.processor == name and t.kind == "compute")
        out[name] = np.array(ts, np.float64).reshape(-1, 2)
    soc.trace.clear()
    return out


def _native_steps_for(one_s: float) -> int:
    return int(np.clip(np.ceil(NATIVE_SPAN_S / max(one_s, 1e-7)), NATIVE_STEPS[0], NATIVE_STEPS[1]))


def _native_timing(soc, calls: dict) -> dict:
    """{processor: :class:`~.measure.Timing` of its steps' seconds}, the first step of each
    dropped (a warm-up); with two processors only the steps that began while the other
    processor was still computing are kept (both busy)."""
    times = native_steps(soc, calls)
    out = {}
    for proc, t in times.items():
        keep = t[1:]
        if len(times) == 2:
            other = next(v for p, v in times.items() if p != proc)
            both = keep[(keep[:, 0] < other[-1, 1]) & (keep[:, 1] > other[1, 0])]
            keep = both if len(both) else keep
        out[proc] = Timing(tuple((keep[:, 1] - keep[:, 0]).tolist()))
    return out


def _time_op(soc, sop: _Op, repeats: int, quiet: _Quiet) -> list:
    """Rows for one sampled op: each layout alone on its processor, then both at once;
    each with the speed probe's slowdown on its thread (see :class:`_Quiet`).

    An op with a native entry on a layout is timed in C (:func:`native_steps`, as the
    default native executor runs it: no interpreter between calls); one without is timed
    through the Python harness (:func:`_on`, brought to the thread's quiet speed)."""
    rows = []
    procs = {"buffer": "cpu", "image": "gpu"}
    fns = {lay: sop.call(lay) for lay in sop.layouts}
    natives = {lay: sop.native(lay) for lay in sop.layouts}
    one = {}
    for lay, fn in fns.items():
        p = soc[procs[lay]]
        p.submit(fn, op="warm-up").result(timeout=600)  # compiles, faults pages in
        one[lay] = p.submit(clocked(fn), op="probe").result(timeout=600)[0]
        if natives[lay] is not None:
            call = (natives[lay], _native_steps_for(one[lay]))
            speed = {procs[lay]: quiet(procs[lay])}
            t = _steady(lambda: _native_timing(soc, {procs[lay]: call})[procs[lay]])
            one[lay] = t.median
        else:
            sample = _on(p, fn, _loops(one[lay]), "sample", quiet.probe)
            t, speed = quiet.timed([procs[lay]], lambda: _steady(lambda: measure(sample, repeats=repeats, warmup=1)))
        rows.append((procs[lay], lay, "alone", t.median, t.min, speed[procs[lay]]))
    if len(fns) == 2:
        # Both processors at once, each repeating its call to fill about the same time.
        span = max(max(one.values()), MIN_SAMPLE_S)
        if all(c is not None for c in natives.values()):
            span = max(max(one.values()) * NATIVE_STEPS[0], NATIVE_SPAN_S)
            calls = {procs[lay]: (natives[lay], int(np.clip(np.ceil(span / max(one[lay], 1e-7)), NATIVE_STEPS[0],
                                                            NATIVE_STEPS_BOTH))) for lay in fns}
            speed = {p: quiet(p) for p in ("cpu", "gpu")}
            ts = _native_timing(soc, calls)
            for lay in ("buffer", "image"):
                t = ts[procs[lay]]
                rows.append((procs[lay], lay, "concurrent", t.median, t.min, speed[procs[lay]]))
            soc.trace.clear()
            return rows
        loops = {lay: max(1, int(round(span / max(one[lay], 1e-7)))) for lay in fns}
        cs = {lay: clocked(fns[lay], loops[lay], retries=RETRIES, speed=quiet.probe) for lay in fns}

        def both():
            c = soc.cpu.submit(cs["buffer"], op="sample")
            g = soc.gpu.submit(cs["image"], op="sample")
            return c.result(timeout=600)[0], g.result(timeout=600)[0]

        pairs, speed = quiet.timed(["cpu", "gpu"], lambda: samples(both, repeats=repeats, warmup=1))
        for i, lay in enumerate(("buffer", "image")):
            ts = [p[i] for p in pairs]
            rows.append((procs[lay], lay, "concurrent", float(np.median(ts)), min(ts), speed[procs[lay]]))
    soc.trace.clear()
    return rows


def _time_sharing(soc, repeats: int, probe) -> list:
    """Rows for transforms, map, unmap (by bytes), a sync and the dispatch of a task."""
    out = []
    speed = {p: probe(p) for p in ("cpu", "gpu")}
    rng = np.random.default_rng(1)
    for shape in SHARE_SHAPES:
        b = rng.standard_normal(shape, dtype=np.float32)
        img = layout.to_image(b)
        nbytes = b.nbytes
        cases = {
            "transform_to_buffer": ("gpu", lambda img=img, b=b: layout.to_buffer(img, b.shape[1], out=b)),
            "transform_to_image": ("gpu", lambda img=img, b=b: layout.to_image(b, out=img)),
        }
        for kind, (proc, fn) in cases.items():
            t = _steady(lambda fn=fn, proc=proc, kind=kind: measure(
                _on(soc[proc], fn, _loops(1e-4), kind, probe.probe), repeats=repeats, warmup=1))
            out.append({"kind": kind, "processor": proc, "bytes": nbytes, "seconds": t.median, "min_seconds": t.min,
                        "probe": speed[proc]})
        for kind, f in (("map", memory.cache_flush), ("unmap", memory.cache_clean)):
            def one(b=b, f=f):
                for _ in range(RETRIES + 1):
                    b += 0.0  # dirty the lines, as the kernel writing them would
                    w0 = waited()
                    t0 = time.perf_counter()
                    f(b)
                    dt = time.perf_counter() - t0
                    if not disturbed(dt, waited() - w0):
                        break
                return dt
            t = measure(lambda one=one: soc.cpu.submit(one, op=kind).result(timeout=60)[0], repeats=repeats + 2,
                        warmup=1)
            out.append({"kind": kind, "processor": "cpu", "bytes": nbytes, "seconds": t.median, "min_seconds": t.min,
                        "probe": speed["cpu"]})
    dispatch = {p: dispatch_seconds(soc, p) for p in ("cpu", "gpu")}
    for p, t in dispatch.items():
        out.append({"kind": "dispatch", "processor": p, "seconds": t, "min_seconds": t})
    t = sync_seconds(soc) - 2 * min(dispatch.values())
    out.append({"kind": "sync", "processor": "cpu", "seconds": max(0.0, t), "min_seconds": max(0.0, t)})
    soc.trace.clear()
    return out


def dispatch_seconds(soc, proc: str, n: int = 200) -> float:
    """Per-task overhead of a processor thread: queue, wrapper, trace record (median of 3 runs)."""
    p = soc[proc]
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        last = None
        for _ in range(n):
            last = p.submit(lambda: None, op="dispatch", after=[last] if last else [])
        last.result(timeout=60)
        runs.append((time.perf_counter() - t0) / n)
        soc.trace.clear()
    return float(np.median(runs))


def sync_seconds(soc, n: int = 50) -> float:
    """Seconds for one processor's thread to see the other's event, dispatch included (ping-pong)."""
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        last = None
        for _ in range(n):
            a = soc.cpu.submit(lambda: None, op="ping", after=[last] if last is not None else [])
            s = soc.sync([a], on="gpu", op="ping")
            b = soc.gpu.submit(lambda: None, op="pong", after=[s])
            last = soc.sync([b], on="cpu", op="pong")
        last.result(timeout=60)
        runs.append((time.perf_counter() - t0) / (2 * n))
        soc.trace.clear()
    return float(np.median(runs))


# ---------------------------------------------------------------------------
# Ops inside model runs


def trace_plans(graph, view) -> dict:
    """The plans whose runs :func:`_time_models` traces: each processor alone, and every
    op that can be split by output channels split half and half on images (so the
    traces hold co-executed kernels, transforms, maps, unmaps, syncs and every
    dispatch path)."""
    from ..coexec.plan import Chain, Plan
    from ..coexec.strategies import plan_single

    half = [Chain((op.name,), "OC", 0.5) if "OC" in op.splits and op.on_image and op.out_channels >= 8
            else Chain((op.name,), "none", 1.0 if op.on_image else 0.0) for op in view.ops]
    return {"cpu": plan_single(graph, "cpu", view=view), "gpu": plan_single(graph, "gpu", view=view),
            "half": Plan("half", half)}


def _time_models(soc, models, runs: int, progress: bool, probe) -> list:
    """Rows measured inside runs of the zoo's ``models`` (their :func:`trace_plans`): every
    kernel call's median seconds (``kind`` ``inmodel``, ``mode`` ``alone`` or
    ``concurrent`` as its chain has one or both processors computing), and every
    task's median dispatch gap by path and plan (``kind`` ``gap``, ``mode`` the path,
    ``bytes`` the run's task count; for the host copies, ``host_in``/``host_out``, the bytes)."""
    from ..coexec.executor import Executor
    from ..coexec.regions import chain_regions
    from ..coexec.strategies import sample_input
    from ..coexec.timeline import trace_gaps
    from ..progress import bar
    from .. import zoo
    from ..ir import fuse_relu
    from .sampling import describe

    rows = []
    with bar(len(models), "trace models", enabled=progress) as prog:
        for m in models:
            g = fuse_relu(zoo.build(m))
            prep = lower.prepare(g)
            view = prep.view
            x = sample_input(g)
            for pname, plan in trace_plans(g, view).items():
                both = {n: r.cpu.active() and r.gpu.active()
                        for c in plan.chains for r in [chain_regions(view, c)] for n in c.ops}
                per: dict = {}
                gaps: dict = {}
                speeds = []
                with Executor(g, plan, soc, prepared=prep) as ex:
                    runtime = "native" if ex.native else "python"
                    ex.run(x)  # warm-up
                    for _ in range(runs):
                        speeds.append([probe(p) for p in ("cpu", "gpu")])
                        ex.run(x)
                        tasks = list(soc.trace.tasks)  # before the probe adds its own
                        speeds.append([probe(p) for p in ("cpu", "gpu")])
                        for t in tasks:
                            if t.kind == "compute":
                                per.setdefault((t.op, t.processor, t.layout, json_region(t.region)), []).append(
                                    t.duration)
                        n_tasks = sum(1 for t in tasks if t.processor != "host")
                        for path, vals in trace_gaps(tasks).items():
                            if path in ("host_in", "host_out"):
                                gaps.setdefault(path, []).extend(vals)
                            else:
                                gaps.setdefault(path, []).extend((n_tasks, v) for v in vals)
                speed = dict(zip(("cpu", "gpu"), np.mean(speeds, axis=0).tolist()))
                for path, vals in gaps.items():  # one row per path: the median gap, bytes or tasks
                    if vals:
                        b, v = np.median(np.array(vals, float), axis=0)
                        rows.append({"kind": "gap", "mode": path, "split": runtime, "bytes": int(b),
                                     "seconds": float(v),
                                     "min_seconds": float(min(x[1] for x in vals)), "model": f"{m}/{pname}"})
                soc.trace.clear()
                for (name, proc, lay, reg), ts in per.items():
                    r0, r1, c0, c1 = _region_of(view.op(name), reg)
                    rows.append({"kind": "inmodel", **describe(view.op(name)), "split": pname, "r0": r0, "r1": r1,
                                 "c0": c0, "c1": c1, "processor": proc, "layout": lay or ("buffer" if proc == "cpu"
                                                                                          else "image"),
                                 "mode": "concurrent" if both[name] else "alone",
                                 "seconds": float(np.median(ts)) / speed[proc],
                                 "min_seconds": float(min(ts)) / speed[proc], "model": m, "probe": speed[proc]})
            prog.update(1)
    return rows


def json_region(region: dict) -> tuple:
    """A trace record's region dict as a hashable (rows, channels) pair."""
    return (tuple(region.get("rows", ())), tuple(region.get("channels", ())))


def _region_of(op, reg) -> tuple:
    rows, chans = reg
    r = rows if rows else (0, op.out_rows)
    c = chans if chans else (0, op.out_channels)
    return (int(r[0]), int(r[1]), int(c[0]), int(c[1]))


def collect(n: int, soc, *, seed: int = 0, repeats: int = 7, progress: bool = True,
            models=TRACE_MODELS, runs: int = 3) -> Dataset:
    """Measure ``n`` sampled ops, the sharing operations and the runs of ``models`` on
    ``soc`` (see the module docstring)."""
    from ..progress import bar

    host = hw_host.host_id()
    probe = _Quiet(soc)
    rows = _time_sharing(soc, repeats, probe)
    zoo = zoo_descriptions()
    drawn = list(sample(n, seed, zoo=zoo))
    with bar(n, "measure ops", enabled=progress) as prog:
        for lo in range(0, len(drawn), ROUND_OPS):
            chunk = drawn[lo:lo + ROUND_OPS]
            sops = [_Op(s["graph"], s["region"]) for s in chunk]
            best: dict = {}  # (sample, processor, mode) -> the quietest round's row
            for r in range(ROUNDS):
                for k in range(len(chunk)):
                    i = (k + r * len(chunk) // max(1, ROUNDS)) % len(chunk)  # each round starts elsewhere
                    for proc, lay, mode, med, mn, speed in _time_op(soc, sops[i], repeats, probe):
                        old = best.get((i, proc, mode))
                        if old is None or med < old[2]:
                            best[(i, proc, mode)] = (lay, speed, med, min(mn, old[3]) if old else mn)
                        else:
                            best[(i, proc, mode)] = (*old[:3], min(mn, old[3]))
            for (i, proc, mode), (lay, speed, med, mn) in sorted(best.items()):
                d, reg = chunk[i]["desc"], chunk[i]["region"]
                rows.append({"kind": "op", **d, "split": chunk[i]["split"], "r0": reg[0], "r1": reg[1],
                             "c0": reg[2], "c1": reg[3], "processor": proc, "layout": lay, "mode": mode,
                             "seconds": med, "min_seconds": mn, "probe": speed})
            del sops
            prog.update(len(chunk))
    if models:
        rows += _time_models(soc, tuple(models), runs, progress, probe)
    meta = {**host.as_json(), "samples": n, "seed": seed, "repeats": repeats, "models": ",".join(models or ()),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return Dataset(rows, meta)


def cached(n: int, *, seed: int = 0, repeats: int = 7, soc=None, progress: bool = True,
           refresh: bool = False, models=TRACE_MODELS, runs: int = 3) -> tuple[Dataset, Path, bool]:
    """The dataset of ``n`` samples (and traced ``models``) for this host from the cache,
    else measured (on ``soc``, default ``SoC.host()``) and cached.  Returns (dataset,
    path, whether it was measured now)."""
    import zlib

    from ...hw import SoC

    host = hw_host.host_id()
    models = tuple(models or ())
    tag = f"v{VERSION}-n{n}-s{seed}-r{repeats}"
    if models != TRACE_MODELS:
        tag += f"-m{zlib.crc32(','.join(models).encode()):08x}"
    path = None if refresh else hw_host.find_cached("dataset", host, ".csv", tag)
    if path is not None:
        try:
            return Dataset.load(path), path, False
        except (ValueError, KeyError, OSError):
            pass
    kw = dict(seed=seed, repeats=repeats, progress=progress, models=models, runs=runs)
    if soc is None:
        with SoC.host() as s:
            ds = collect(n, s, **kw)
    else:
        ds = collect(n, soc, **kw)
    path = ds.save(hw_host.cache_path("dataset", host, ".csv", tag))
    return ds, path, True
