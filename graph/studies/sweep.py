"""Parameter sweeps: ``coinfer sweep SPEC.toml`` runs the product of the spec's axes, point by point.

The spec is TOML::

    [axes]
    models = ["branchy_alexnet", "branchy_lenet"]   # zoo or branchy names, or .onnx paths (required)
    socs = ["raspberry_pi", "nexus5_cpu"]           # cost profiles: the SoC (CoDL) or the device (Edgent)
    strategies = ["edgent"]                          # cpu gpu mulayer codl-nochain codl | device-only
                                                     #   edge-only neurosurgeon edgent
    bandwidths = ["250kbps", "500kbps", "1Mbps", "4Mbps"]   # device-edge strategies only
    targets_ms = [100, 200, 300, 500]

    [run]
    mode = "plan"          # "plan": plan and predict only; "execute": also run the kernels
    edge = "desktop_edge"  # the edge's profile (device-edge strategies)
    rtt_ms = 20            # the link's round-trip time
    repeat = 3             # execute: runs per point (median)

A key left out of ``[axes]`` is not swept: ``socs`` is then ``host``,
``strategies`` ``edgent`` when bandwidths are given and ``codl`` otherwise,
and there is no bandwidth or target.  A CoDL strategy runs on one SoC, so
it may not be given a bandwidth (a target only sets ``met``); a device-edge
strategy needs one.

**Each point is an independent task** (:func:`run_point`), submitted to any
:class:`concurrent.futures.Executor`: ``--scheduler local`` (this process,
one at a time), ``processes`` (a process pool), ``local-dask`` (a Dask
``LocalCluster`` on 127.0.0.1 started for the run) or ``dask://HOST:PORT``
(an existing Dask scheduler; ``Client.get_executor()``), so a cluster runs
the same sweep unchanged.  Dask is ``pip install 'coinfer[dist]'`` (with
pyarrow and tqdm).  The tasks' arguments are plain data (strings, numbers and
the JSON cost tables); Dask and the process pool carry them between their
processes with pickle, so run a Dask cluster only among machines you trust.

**Plan mode is deterministic.**  Planning from timings taken on the spot is
not (two profiling passes differ a little, and near-equal candidates then
swap).  So before the sweep the driver reads each model's cost table on this
host (:mod:`coinfer.graph.costs.tables`: measured once per host, model and
coinfer version, and cached as JSON) and ships it with every task; workers
measure nothing, and every scheduler gives the same rows.  In execute mode
the measured columns (``measured_ms``) are timings and vary; workers sharing
a machine also share its cores, so time execute sweeps with one worker.

**Results** go to ``--out``: Parquet (``.parquet``, pyarrow) or CSV, one row
per point (:data:`COLUMNS`: the point, the predicted latency and its
breakdown, the plan, coinfer's version, the ISA the kernels are compiled for
and the host), in the order of the points whatever order they finished in.
The file is rewritten as points finish (at most every few seconds), so an
interrupted sweep keeps what it did; **a point already in the output is
skipped** on the next run.  A progress bar (tqdm) on stderr shows points
done of the total with an ETA.
"""
from __future__ import annotations

import itertools
import math
import os
import sys
import time
from dataclasses import dataclass, field
from .messages import error_line

__all__ = ["Spec", "COLUMNS", "KEY", "run_point", "run_sweep", "make_executor", "read_rows", "write_rows",
           "cli_main", "add_parser", "DistMissing"]

AXES = ("models", "socs", "strategies", "bandwidths", "targets_ms")
MODES = ("plan", "execute")
SCHEDULERS = ("local", "processes", "local-dask", "dask://HOST:PORT")

#: Output columns and their types ("str", "float", "int", "bool"); None where they do not apply.
#: ``exit`` is the 0-based index into ``Graph.exits`` (as in the API); the ``plan`` text counts exits from 1,
#: as Edgent's paper and the CLI tables do.
COLUMNS = (
    ("model", "str"), ("soc", "str"), ("strategy", "str"), ("bandwidth", "str"), ("bandwidth_bps", "float"),
    ("target_ms", "float"), ("mode", "str"), ("edge", "str"), ("rtt_ms", "float"),
    ("total_ms", "float"), ("cpu_ms", "float"), ("gpu_ms", "float"), ("device_ms", "float"), ("edge_ms", "float"),
    ("sharing_ms", "float"), ("transfer_ms", "float"), ("met", "bool"), ("accuracy", "float"),
    ("exit", "int"), ("cut", "int"), ("direction", "str"), ("plan", "str"), ("measured_ms", "float"),
    ("costs", "str"), ("coinfer", "str"), ("isa", "str"), ("host", "str"),
)
#: The columns that identify a point (resuming skips points whose key is in the output).
KEY = ("model", "soc", "strategy", "bandwidth", "target_ms", "mode", "edge", "rtt_ms")


