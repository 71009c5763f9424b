"""The latency dataset: sampled ops and sharing operations timed on this host's processors.

:func:`collect` measures ``n`` sampled op instances (:mod:`.sampling`) on each
processor's pinned thread with its own kernel set (``cpu`` on buffers,
``gpu`` on images where the image kernels support the op), alone and with
the other processor computing the same op at the same time, each through
the one timing harness (:mod:`.measure`: a warm-up call, then ``repeats``
samples, the median).  It adds the sharing operations by bytes: layout
transforms both ways (on the GPU's thread, as the executor runs them), map
and unmap (cache maintenance, on the CPU's thread), a sync (a ping-pong
between the threads) and the per-task dispatch time of a processor thread.

A :class:`Dataset` is rows of plain values and a header of facts about the
host (``isa``, ``cpu``, ``clock_ghz``) and the run (``version``, ``samples``,
``seed``, ``repeats``).  It is saved as CSV with the header as ``# key:
value`` comment lines (:meth:`Dataset.save`, :meth:`Dataset.load`; never
pickle) and cached per host (:func:`cached`: same ISA, CPU and clock within
6%), so later runs reuse it.

Row fields: ``kind`` (``op``, ``transform_to_buffer``, ``transform_to_image``,
``map``, ``unmap``, ``sync``, ``dispatch``), the op description
(:data:`~.sampling.DESC_KEYS` and ``type``), ``split`` (``full``, ``H``,
``OC``) and the region ``r0 r1 c0 c1``, ``processor``, ``layout``, ``mode``
(``alone`` or ``concurrent``), ``bytes``, ``seconds`` (the median) and
``min_seconds``.
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
from ...kernels import layout
from ..coexec import lower
from ..coexec.view import view_of
from ..ops import as4d
from .measure import clocked, measure, samples
from .sampling import DESC_KEYS, sample, zoo_descriptions

VERSION = 1
FIELDS = ("kind", "type", *DESC_KEYS, "split", "r0", "r1", "c0", "c1", "processor", "layout", "mode",
          "bytes", "seconds", "min_seconds")
_INT = set(DESC_KEYS) | {"r0", "r1", "c0", "c1", "bytes"}
_FLOAT = {"seconds", "min_seconds"}
#: Each timed sample lasts at least this long (a kernel call is repeated to fill it).
MIN_SAMPLE_S = 4e-4
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
                    out[k] = float(v)
                else:
                    out[k] = v
            rows.append(out)
        meta.pop("version", None)
        for k in ("clock_ghz",):
            if k in meta:
                meta[k] = float(meta[k])
        for k in ("samples", "seed", "repeats"):
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


def _on(proc, fn, loops: int, label: str):
    """A harness sample: ``fn`` called ``loops`` times on ``proc``'s thread, seconds per call."""
    s = clocked(fn, loops)
    return lambda: proc.submit(s, op=label).result(timeout=600)[0]


def _loops(one_s: float) -> int:
    return max(1, int(np.ceil(MIN_SAMPLE_S / max(one_s, 1e-7))))


def _time_op(soc, sop: _Op, repeats: int) -> list:
    """Rows for one sampled op: each layout alone on its processor, then both at once."""
    rows = []
    procs = {"buffer": "cpu", "image": "gpu"}
    fns = {lay: sop.call(lay) for lay in sop.layouts}
    one = {}
    for lay, fn in fns.items():
        p = soc[procs[lay]]
        p.submit(fn, op="warm-up").result(timeout=600)  # compiles, faults pages in
        one[lay] = p.submit(clocked(fn), op="probe").result(timeout=600)[0]
        t = measure(_on(p, fn, _loops(one[lay]), "sample"), repeats=repeats, warmup=1)
        rows.append((procs[lay], lay, "alone", t.median, t.min))
    if len(fns) == 2:
        # Both processors at once, each repeating its call to fill about the same time.
        span = max(max(one.values()), MIN_SAMPLE_S)
        loops = {lay: max(1, int(round(span / max(one[lay], 1e-7)))) for lay in fns}
        cs = {lay: clocked(fns[lay], loops[lay]) for lay in fns}

        def both():
            c = soc.cpu.submit(cs["buffer"], op="sample")
            g = soc.gpu.submit(cs["image"], op="sample")
            return c.result(timeout=600)[0], g.result(timeout=600)[0]

        pairs = samples(both, repeats=repeats, warmup=1)
        for i, lay in enumerate(("buffer", "image")):
            ts = [p[i] for p in pairs]
            rows.append((procs[lay], lay, "concurrent", float(np.median(ts)), min(ts)))
    soc.trace.clear()
    return rows


def _time_sharing(soc, repeats: int) -> list:
    """Rows for transforms, map, unmap (by bytes), a sync and the dispatch of a task."""
    out = []
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
            t = measure(_on(soc[proc], fn, _loops(1e-4), kind), repeats=repeats, warmup=1)
            out.append({"kind": kind, "processor": proc, "bytes": nbytes, "seconds": t.median, "min_seconds": t.min})
        for kind, f in (("map", memory.cache_flush), ("unmap", memory.cache_clean)):
            def one(b=b, f=f):
                b += 0.0  # dirty the lines, as the kernel writing them would
                t0 = time.perf_counter()
                f(b)
                return time.perf_counter() - t0
            t = measure(lambda one=one: soc.cpu.submit(one, op=kind).result(timeout=60)[0], repeats=repeats + 2,
                        warmup=1)
            out.append({"kind": kind, "processor": "cpu", "bytes": nbytes, "seconds": t.median, "min_seconds": t.min})
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


def collect(n: int, soc, *, seed: int = 0, repeats: int = 5, progress: bool = True) -> Dataset:
    """Measure ``n`` sampled ops and the sharing operations on ``soc`` (see the module docstring)."""
    from ..progress import bar

    host = hw_host.host_id()
    rows = _time_sharing(soc, repeats)
    zoo = zoo_descriptions()
    with bar(n, "measure ops", enabled=progress) as prog:
        for i, s in enumerate(sample(n, seed, zoo=zoo)):
            d, reg = s["desc"], s["region"]
            sop = _Op(s["graph"], reg)
            for proc, lay, mode, med, mn in _time_op(soc, sop, repeats):
                rows.append({"kind": "op", **d, "split": s["split"], "r0": reg[0], "r1": reg[1], "c0": reg[2],
                             "c1": reg[3], "processor": proc, "layout": lay, "mode": mode, "seconds": med,
                             "min_seconds": mn})
            prog.update(1)
    meta = {**host.as_json(), "samples": n, "seed": seed, "repeats": repeats,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return Dataset(rows, meta)


def cached(n: int, *, seed: int = 0, repeats: int = 5, soc=None, progress: bool = True,
           refresh: bool = False) -> tuple[Dataset, Path, bool]:
    """The dataset of ``n`` samples for this host from the cache, else measured (on ``soc``,
    default ``SoC.host()``) and cached.  Returns (dataset, path, whether it was measured now)."""
    from ...hw import SoC

    host = hw_host.host_id()
    tag = f"v{VERSION}-n{n}-s{seed}"
    path = None if refresh else hw_host.find_cached("dataset", host, ".csv", tag)
    if path is not None:
        try:
            return Dataset.load(path), path, False
        except (ValueError, KeyError, OSError):
            pass
    if soc is None:
        with SoC.host() as s:
            ds = collect(n, s, seed=seed, repeats=repeats, progress=progress)
    else:
        ds = collect(n, soc, seed=seed, repeats=repeats, progress=progress)
    path = ds.save(hw_host.cache_path("dataset", host, ".csv", tag))
    return ds, path, True
