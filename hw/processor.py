"""Processors: named pools of pinned worker threads that run kernels on regions.

Each worker thread owns a FIFO queue and is pinned to one core with
``os.sched_setaffinity`` (from inside the thread, so only that thread is
pinned).  A task is split into tiles; tile ``i`` runs on thread ``i % threads``.
A tile first waits for the task's dependencies (other tasks' handles), then
runs, then is recorded in the processor's :class:`~coinfer.hw.trace.Trace`.

Dependencies always point at tasks submitted earlier, and every thread runs
its queue in submission order, so the oldest unfinished task can always run:
waiting on dependencies never deadlocks (a task that itself blocks on
something outside the pools can still stall its thread).  A failed task fails its dependents (they are not run
and not recorded); the pool itself keeps working.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import weakref

import numpy as np

from coinfer.kernels import LAYOUTS

from .memory import spin_wait
from .profile import KINDS, get_profile
from .task import SyncTimeout, Task, TaskError
from .trace import Trace

__all__ = ["Processor", "LAYOUTS", "split_range"]

# How long a worker watches a dependency's done flag (on its own core, without
# the interpreter lock) before it sleeps on the task's event: a sleeping thread
# pays an OS wake-up on every sync, tens of microseconds in a VM.
SPIN_S = 100e-6
# Kinds that may wait on another processor's tasks: waiting across processors is
# a sync (a recorded, costed operation), or data crossing a link.
CROSS_KINDS = ("sync", "transfer", "load")


def _realise(seconds: float, overshoot: float) -> float:
    """Wait at least ``seconds``; return the time actually waited.

    Sleeps (GIL released) until ``overshoot`` (this thread's measured sleep
    overshoot) before the deadline, then spins the rest with ``sched_yield``.
    The spin is kept this short on purpose: a spinning Python thread keeps
    retaking the GIL and delays the other workers' dispatch.
    """
    if seconds <= 0:
        return 0.0
    begin = time.perf_counter()
    deadline = begin + seconds
    if seconds > overshoot:
        time.sleep(seconds - overshoot)
    while time.perf_counter() < deadline:
        os.sched_yield()
    return time.perf_counter() - begin


def _fine_timer() -> float:
    """Ask Linux for 1 ns timer slack on this thread (default 50 us) and return the
    typical overshoot of a short sleep, in seconds."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass
    over = []
    for _ in range(7):
        t = time.perf_counter()
        time.sleep(20e-6)
        over.append(time.perf_counter() - t - 20e-6)
    return max(0.0, sorted(over)[len(over) // 2])


class _Tile:
    __slots__ = ("task", "index", "fn", "args", "kwargs", "region", "nbytes", "submitted", "timeout",
                 "steps", "raw")

    def __init__(self, task, index, fn, args, kwargs, region, nbytes, submitted, timeout, steps=None, raw=False):
        self.task, self.index, self.fn, self.args, self.kwargs = task, index, fn, args, kwargs
        self.region, self.nbytes, self.submitted, self.timeout = region, nbytes, submitted, timeout
        self.steps = steps  # a command list: [(op, fn, kwargs, region, nbytes), ...]
        self.raw = raw  # run fn(*args) as it is, unrecorded (Processor.call)


class _Pool:
    """The state worker threads share (holds no reference to the Processor)."""

    def __init__(self, name: str, cores: list, trace: Trace, profile, layout: str = "buffer"):
        self.name = name
        self.layout = layout
        self.cores = cores
        self.trace = trace
        self.profile = profile
        self.affinity: dict = {}


def _pin(pool: _Pool, k: int) -> None:
    core = pool.cores[k % len(pool.cores)] if pool.cores else None
    try:
        if core is not None:
            os.sched_setaffinity(0, {core})
        pool.affinity[k] = frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux, or the core went away: run unpinned
        pool.affinity[k] = None


def _worker(pool: _Pool, k: int, q: queue.SimpleQueue, started: threading.Barrier) -> None:
    _pin(pool, k)
    overshoot = _fine_timer()
    started.wait()
    while True:
        tile = q.get()
        if tile is None:
            return
        try:
            _run_tile(pool, k, tile, overshoot)
        except BaseException as e:  # a bug in the bookkeeping: fail the task, keep the thread
            if not tile.task.done():
                msg = f"{pool.name}: op '{tile.task.op}' failed in the pool: {type(e).__name__}: {e}"
                tile.task._finish(tile.index, None, None, (TaskError, msg, e))


def _wait_deps(pool: _Pool, tile: _Tile):
    """Wait for the task's dependencies; return (trace ids, failure or None)."""
    task = tile.task
    deadline = None if tile.timeout is None else time.perf_counter() + tile.timeout
    ids: list[int] = []
    for d in task.deps:
        remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
        if not d._flag[0]:
            spin = SPIN_S if remaining is None else min(SPIN_S, remaining)
            spin_wait(d._flag, spin)
        if not d._event.wait(remaining):
            msg = (f"{pool.name}: {task.kind} '{task.op}' timed out after {tile.timeout:g} s "
                   f"waiting for {d.processor} {d.kind} '{d.op}'")
            return ids, (SyncTimeout, msg, None)
        if d._failure is not None:
            msg = f"{pool.name}: op '{task.op}' not run: it depends on {d.processor} op '{d.op}', which failed"
            return ids, (TaskError, msg, d._error())
        ids.extend(d.ids)
    return ids, None


def _run_tile(pool: _Pool, k: int, tile: _Tile, overshoot: float) -> None:
    task = tile.task
    if tile.raw:
        try:
            task._finish(0, tile.fn(*tile.args), None, None)
        except Exception as e:
            task._finish(0, None, None, (TaskError, f"{pool.name}: '{task.op}' failed: {type(e).__name__}: {e}", e))
        return
    dep_ids, failure = _wait_deps(pool, tile)
    if failure is not None:
        task._finish(tile.index, None, None, failure)
        return
    if tile.index < 0:  # an empty task: a barrier that stands for its dependencies
        task._finish(-1, None, None, None, ids=dep_ids)
        return
    if tile.steps is not None:
        _run_steps(pool, k, tile, dep_ids)
        return
    trace, profile = pool.trace, pool.profile
    result, modelled = None, 0.0
    start = time.perf_counter()
    try:
        if tile.fn is not None:
            result = tile.fn(*tile.args, **tile.kwargs)
        if task.kind != "compute":
            modelled = profile.cost(task.kind, tile.nbytes)
            _realise(modelled, overshoot)
    except Exception as e:  # reported through the handle; the worker carries on
        failure = (TaskError, f"{pool.name}: op '{task.op}' failed: {type(e).__name__}: {e}", e)
    end = time.perf_counter()
    t0 = trace.t0
    rec = trace.record(
        pool.name, k, task.kind, task.op, start - t0, end - t0, deps=sorted(set(dep_ids)),
        region=tile.region, bytes=tile.nbytes, submitted=tile.submitted - t0, modelled=modelled,
        error=None if failure is None else failure[1],
        layout=task.meta.get("layout", pool.layout) if task.kind == "compute" else None,
        op_class=task.meta.get("op_class") if task.kind == "compute" else None,
    )
    task._finish(tile.index, result, rec, failure)


def _run_steps(pool: _Pool, k: int, tile: _Tile, dep_ids) -> None:
    """Run a command list back to back; record every step as its own compute task."""
    task, trace = tile.task, pool.trace
    t0 = trace.t0
    deps, rec, failure = sorted(set(dep_ids)), None, None
    for op, fn, kwargs, region, nbytes, meta in tile.steps:
        start = time.perf_counter()
        try:
            fn(**kwargs)
        except Exception as e:  # reported through the handle; the rest of the list is skipped
            failure = (TaskError, f"{pool.name}: op '{op}' failed: {type(e).__name__}: {e}", e)
        end = time.perf_counter()
        rec = trace.record(pool.name, k, "compute", op, start - t0, end - t0, deps=deps, region=region,
                           bytes=nbytes, submitted=tile.submitted - t0,
                           error=None if failure is None else failure[1],
                           layout=meta.get("layout", pool.layout), op_class=meta.get("op_class"))
        deps = [rec]
        if failure is not None:
            break
    task._finish(tile.index, None, rec, failure)


def _shutdown(queues) -> None:
    for q in queues:
        q.put(None)


def _pair(owner: str, name: str, r) -> tuple[int, int]:
    if not (isinstance(r, (tuple, list)) and len(r) == 2) or not all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in r
    ):
        raise TypeError(f"{owner}: {name} must be a pair of ints (start, stop), got {r!r}")
    a, b = int(r[0]), int(r[1])
    if not 0 <= a <= b:
        raise ValueError(f"{owner}: {name} must satisfy 0 <= start <= stop, got {r!r}")
    return a, b


def split_range(r0: int, r1: int, parts: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Split ``[r0, r1)`` into at most ``parts`` contiguous, near-equal, non-empty
    tiles whose inner edges are multiples of ``multiple``."""
    if r1 <= r0:
        return []
    units = -(-(r1 - r0) // multiple) if multiple > 1 else r1 - r0
    parts = max(1, min(parts, units))
    edges = [r0 + (units * i // parts) * multiple for i in range(parts)] + [r1]
    return [(a, min(b, r1)) for a, b in zip(edges, edges[1:]) if a < min(b, r1)]


class Processor:
    """A named pool of ``threads`` pinned workers with one layout and one kernel set.

    ``Processor(name, layout, kernels, cores, threads=1)``: ``layout`` is
    ``"buffer"`` or ``"image"``, ``kernels`` the matching kernel module (e.g.
    ``coinfer.kernels.buffer``; None for a pool that runs only what it is given),
    ``cores`` the cores its threads are pinned to (thread ``i`` on
    ``cores[i % len(cores)]``; a core this process may not use is replaced by
    one it may).  ``trace`` and ``profile`` are normally
    set by the :class:`~coinfer.hw.soc.SoC`.
    """

    def __init__(self, name: str, layout: str, kernels, cores=(0,), threads: int = 1, *,
                 trace: Trace | None = None, profile="host"):
        if not isinstance(name, str) or not name:
            raise TypeError(f"Processor: name must be a non-empty str, got {name!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"Processor {name}: layout must be one of {LAYOUTS}, got {layout!r}")
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"Processor {name}: threads must be an int >= 1, got {threads!r}")
        self.name = name
        self.layout = layout
        self._kernels = kernels
        self.threads = int(threads)
        self.requested_cores = self._cores(cores)
        trace = Trace() if trace is None else trace
        self._pool = _Pool(name, self._usable(self.requested_cores), trace, get_profile(profile), layout)
        self._lock = threading.Lock()
        self._closed = False
        self._queues = [queue.SimpleQueue() for _ in range(self.threads)]
        started = threading.Barrier(self.threads + 1)
        self._threads = [
            threading.Thread(target=_worker, args=(self._pool, k, q, started),
                             name=f"coinfer-{name}-{k}", daemon=True)
            for k, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()
        started.wait()
        self._finalizer = weakref.finalize(self, _shutdown, self._queues)

    def _cores(self, cores) -> list:
        if isinstance(cores, (int, np.integer)) and not isinstance(cores, bool):
            cores = (cores,)
        if not isinstance(cores, (tuple, list)) or not cores or not all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in cores
        ):
            raise ValueError(f"Processor {self.name}: cores must be a non-empty sequence of core ids, got {cores!r}")
        return [int(c) for c in cores]

    @staticmethod
    def _usable(cores: list) -> list:
        try:
            allowed = sorted(os.sched_getaffinity(0))
        except AttributeError:
            return []
        return [c if c in allowed else allowed[i % len(allowed)] for i, c in enumerate(cores)]

    # -- state --------------------------------------------------------------
    @property
    def kernels(self):
        """The kernel set this processor runs (a module such as ``coinfer.kernels.buffer``), or None."""
        return self._kernels

    @property
    def cores(self) -> list:
        """The cores the threads are pinned to (after fallback)."""
        return list(self._pool.cores)

    @property
    def affinity(self) -> dict:
        """Thread index -> the set of cores that thread may run on (None: unpinned)."""
        return dict(self._pool.affinity)

    @property
    def trace(self) -> Trace:
        return self._pool.trace

    @trace.setter
    def trace(self, trace: Trace) -> None:
        self._pool.trace = trace

    @property
    def profile(self):
        return self._pool.profile

    @profile.setter
    def profile(self, profile) -> None:
        self._pool.profile = get_profile(profile)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- work ---------------------------------------------------------------
    def run(self, op: str, fn, *args, rows=None, channels=None, split: str | None = None,
            tiles: int | None = None, after=(), kind: str = "compute", nbytes: int = 0,
            thread: int | None = None, timeout: float | None = None, meta: dict | None = None,
            **kwargs) -> Task:
        """Run ``fn(*args, rows=..., channels=..., **kwargs)`` over a region, in tiles.

        The region is split along ``split`` (``"rows"`` or ``"channels"``;
        default: rows if given, else channels) into ``tiles`` tiles (default:
        one per thread); channel tiles of an image processor are cut at
        multiples of 4.  Each tile gets its own ``rows`` / ``channels`` pair;
        a region not split is passed whole.  With no region, one tile runs on
        ``thread`` (default 0).  An empty region runs nothing: the handle
        completes when ``after`` does and stands for it as a dependency.
        ``nbytes`` is shared among tiles in proportion to their size.  ``meta``
        (``{"layout": ..., "op_class": ...}``) is recorded with each tile, as a
        command list's sixth item is (see :meth:`run_list`).
        """
        owner = f"{self.name}: op '{op}'"
        region = {}
        if rows is not None:
            region["rows"] = _pair(owner, "rows", rows)
        if channels is not None:
            region["channels"] = _pair(owner, "channels", channels)
        if split is None:
            split = "rows" if "rows" in region else ("channels" if "channels" in region else None)
        elif split not in ("rows", "channels"):
            raise ValueError(f"{owner}: split must be 'rows' or 'channels', got {split!r}")
        elif split not in region:
            raise ValueError(f"{owner}: split={split!r} needs a {split}= region")
        if any(a == b for a, b in region.values()):
            pieces = []
        elif split is None:
            pieces = [dict(region)]
        else:
            n = self.threads if tiles is None else int(tiles)
            if n < 1:
                raise ValueError(f"{owner}: tiles must be >= 1, got {tiles!r}")
            multiple = 4 if split == "channels" and self.layout == "image" else 1
            r0, r1 = region[split]
            pieces = [{**region, split: t} for t in split_range(r0, r1, n, multiple)]
        total = sum(_extent(p, split) for p in pieces) or 1
        tile_bytes = [int(nbytes) * _extent(p, split) // total for p in pieces]
        return self._submit(op, kind, fn, args, kwargs, pieces, tile_bytes, after, thread, timeout, meta)

    def submit(self, fn, *args, tiles=None, op: str | None = None, after=(), kind: str = "compute",
               nbytes: int = 0, thread: int | None = None, timeout: float | None = None, **kwargs) -> Task:
        """Run ``fn(*args, **tile, **kwargs)`` once per ``tiles`` entry (a dict of extra
        keyword arguments, e.g. ``{"rows": (0, 8)}``), tile ``i`` on thread
        ``i % threads``; ``tiles=None`` runs one call on ``thread`` (default 0)."""
        op = op if op is not None else getattr(fn, "__name__", "task")
        if tiles is None:
            pieces = [{}]
        elif isinstance(tiles, (list, tuple)) and all(isinstance(t, dict) for t in tiles):
            pieces = [dict(t) for t in tiles]
        else:
            raise TypeError(f"{self.name}: op '{op}': tiles must be a list of dicts of keyword arguments, got {tiles!r}")
        n = max(len(pieces), 1)
        tile_bytes = [int(nbytes) // n] * len(pieces)
        return self._submit(op, kind, fn, args, kwargs, pieces, tile_bytes, after, thread, timeout)

    def run_list(self, steps, *, after=(), thread: int = 0, timeout: float | None = None) -> Task:
        """Queue a command list: ``steps`` is ``[(op, fn, kwargs, region, nbytes), ...]``,
        run back to back on one thread as one queue entry (``fn(**kwargs)``).  A step
        may carry a sixth item, ``{"layout": ..., "op_class": ...}``, recorded with it
        (the kernel set it runs, when not the processor's own, and its op class, by which
        a profile scales it on replay).

        Each step is recorded in the trace as its own compute task, the first
        after ``after`` and each later one after the step before, so the trace
        is the same as for one task per step; what is saved is the queueing,
        waiting and waking of each step.  A step that raises fails the handle,
        naming its op, and the steps after it do not run.
        """
        items = []
        for st in steps:
            if not (isinstance(st, tuple) and len(st) in (5, 6) and isinstance(st[0], str) and callable(st[1])
                    and (len(st) == 5 or isinstance(st[5], dict))):
                raise TypeError(f"{self.name}: run_list steps must be (op, fn, kwargs, region, nbytes[, meta]), "
                                f"got {st!r}")
            items.append((st[0], st[1], dict(st[2]), dict(st[3]), int(st[4]), dict(st[5]) if len(st) == 6 else {}))
        if not items:
            raise ValueError(f"{self.name}: run_list needs at least one step")
        op = items[0][0] if len(items) == 1 else f"{items[0][0]}..{items[-1][0]}"
        deps = self._deps(op, "compute", after)
        if not (isinstance(thread, (int, np.integer)) and 0 <= thread < self.threads):
            raise ValueError(f"{self.name}: op '{op}': thread must be in [0, {self.threads}), got {thread!r}")
        task = Task(self._pool, op, "compute", 1, deps)
        tile = _Tile(task, 0, None, (), {}, {}, 0, time.perf_counter(), timeout, steps=items)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: processor is closed")
            self._queues[int(thread)].put(tile)
        return task

    def call(self, fn, *args, op: str = "call", thread: int = 0) -> Task:
        """Run ``fn(*args)`` on worker ``thread`` as it is: no dependencies, nothing recorded in
        the trace (a native program records its own tasks).  The handle's result is ``[fn's
        return value]``; an exception fails it, naming ``op``."""
        if not callable(fn):
            raise TypeError(f"{self.name}: op '{op}': fn must be callable, got {type(fn).__name__}")
        if not (isinstance(thread, (int, np.integer)) and 0 <= thread < self.threads):
            raise ValueError(f"{self.name}: op '{op}': thread must be in [0, {self.threads}), got {thread!r}")
        task = Task(self._pool, op, "compute", 1, ())
        tile = _Tile(task, 0, fn, args, {}, {}, 0, time.perf_counter(), None, raw=True)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: processor is closed")
            self._queues[int(thread)].put(tile)
        return task

    def _submit(self, op, kind, fn, args, kwargs, pieces, tile_bytes, after, thread, timeout, meta=None) -> Task:
        if not isinstance(op, str):
            raise TypeError(f"{self.name}: op must be a str, got {type(op).__name__}")
        if kind not in KINDS:
            raise ValueError(f"{self.name}: op '{op}': kind must be one of {KINDS}, got {kind!r}")
        if fn is not None and not callable(fn):
            raise TypeError(f"{self.name}: op '{op}': fn must be callable, got {type(fn).__name__}")
        deps = self._deps(op, kind, after)
        if thread is not None and not (isinstance(thread, (int, np.integer)) and 0 <= thread < self.threads):
            raise ValueError(f"{self.name}: op '{op}': thread must be in [0, {self.threads}), got {thread!r}")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"{self.name}: op '{op}': timeout must be >= 0 seconds, got {timeout!r}")
        task = Task(self._pool, op, kind, len(pieces), deps)
        if meta:
            task.meta = dict(meta)
        now = time.perf_counter()
        first = 0 if thread is None else int(thread)
        if pieces:
            items = [
                (k, _Tile(task, i, fn, args, {**kwargs, **p}, _region(p), b, now, timeout))
                for i, (p, b) in enumerate(zip(pieces, tile_bytes))
                for k in [(first + i) % self.threads]
            ]
        else:
            items = [(first, _Tile(task, -1, None, (), {}, {}, 0, now, timeout))]
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: processor is closed")
            for k, tile in items:
                self._queues[k].put(tile)
        return task

    def _deps(self, op: str, kind: str, after) -> tuple:
        if isinstance(after, Task):
            after = (after,)
        try:
            deps = tuple(after)
        except TypeError:
            raise TypeError(f"{self.name}: op '{op}': after must be a Task or a sequence of Tasks, got {after!r}") from None
        for d in deps:
            if not isinstance(d, Task):
                raise TypeError(f"{self.name}: op '{op}': after must hold Tasks, got {type(d).__name__}")
            if d._pool.trace is not self._pool.trace:
                raise ValueError(
                    f"{self.name}: op '{op}' depends on {d.processor} task '{d.op}', which records into "
                    f"another Trace; processors that wait on each other must share one Trace"
                )
            if d._pool is not self._pool and kind not in CROSS_KINDS:
                raise ValueError(
                    f"{self.name}: {kind} '{op}' cannot wait on {d.processor} task '{d.op}' directly: "
                    f"waiting across processors is a sync (SoC.sync), which is recorded and costed"
                )
        return deps

    # -- lifetime -----------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Let queued work finish, then end the threads.  New submissions are refused."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer()
        for t in self._threads:
            t.join(timeout)

    def __enter__(self) -> "Processor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Processor({self.name!r}, {self.layout}, threads={self.threads}, cores={self.cores})"


def _extent(piece: dict, split) -> int:
    if not split or split not in piece:
        return 1
    a, b = piece[split]
    return b - a


def _region(piece: dict) -> dict:
    return {k: v for k, v in piece.items() if k in ("rows", "channels")}