class DistMissing(ImportError):
    pass


def _need(module: str, extra: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DistMissing(f"{what} needs {module.split('.')[0]}: pip install 'coinfer[{extra}]'") from e


# -- the spec ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    axes: dict
    mode: str = "plan"
    edge: str = "desktop_edge"
    rtt_ms: float = 20.0
    repeat: int = 3
    given: tuple = field(default=(), compare=False)

    @classmethod
    def load(cls, path) -> "Spec":
        """Read and check a TOML spec file (see the module docstring)."""
        import tomllib

        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"sweep spec {path}: not valid TOML: {e}") from None
        except OSError as e:
            raise OSError(f"sweep spec {str(path)!r}: cannot read it: {e.strerror or e}") from None
        return cls.from_dict(doc, str(path))

    @classmethod
    def from_dict(cls, doc: dict, who: str = "sweep spec") -> "Spec":
        from ...hw.link import parse_rate
        from ...hw.profile import get_profile
        from ..latencies import CODL_STRATEGIES, EDGE_STRATEGIES

        extra = set(doc) - {"axes", "run"}
        if extra:
            raise ValueError(f"{who}: unknown table(s) {sorted(extra)}; a spec has [axes] and [run]")
        axes_in = doc.get("axes")
        if not isinstance(axes_in, dict):
            raise ValueError(f"{who}: needs an [axes] table")
        unknown = set(axes_in) - set(AXES)
        if unknown:
            raise ValueError(f"{who}: unknown axes {sorted(unknown)}; axes are {', '.join(AXES)}")
        for k, v in axes_in.items():
            if not isinstance(v, list) or not v:
                raise ValueError(f"{who}: axis {k!r} must be a non-empty list, got {v!r}")
            if len(set(map(str, v))) != len(v):
                raise ValueError(f"{who}: axis {k!r} repeats a value: {v!r}")
        if "models" not in axes_in:
            raise ValueError(f"{who}: [axes] needs models")
        axes = {
            "models": [str(m) for m in axes_in["models"]],
            "socs": [str(s) for s in axes_in.get("socs", ["host"])],
            "strategies": [str(s) for s in axes_in.get("strategies",
                                                       ["edgent" if "bandwidths" in axes_in else "codl"])],
            "bandwidths": [str(b) for b in axes_in.get("bandwidths", [None])] if "bandwidths" in axes_in else [None],
            "targets_ms": list(axes_in.get("targets_ms", [None])),
        }
        for s in axes["socs"]:
            get_profile(s)
        for b in axes["bandwidths"]:
            if b is not None:
                parse_rate(b)
        for t in axes["targets_ms"]:
            if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0):
                raise ValueError(f"{who}: targets_ms must be numbers > 0 (ms), got {t!r}")
        axes["targets_ms"] = [None if t is None else float(t) for t in axes["targets_ms"]]
        for s in axes["strategies"]:
            if s not in CODL_STRATEGIES + EDGE_STRATEGIES:
                raise ValueError(f"{who}: unknown strategy {s!r}; choose from "
                                 f"{', '.join(CODL_STRATEGIES + EDGE_STRATEGIES)}")
            if s in CODL_STRATEGIES and "bandwidths" in axes_in:
                raise ValueError(f"{who}: strategy {s!r} runs on one SoC and takes no bandwidth; sweep the "
                                 f"device-edge strategies ({', '.join(EDGE_STRATEGIES)}) over bandwidths, or run "
                                 "two sweeps")
            if s in EDGE_STRATEGIES and "bandwidths" not in axes_in:
                raise ValueError(f"{who}: device-edge strategy {s!r} needs [axes] bandwidths")
        run = doc.get("run", {})
        if not isinstance(run, dict):
            raise ValueError(f"{who}: [run] must be a table")
        unknown = set(run) - {"mode", "edge", "rtt_ms", "repeat"}
        if unknown:
            raise ValueError(f"{who}: unknown [run] keys {sorted(unknown)}; known: mode, edge, rtt_ms, repeat")
        mode = run.get("mode", "plan")
        if mode not in MODES:
            raise ValueError(f"{who}: [run] mode must be 'plan' or 'execute', got {mode!r}")
        edge = str(run.get("edge", "desktop_edge"))
        get_profile(edge)
        rtt = run.get("rtt_ms", 20.0)
        if not (isinstance(rtt, (int, float)) and not isinstance(rtt, bool) and rtt >= 0 and math.isfinite(rtt)):
            raise ValueError(f"{who}: [run] rtt_ms must be a number >= 0, got {rtt!r}")
        repeat = run.get("repeat", 3)
        if not (isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1):
            raise ValueError(f"{who}: [run] repeat must be an int >= 1, got {repeat!r}")
        return cls(axes, mode, edge, float(rtt), repeat, tuple(axes_in))

    @property
    def edge_strategies(self) -> bool:
        return self.axes["bandwidths"] != [None]

    def points(self) -> list[dict]:
        """Every point of the product, in a fixed order (models, socs, strategies, bandwidths, targets)."""
        out = []
        edge = self.edge if self.edge_strategies else None
        for m, s, st, b, t in itertools.product(*(self.axes[a] for a in AXES)):
            out.append({"model": m, "soc": s, "strategy": st, "bandwidth": b, "target_ms": t, "mode": self.mode,
                        "edge": edge, "rtt_ms": self.rtt_ms if edge else None})
        return out

    def settings(self) -> dict:
        return {"repeat": self.repeat}


