"""Native programs: an SoC's tasks compiled for a dispatch loop in C, with no interpreter in it.

A :class:`Program` is built with the SoC's own calls (``transform``, ``map``,
``unmap``, ``sync``, and ``run_list`` / ``compute`` for kernels), each returning
a handle (an int) that later calls name in ``after=`` / ``events``, as a Task
would.  A compute step is a native call (``coinfer.kernels.entry.NativeCall``: a
C entry point and its argument blocks); transforms and cache maintenance are
csrc's own entries.  ``run()`` hands each processor's steps to its worker
thread (:meth:`~coinfer.hw.processor.Processor.call`), which walks them in
csrc/dispatch.c with the interpreter lock released: calls through function
pointers, syncs as waits on the other processor's count of finished steps
(with a deadline), the profile's modelled costs realised by waiting, start
and end times written to a preallocated array.  After the run, Python records
every step in the SoC's trace as the same task the interpreted path records
(kind, op, region, bytes, deps, layout, op class), with CLOCK_MONOTONIC times,
which are ``time.perf_counter()``'s on Linux.

A step that fails (its entry returns an error, a sync passes its deadline)
sets an abort flag that every step and wait of the other processor checks, so
neither waits on a processor that stopped; ``run()`` then raises
:class:`~coinfer.hw.task.TaskError` or :class:`~coinfer.hw.task.SyncTimeout`
naming the op and the processor.  Hw knows nothing of ops: a step's op name,
region and meta are recorded as given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from coinfer.kernels.args import status_message

from . import memory
from ._native import ffi, lib
from .profile import get_profile
from .soc import _span_bytes, transform_args
from .task import SyncTimeout, TaskError

__all__ = ["Program", "STEP_WORDS"]

#: int64 words per step (csrc/dispatch.c) and the step kinds.
STEP_WORDS = 8
_CALL, _SYNC = 1, 2
# csrc/status.h
_EKERNEL, _ETIMEOUT, _EABORT = -7, -8, -9


@dataclass
class _Step:
    index: int  # its handle: the order it was added in
    proc: int
    pos: int  # its place in its processor's steps
    kind: str
    op: str
    call: object = None  # NativeCall (compute, transform, map, unmap)
    waits: tuple = ()  # sync: the handles waited on
    deps: tuple = ()  # the handles recorded as its dependencies
    region: dict = field(default_factory=dict)
    nbytes: int = 0
    meta: dict = field(default_factory=dict)
    timeout: float = 0.0


class Program:
    """A native program for ``soc``'s processors (one worker thread each); see the module doc.

    ``sync_timeout`` (default ``soc.sync_timeout``) bounds each sync's wait.
    """

    def __init__(self, soc, *, sync_timeout: float | None = None):
        self.soc = soc
        self.names = [soc.cpu.name, soc.gpu.name]
        for name in self.names:
            if soc[name].threads != 1:
                raise ValueError(f"native program: processor {name!r} has {soc[name].threads} threads; "
                                 f"a native program runs one worker per processor")
        self.sync_timeout = soc.sync_timeout if sync_timeout is None else float(sync_timeout)
        self._steps: list[_Step] = []
        self._count = [0] * len(self.names)
        self._frozen = None
        self._profile = None
        self.submitted = None
        self.ids: dict = {}

    # -- building --------------------------------------------------------------
    def _proc(self, on, what: str) -> int:
        name = getattr(on, "name", on)
        if name not in self.names:
            raise ValueError(f"native program: {what}: no processor {on!r}; processors are {self.names}")
        return self.names.index(name)

    def _handles(self, what: str, after) -> tuple:
        if isinstance(after, (int, np.integer)) and not isinstance(after, bool):
            after = (after,)
        deps = tuple(int(h) for h in after)
        for h in deps:
            if not 0 <= h < len(self._steps):
                raise ValueError(f"native program: {what}: unknown handle {h}")
        return deps

    def _add(self, proc: int, kind: str, op: str, **kw) -> int:
        if self._frozen is not None:
            raise RuntimeError("native program: it has run; build a new one to add steps")
        step = _Step(len(self._steps), proc, self._count[proc], kind, str(op), **kw)
        for h in step.deps:
            if self._steps[h].proc != proc and kind != "sync":
                raise ValueError(f"native program: {kind} '{op}' on {self.names[proc]} cannot wait on "
                                 f"{self.names[self._steps[h].proc]} step '{self._steps[h].op}' directly: "
                                 f"waiting across processors is a sync")
        self._steps.append(step)
        self._count[proc] += 1
        return len(self._steps) - 1

    def compute(self, on, op: str, call, *, after=(), region=None, nbytes: int = 0, meta=None) -> int:
        """A kernel's native call on processor ``on``, recorded as a ``compute`` task with
        ``region``, ``nbytes`` and ``meta`` (``{"layout": ..., "op_class": ...}``)."""
        p = self._proc(on, f"compute '{op}'")
        if not (hasattr(call, "address") and hasattr(call, "iargs")):
            raise TypeError(f"native program: compute '{op}': call must be a NativeCall, got {type(call).__name__}")
        return self._add(p, "compute", op, call=call, deps=self._handles(f"compute '{op}'", after),
                         region=dict(region or {}), nbytes=int(nbytes), meta=dict(meta or {}))

    def run_list(self, on, steps, *, after=(), thread: int = 0, timeout=None) -> int:
        """``Processor.run_list``'s command list, each step ``(op, fn, kwargs, region, nbytes, meta)``
        carrying its native call as ``meta["native"]``; returns the last step's handle."""
        handle = None
        for st in steps:
            op, _, _, region, nbytes, meta = st if len(st) == 6 else (*st, {})
            call = meta.get("native")
            if call is None:
                raise ValueError(f"native program: op '{op}' has no native call")
            meta = {k: v for k, v in meta.items() if k in ("layout", "op_class")}
            handle = self.compute(on, op, call, after=after if handle is None else (handle,), region=region,
                                  nbytes=nbytes, meta=meta)
        if handle is None:
            raise ValueError("native program: run_list needs at least one step")
        return handle

    def transform(self, src, *, to: str, out, rows=None, channels=None, op: str = "", on="gpu", after=(),
                  thread=None) -> int:
        """:meth:`SoC.transform` as a step (the same checks)."""
        _, bind, call, region, nbytes = transform_args(src, to, out, rows, channels, op)
        native = bind(*call, out, **region)
        return self._add(self._proc(on, f"transform '{op}'"), "transform", op, call=native,
                         deps=self._handles(f"transform '{op}'", after), region=region, nbytes=nbytes)

    def map(self, region, *, op: str = "", on="gpu", after=(), thread=None) -> int:
        """:meth:`SoC.map` as a step (a cache flush over the view)."""
        return self._cache("map", memory.bind_cache_flush, region, op, on, after)

    def unmap(self, region, *, op: str = "", on="gpu", after=(), thread=None) -> int:
        """:meth:`SoC.unmap` as a step (a cache clean over the view)."""
        return self._cache("unmap", memory.bind_cache_clean, region, op, on, after)

    def _cache(self, kind, bind, region, op, on, after) -> int:
        if not isinstance(region, np.ndarray):
            raise TypeError(f"{kind} {op!r}: region must be a numpy.ndarray view, got {type(region).__name__}")
        if any(s < 0 for s in region.strides):
            raise ValueError(f"{kind} {op!r}: region must not have negative strides")
        return self._add(self._proc(on, f"{kind} '{op}'"), kind, op, call=bind(region),
                         deps=self._handles(f"{kind} '{op}'", after), nbytes=_span_bytes(region))

    def sync(self, events, *, on, op: str = "", timeout: float | None = None, thread=None) -> int:
        """:meth:`SoC.sync` as a step: ``on`` waits until the steps ``events`` are done."""
        events = self._handles(f"sync '{op}'", events)
        if not events:
            raise ValueError(f"sync {op!r}: nothing to wait for")
        timeout = self.sync_timeout if timeout is None else float(timeout)
        return self._add(self._proc(on, f"sync '{op}'"), "sync", op, waits=events, deps=events, timeout=timeout)

    def __len__(self) -> int:
        return len(self._steps)

    # -- freezing ----------------------------------------------------------------
    def _freeze(self) -> None:
        nproc = len(self.names)
        keep, parts = [], []
        for p in range(nproc):
            mine = [s for s in self._steps if s.proc == p]
            words = np.zeros((len(mine), STEP_WORDS), np.int64)
            waits = []
            scratch: dict = {}
            for s in mine:
                if s.call is not None:
                    for key, nfloats in s.call.scratch_needs():
                        scratch[key] = max(scratch.get(key, 1), nfloats)
            buffers = {}
            for key, n in scratch.items():
                buffers[key] = _aligned(n)
            for i, s in enumerate(mine):
                w = words[i]
                if s.kind == "sync":
                    w[0] = _SYNC
                    w[4] = len(waits)
                    for h in s.waits:
                        e = self._steps[h]
                        if e.proc != p:
                            waits.append((e.proc, e.pos + 1))
                    w[5] = len(waits) - w[4]
                    w[7] = int(s.timeout * 1e9) if s.timeout and s.timeout > 0 else 0
                else:
                    w[0] = _CALL
                    w[1:4] = s.call.materialise(buffers, keep)
            waits = np.array(waits or [(0, 0)], np.int64).reshape(-1, 2)
            times = np.zeros((max(len(mine), 1), 2), np.int64)
            fail = np.array([-1, 0, -1], np.int64)
            keep += list(buffers.values())
            parts.append({"steps": mine, "words": words, "waits": waits, "nwaits": len(waits) if waits[0, 1] else 0,
                          "times": times, "fail": fail,
                          "ptr": [ffi.cast("int64_t *", a.ctypes.data) for a in (words, waits, times, fail)]})
        done = np.zeros(nproc, np.int64)
        abort = np.zeros(1, np.int32)
        self._frozen = {"parts": parts, "keep": keep, "done": done, "abort": abort,
                        "done_ptr": ffi.cast("int64_t *", done.ctypes.data),
                        "abort_ptr": ffi.cast("int32_t *", abort.ctypes.data)}

    def _costs(self) -> None:
        """Write each step's modelled cost under the SoC's profile (again when it changed)."""
        prof = get_profile(self.soc.profile)
        if prof is self._profile:
            return
        for part in self._frozen["parts"]:
            for i, s in enumerate(part["steps"]):
                cost = 0.0 if s.kind == "compute" else prof.cost(s.kind, s.nbytes)
                part["words"][i, 6] = int(round(cost * 1e9))
        self._profile = prof

    # -- running -----------------------------------------------------------------
    def _loop(self, k: int) -> int:
        part = self._frozen["parts"][k]
        words, waits, times, fail = part["ptr"]
        st = lib.cf_dispatch(words, len(part["steps"]), waits, part["nwaits"], self._frozen["done_ptr"],
                             len(self.names), k, self._frozen["abort_ptr"], times, fail)
        if st and not part["fail"][1]:  # refused before it began (fail[0] stays -1)
            part["fail"][1] = st
        return st

    def run(self, *, timeout: float | None = None, then=None):
        """Run the program once on the SoC's workers and record its tasks in ``soc.trace``.

        ``then()``, if given, runs once the workers are done and before the tasks are
        recorded (the caller's own work, e.g. taking the outputs); its value is returned.
        ``self.submitted`` is the ``perf_counter`` time the program was handed to the
        workers (every record's submission time) and ``self.ids[handle]`` a step's trace id.
        Raises TaskError / SyncTimeout naming the op and processor of the first failure
        (the tasks that ran stay recorded, a failed compute step with its error), or
        TimeoutError when the workers are not done within ``timeout`` seconds.
        """
        if self._frozen is None:
            self._freeze()
        self._costs()
        fz = self._frozen
        fz["done"][:] = 0
        fz["abort"][:] = 0
        for part in fz["parts"]:
            part["times"][:] = 0
            part["fail"][:] = (-1, 0, -1)
        self.submitted = time.perf_counter()
        tasks = [self.soc[name].call(self._loop, k, op="native program")
                 for k, name in enumerate(self.names) if fz["parts"][k]["steps"]]
        deadline = None if timeout is None else self.submitted + timeout
        late = [t for t in tasks if not t.wait(None if deadline is None else max(0.0, deadline - time.perf_counter()))]
        if late:
            fz["abort"][0] = 1  # every step and wait checks it: the loops stop at the next one
            for t in late:
                t.wait(5.0)
            raise TimeoutError(f"native program: not done within {timeout:g} s "
                               f"({', '.join(t.processor for t in late)} still running)")
        for t in tasks:
            t.result(0)  # a failure of the loop's own call (not of a step) raises here
        failed = any(part["fail"][1] for part in fz["parts"])
        value = then() if then is not None and not failed else None
        self._record(self.submitted)
        self._raise_failure()
        return value

    def _record(self, submitted: float) -> None:
        """Record the steps that ran, in the order they ended (so deps come first), as the
        interpreted path does: a failed compute step with its error, a timed-out sync not."""
        trace = self.soc.trace
        t0 = trace.t0
        ran = []
        for part in self._frozen["parts"]:
            fail_at, status = int(part["fail"][0]), int(part["fail"][1])
            if status and fail_at < 0:
                continue  # refused before it began
            for i, s in enumerate(part["steps"]):
                if fail_at >= 0 and i >= fail_at and (i > fail_at or s.kind == "sync" or status == _EABORT):
                    break
                error = None
                if i == fail_at:
                    error = f"{self.names[s.proc]}: op '{s.op}' failed: {status_message(status)}"
                start, end = (int(v) for v in part["times"][i])
                ran.append((end, s.index, start * 1e-9 - t0, end * 1e-9 - t0, error))
        ran.sort()
        self.ids = ids = {}
        for _, g, start, end, error in ran:
            s = self._steps[g]
            compute = s.kind == "compute"
            name = self.names[s.proc]
            ids[g] = trace.record(
                name, 0, s.kind, s.op, start, end, deps=sorted({ids[h] for h in s.deps if h in ids}),
                region=s.region, bytes=s.nbytes, submitted=submitted - t0,
                modelled=0.0 if compute else self._profile.cost(s.kind, s.nbytes), error=error,
                layout=s.meta.get("layout", self.soc[name].layout) if compute else None,
                op_class=s.meta.get("op_class") if compute else None)

    def _raise_failure(self) -> None:
        failures = []
        for k, part in enumerate(self._frozen["parts"]):
            fail_at, status, wait = (int(v) for v in part["fail"])
            if status in (0, _EABORT):
                continue
            name = self.names[k]
            if fail_at < 0:
                failures.append((0, ValueError(f"native program: {name}'s steps were refused: "
                                               f"{status_message(status)}")))
                continue
            s = part["steps"][fail_at]
            when = int(part["times"][fail_at][1])
            if status == _ETIMEOUT:
                # the wait that timed out, as the interpreted path names it
                waited = [h for h in s.waits if self._steps[h].proc != k]
                e = self._steps[waited[min(max(wait - int(part["words"][fail_at, 4]), 0), len(waited) - 1)]]
                msg = (f"{name}: sync '{s.op}' timed out after {s.timeout:g} s waiting for "
                       f"{self.names[e.proc]} {e.kind} '{e.op}'")
                failures.append((when, SyncTimeout(msg, name, s.op)))
            else:
                what = getattr(s.call, "name", s.kind)
                msg = f"{name}: op '{s.op}' failed: {what}: {status_message(status)}"
                if status == _EKERNEL:
                    msg += " (the interpreted path raises it with its message)"
                failures.append((when, TaskError(msg, name, s.op)))
        if failures:
            raise min(failures, key=lambda f: f[0])[1]


def _aligned(nfloats: int) -> np.ndarray:
    raw = np.zeros(int(nfloats) * 4 + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + int(nfloats) * 4].view(np.float32)
