"""The timeline of what ran: tasks, their dependencies, replay under a profile.

A task is one piece of work on one thread of one processor: a compute tile,
a layout transform, a map, an unmap, a sync, a transfer or a model load.
Times are ``time.perf_counter()`` seconds relative to the trace's start.

Replay list-schedules the recorded task graph.  A task is *ready* once its
dependencies are done and its thread is free (tasks on one thread keep their
recorded order).  It starts at the later of ready and the time the caller
submitted it, plus its **dispatch gap**: how long it measurably waited beyond
both (queue hand-off, thread wake-up).  Submission times stay as measured:
the caller's Python runs on the host whatever the profile.  Its duration is
the measured duration, minus the modelled wait the run realised, times the
processor's scale for compute and transform work (``profile.scale(processor,
layout, op_class)``: the kernel layout and op class the task records), plus
the profile's modelled cost for its kind.  Under the profile the run used, replay reproduces the
measured timeline; under another profile it re-times the same graph.
``replay(profile, gaps=False)`` drops submission times and gaps: an ideal
runtime with no host overhead.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from .profile import KINDS, SCALED_KINDS, SHARING_KINDS, CostProfile, get_profile

__all__ = ["Trace", "TaskRecord"]


@dataclass(frozen=True)
class TaskRecord:
    """One recorded task.  ``modelled`` is the profile's cost the worker realised by
    waiting inside ``[start, end]`` (it waits at least that long), not real work."""

    id: int
    processor: str
    thread: int
    kind: str
    op: str
    start: float
    end: float
    deps: tuple = ()
    region: dict = field(default_factory=dict)
    bytes: int = 0
    submitted: float | None = None
    modelled: float = 0.0
    error: str | None = None
    layout: str | None = None  # the kernel set it ran (None: the processor's own)
    op_class: str | None = None  # e.g. "conv", "fc" (coinfer.hw.calibration.CLASSES); None: unknown

    @property
    def duration(self) -> float:
        return self.end - self.start


class Trace:
    """Thread-safe task log with Chrome export, replay and a summary."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tasks: list[TaskRecord] = []
        self.t0 = time.perf_counter()

    def now(self) -> float:
        """Seconds since the trace started."""
        return time.perf_counter() - self.t0

    def record(self, processor: str, thread: int, kind: str, op: str, start: float, end: float, *,
               deps=(), region=None, bytes: int = 0, submitted: float | None = None,
               modelled: float = 0.0, error: str | None = None, layout: str | None = None,
               op_class: str | None = None) -> int:
        """Append a task and return its id.  ``deps`` must be ids already recorded."""
        if kind not in KINDS:
            raise ValueError(f"trace: kind must be one of {KINDS}, got {kind!r}")
        if end < start:
            raise ValueError(f"trace: task {op!r} ends ({end}) before it starts ({start})")
        deps = tuple(int(d) for d in deps)
        with self._lock:
            n = len(self._tasks)
            bad = [d for d in deps if not 0 <= d < n]
            if bad:
                raise ValueError(f"trace: task {op!r} depends on unknown task ids {bad}")
            self._tasks.append(TaskRecord(
                n, str(processor), int(thread), kind, str(op), float(start), float(end), deps,
                dict(region or {}), int(bytes), None if submitted is None else float(submitted),
                float(modelled), error, layout, op_class,
            ))
            return n

    @property
    def tasks(self) -> list[TaskRecord]:
        with self._lock:
            return list(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def clear(self) -> None:
        """Forget every task (e.g. after a warm-up run); times keep their origin."""
        with self._lock:
            self._tasks.clear()

    # -- timing -------------------------------------------------------------
    @staticmethod
    def _origin(tasks) -> float:
        return min(t.start if t.submitted is None else min(t.submitted, t.start) for t in tasks)

    def makespan(self) -> float:
        """Measured seconds from the first submission to the last task's end."""
        tasks = self.tasks
        return max(t.end for t in tasks) - self._origin(tasks) if tasks else 0.0

    def replay(self, profile="host", *, gaps: bool = True) -> float:
        """Makespan (s) of the recorded graph re-timed under ``profile``.

        ``gaps=False`` drops the measured dispatch gaps (an ideal runtime).
        """
        return self._schedule(get_profile(profile), gaps)[0]

    def _schedule(self, profile: CostProfile, gaps: bool):
        tasks = self.tasks
        if not tasks:
            return 0.0, {}
        origin = self._origin(tasks)
        m_free: dict = {}  # thread -> measured end of its last task
        r_free: dict = {}  # thread -> replayed end of its last task
        m_end: dict = {}
        r_span: dict = {}  # id -> (replayed start, end)
        for t in tasks:  # ids are a topological order: deps and thread predecessors come first
            key = (t.processor, t.thread)
            m_ready = max([m_free.get(key, origin)] + [m_end[d] for d in t.deps])
            r_ready = max([r_free.get(key, origin)] + [r_span[d][1] for d in t.deps])
            if gaps:
                sub = origin if t.submitted is None else t.submitted
                start = max(r_ready, sub) + max(0.0, t.start - max(m_ready, sub))
            else:
                start = r_ready
            real = max(0.0, t.duration - t.modelled)
            if t.kind in SCALED_KINDS:
                real *= profile.scale(t.processor, t.layout, t.op_class or ("transform" if t.kind == "transform"
                                                                            else None))
            end = start + real + profile.cost(t.kind, t.bytes)
            m_free[key] = m_end[t.id] = t.end
            r_free[key] = end
            r_span[t.id] = (start, end)
        return max(e for _, e in r_span.values()) - origin, r_span

    def dispatch_gaps(self) -> list:
        """Each processor task's measured dispatch gap (s), in id order: how long it started after
        the later of being ready (its dependencies and its thread's previous task done) and
        being submitted (the gap replay keeps).  Host tasks (transfers) are left out."""
        tasks = self.tasks
        free: dict = {}
        end: dict = {}
        gaps = []
        for t in tasks:
            key = (t.processor, t.thread)
            ready = max([free.get(key, float("-inf"))] + [end[d] for d in t.deps])
            sub = float("-inf") if t.submitted is None else t.submitted
            free[key] = end[t.id] = t.end
            begin = max(ready, sub)
            if t.processor != "host" and begin > float("-inf"):
                gaps.append(max(0.0, t.start - begin))
        return gaps

    # -- reports ------------------------------------------------------------
    def summary(self, profile=None) -> dict:
        """Busy time per kind and processor, and the sharing overhead's share.

        With a ``profile``, durations are the replayed ones under it; else the
        measured ones.  ``sharing_share`` = (transform + map + unmap + sync) /
        total busy time.
        """
        tasks = self.tasks
        if profile is None:
            spans = {t.id: (t.start, t.end) for t in tasks}
            makespan = self.makespan()
        else:
            makespan, spans = self._schedule(get_profile(profile), True)
        by_kind = {k: 0.0 for k in KINDS}
        by_proc: dict = {}
        count = {k: 0 for k in KINDS}
        for t in tasks:
            d = spans[t.id][1] - spans[t.id][0]
            by_kind[t.kind] += d
            count[t.kind] += 1
            by_proc[t.processor] = by_proc.get(t.processor, 0.0) + d
        busy = sum(by_kind.values())
        sharing = sum(by_kind[k] for k in SHARING_KINDS)
        return {
            "makespan": makespan,
            "busy": busy,
            "by_kind": by_kind,
            "count": count,
            "by_processor": by_proc,
            "sharing": sharing,
            "sharing_share": sharing / busy if busy else 0.0,
            "bytes": {k: sum(t.bytes for t in tasks if t.kind == k) for k in KINDS},
        }

    def to_chrome(self, path=None, profile=None) -> dict:
        """Chrome / Perfetto trace JSON: one pid per processor, one tid per thread.

        With a ``profile`` the events carry the replayed times.  Writes to
        ``path`` if given; returns the JSON object either way.
        """
        tasks = self.tasks
        spans = {t.id: (t.start, t.end) for t in tasks} if profile is None else \
            self._schedule(get_profile(profile), True)[1]
        origin = self._origin(tasks) if tasks else 0.0
        pids = {p: i + 1 for i, p in enumerate(dict.fromkeys(t.processor for t in tasks))}
        events = []
        for p, pid in pids.items():
            events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": p}})
            for th in sorted({t.thread for t in tasks if t.processor == p}):
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": th,
                               "args": {"name": f"{p}.{th}"}})
        for t in tasks:
            s, e = spans[t.id]
            region = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in t.region.items()}
            args = {"id": t.id, "op": t.op, "region": region,
                    "bytes": t.bytes, "deps": list(t.deps)}
            if t.modelled:
                args["modelled_us"] = t.modelled * 1e6
            if t.error:
                args["error"] = t.error
            if t.layout:
                args["layout"] = t.layout
            if t.op_class:
                args["op_class"] = t.op_class
            events.append({"ph": "X", "name": f"{t.kind} {t.op}", "cat": t.kind, "pid": pids[t.processor],
                           "tid": t.thread, "ts": (s - origin) * 1e6, "dur": (e - s) * 1e6, "args": args})
        doc = {"traceEvents": events, "displayTimeUnit": "ms",
               "otherData": {"profile": "measured" if profile is None else get_profile(profile).name}}
        if path is not None:
            with open(path, "w") as f:
                json.dump(doc, f)
        return doc