def point_key(row: dict) -> tuple:
    """A point's identity as strings (a row read back from a file compares equal)."""
    out = []
    for k in KEY:
        v = row.get(k)
        if isinstance(v, float) and math.isnan(v):
            v = None
        out.append(None if v is None else (repr(float(v)) if k in ("target_ms", "rtt_ms") else str(v)))
    return tuple(out)


# -- one point -----------------------------------------------------------------------------------

_WORKER: dict = {}  # per process: cost sources made from tables, by table id


def _costs(kind: str, graph, doc: dict):
    from ..costs import tables

    key = (kind, doc["digest"], doc["host"]["host"])
    c = _WORKER.get(key)
    if c is None:
        c = _WORKER[key] = tables.codl_costs(graph, doc) if kind == "codl" else tables.edgent_host(graph, doc)
    return c


def table_id(doc: dict) -> str:
    return f"{doc['kind']}:{doc['digest'][:16]}@{doc['host']['host']}"


def run_point(point: dict, tables: dict, settings: dict) -> dict:
    """One point's row (see :data:`COLUMNS`): plan and predict with :func:`coinfer.graph.latency`
    from the shipped cost ``tables`` ({"codl"|"edgent": table}); in execute mode also run
    the plan ``settings["repeat"]`` times and record the median (CoDL: wall time on this
    host's SoC replayed under the profile; Edgent: the frame's emulated latency)."""
    from ..costs.tables import host_info
    from ..latencies import CODL_STRATEGIES, latency, load_graph

    graph = load_graph(point["model"])
    codl = point["strategy"] in CODL_STRATEGIES
    kind = "codl" if codl else "edgent"
    doc = tables[kind]
    costs = _costs(kind, graph, doc)
    target = None if point["target_ms"] is None else point["target_ms"] / 1e3
    if codl:
        lat = latency(graph, point["soc"], point["strategy"], target_s=target, costs=costs)
    else:
        lat = latency(graph, point["soc"], point["strategy"], bandwidth=point["bandwidth"],
                      rtt_s=point["rtt_ms"] / 1e3, target_s=target, edge=point["edge"], costs=costs)
    d = lat.as_dict()
    row = {name: None for name, _ in COLUMNS}
    row.update({k: point[k] for k in ("model", "soc", "strategy", "bandwidth", "target_ms", "mode", "edge",
                                      "rtt_ms")})
    for k in ("total_ms", "cpu_ms", "gpu_ms", "device_ms", "edge_ms", "sharing_ms", "transfer_ms", "met",
              "accuracy", "exit", "cut", "direction", "plan", "bandwidth_bps"):
        if k in d:
            row[k] = d[k]
    if point["mode"] == "execute":
        row["measured_ms"] = _execute(graph, lat, point, settings.get("repeat", 3)) * 1e3
    row["costs"] = table_id(doc)
    row.update({"coinfer": host_info()["coinfer"], "isa": host_info()["isa"], "host": host_info()["host"]})
    return row


def _execute(graph, lat, point: dict, repeat: int) -> float:
    import numpy as np

    from ..coexec.strategies import sample_input

    x = sample_input(graph)
    if isinstance(lat.plan, tuple):
        from ...hw.link import Link
        from ..edgent.runtime import CoRunner

        link = Link(point["bandwidth"], point["rtt_ms"] / 1e3)
        with CoRunner(graph, point["soc"], point["edge"]) as runner:
            runner.run(x, lat.plan, link)
            return float(np.median([runner.run(x, lat.plan, link).emulated_s for _ in range(repeat)]))
    from ...hw import SoC
    from ..coexec.executor import Executor

    with SoC.host() as soc:
        ex = Executor(graph, lat.plan, soc)
        try:
            ex.run(x)
            times = []
            for _ in range(repeat):
                ex.run(x)
                times.append(soc.trace.replay(point["soc"]))
            return float(np.median(times))
        finally:
            ex.close()


# -- files -----------------------------------------------------------------------------------------

def _fmt(path) -> str:
    p = str(path).lower()
    if p.endswith(".parquet"):
        return "parquet"
    if p.endswith(".csv"):
        return "csv"
    raise ValueError(f"sweep: --out must end in .parquet or .csv, got {path!r}")


def _typed(v, t: str):
    if v is None or v == "":
        return None
    if t == "float":
        v = float(v)
        return None if math.isnan(v) else v
    if t == "int":
        return int(v)
    if t == "bool":
        return v if isinstance(v, bool) else str(v) == "True"
    return str(v)


def read_rows(path) -> list[dict]:
    """The rows of a sweep's output file (none if it does not exist)."""
    if not os.path.exists(path):
        return []
    types = dict(COLUMNS)
    if _fmt(path) == "parquet":
        pq = _need("pyarrow.parquet", "dist", "a Parquet output")
        rows = pq.read_table(path).to_pylist()
    else:
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    return [{k: _typed(r.get(k), t) for k, t in types.items()} for r in rows]


def write_rows(path, rows: list[dict]) -> None:
    """Write ``rows`` (all of them) to ``path``, replacing it atomically."""
    tmp = f"{path}.{os.getpid()}.tmp"
    if _fmt(path) == "parquet":
        pa = _need("pyarrow", "dist", "a Parquet output")
        pq = _need("pyarrow.parquet", "dist", "a Parquet output")
        kinds = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
        schema = pa.schema([(k, kinds[t]) for k, t in COLUMNS])
        table = pa.Table.from_pylist([{k: r.get(k) for k, _ in COLUMNS} for r in rows], schema=schema)
        pq.write_table(table, tmp)
    else:
        import csv

        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([k for k, _ in COLUMNS])
            for r in rows:
                w.writerow(["" if r.get(k) is None else (repr(r[k]) if isinstance(r[k], float) else r[k])
                            for k, _ in COLUMNS])
    os.replace(tmp, path)


# -- schedulers ------------------------------------------------------------------------------------

class _Closing:
    """An executor and what must be closed after it (a Dask client and cluster)."""

    def __init__(self, executor, *closers):
        self.executor, self.closers = executor, closers

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc):
        self.executor.shutdown(wait=True)
        for c in self.closers:
            c.close()


def make_executor(scheduler: str, workers: int | None = None) -> _Closing:
    """A context manager giving a :class:`concurrent.futures.Executor` for ``scheduler``."""
    import concurrent.futures as cf

    n = workers or os.cpu_count() or 1
    if scheduler == "local":
        return _Closing(cf.ThreadPoolExecutor(max_workers=1))
    if scheduler == "processes":
        import multiprocessing

        return _Closing(cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")))
    if scheduler == "local-dask" or scheduler.startswith("dask://"):
        dist = _need("dask.distributed", "dist", f"--scheduler {scheduler}")
        if scheduler == "local-dask":
            cluster = dist.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None)
            client = dist.Client(cluster)
            return _Closing(client.get_executor(), client, cluster)
        address = scheduler[len("dask://"):]
        if not address or ":" not in address:
            raise ValueError(f"sweep: --scheduler dask://HOST:PORT needs a host and port, got {scheduler!r}")
        client = dist.Client(f"tcp://{address}", timeout="30s")
        return _Closing(client.get_executor(), client)
    raise ValueError(f"sweep: --scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")


class _Bar:
    """tqdm's bar (points done of the total, with an ETA), else one line per point."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.total, self.done, self.t0 = total, done, time.perf_counter()
        self.started = done
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=done, unit="point", desc="sweep", file=sys.stderr)
            except ImportError:
                pass

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            rate = (self.done - self.started) / max(time.perf_counter() - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"[sweep] {self.done}/{self.total} points, ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def prepare_tables(spec: Spec, progress: bool = True) -> dict:
    """{model: {"codl"|"edgent": cost table}} for the kinds the spec's strategies need,
    read from this host's cache or measured now (see :mod:`coinfer.graph.costs.tables`)."""
    from ..costs import tables
    from ..latencies import CODL_STRATEGIES, load_graph

    kinds = sorted({"codl" if s in CODL_STRATEGIES else "edgent" for s in spec.axes["strategies"]})
    out = {}
    for m in spec.axes["models"]:
        g = load_graph(m)
        out[m] = {k: tables.table(k, g, progress=progress) for k in kinds}
    return out


def run_sweep(spec: Spec, executor, out, *, tables: dict | None = None, progress: bool = True,
              flush_s: float = 5.0, timeout: float | None = None) -> dict:
    """Run ``spec``'s points not already in ``out`` through ``executor``; write every row to ``out``.

    ``tables``: {model: {kind: cost table}} (default :func:`prepare_tables`);
    ``timeout``: seconds for the whole sweep (TimeoutError past it; the rows done so
    far are written).
    Returns ``{"points", "skipped", "ran", "failed": [(point, message)], "rows"}``.
    """
    _fmt(out)
    points = spec.points()
    old = read_rows(out)
    have = {point_key(r): r for r in old}
    todo = [p for p in points if point_key(p) not in have]
    if tables is None:
        tables = prepare_tables(spec, progress) if todo else {}
    settings = spec.settings()
    new: dict = {}
    failed = []
    bar = _Bar(len(points), len(points) - len(todo), progress)
    order = {point_key(p): i for i, p in enumerate(points)}

    def rows_now():
        rows = dict(have)
        rows.update(new)
        return sorted(rows.values(), key=lambda r: order.get(point_key(r), len(order)))

    try:
        import concurrent.futures as cf

        futures = {executor.submit(run_point, p, tables[p["model"]], settings): p for p in todo}
        last = time.perf_counter()
        for fut in cf.as_completed(futures, timeout=timeout):
            p = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # noqa: BLE001 - one point's failure is reported, the rest go on
                failed.append((p, f"{type(e).__name__}: {e}"))
            else:
                new[point_key(p)] = row
            bar.step()
            if new and time.perf_counter() - last > flush_s:
                write_rows(out, rows_now())
                last = time.perf_counter()
    finally:
        bar.close()
        if new or not os.path.exists(out):
            write_rows(out, rows_now())
    return {"points": len(points), "skipped": len(points) - len(todo), "ran": len(new), "failed": failed,
            "rows": rows_now()}


# -- the command line ---------------------------------------------------------------------------------

def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run the product of a TOML spec's axes (models, socs, strategies, "
                       "bandwidths, targets_ms), point by point, to Parquet or CSV")
    p.add_argument("spec", help="the spec, a TOML file with [axes] and [run]")
    p.add_argument("--scheduler", default="processes",
                   help="local | processes (default) | local-dask | dask://HOST:PORT")
    p.add_argument("--workers", type=int, default=None, help="processes or local-dask workers (default: cores)")
    p.add_argument("--out", default="results.parquet", help="output file, .parquet (pyarrow) or .csv "
                   "(default results.parquet); points already in it are skipped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cli_main(args) -> int:
    try:
        spec = Spec.load(args.spec)
        _fmt(args.out)
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        if _fmt(args.out) == "parquet":
            _need("pyarrow.parquet", "dist", "a Parquet output (--out *.parquet)")
        if args.scheduler == "local-dask" or args.scheduler.startswith("dask://"):
            _need("dask.distributed", "dist", f"--scheduler {args.scheduler}")
        elif args.scheduler not in ("local", "processes"):
            raise ValueError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {args.scheduler!r}")
    except (ValueError, OSError, DistMissing) as e:
        print(error_line("sweep", e), file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        with make_executor(args.scheduler, args.workers) as ex:
            res = run_sweep(spec, ex, args.out, progress=not args.quiet)
    except (ValueError, OSError, ImportError) as e:
        print(error_line("sweep", e), file=sys.stderr)
        return 2
    for p, msg in res["failed"]:
        print(f"coinfer sweep: point {p} failed: {msg}", file=sys.stderr)
    print(f"coinfer sweep: {res['ran']} points run, {res['skipped']} already in {args.out}, "
          f"{len(res['failed'])} failed, of {res['points']}; {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 1 if res["failed"] else 0
