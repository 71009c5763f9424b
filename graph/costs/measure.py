"""The one timing harness: warm-up calls, then repeated samples, summarised as min and median.

A *sample* is a callable that runs the thing once and returns the seconds it
took, measured where it ran (on a processor's own thread, or by the executor
around one run); :func:`clocked` makes one from a plain callable with
``time.perf_counter``.  :func:`measure` takes warm-up samples (compiles, page
faults, cold caches) and drops them, then keeps ``repeats`` samples;
:func:`measure_interleaved` does the same for several things round by round,
so they see the same machine state.  The minimum suits per-op costs (noise
from other work only lengthens a call); the median suits end-to-end runs.
The measured costs (:mod:`.measured`), the co-execution study and the plan
choice (:func:`coinfer.graph.coexec.strategies.measure_plans`) use it.

On a shared machine another process may take the core in the middle of a
sample.  Linux counts, per thread, the time it was ready to run but waited on
a run queue (``/proc/thread-self/schedstat``; :func:`waited`); a sample taken
with ``retries`` (:func:`clocked`) is retaken, up to that many times, when its
thread waited more than :data:`DISTURBED_SHARE` of it (plus
:data:`DISTURBED_S`), so the samples kept saw their core to themselves.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

Sample = Callable[[], float]

#: A sample counts as disturbed when its thread waited on a run queue longer than
#: this share of it ...
DISTURBED_SHARE = 0.01
#: ... plus this many seconds.
DISTURBED_S = 5e-6
_SCHEDSTAT = "/proc/thread-self/schedstat"


def waited() -> float:
    """Seconds the calling thread has waited on a run queue since it started (Linux
    ``/proc/thread-self/schedstat``, second field); 0.0 where the kernel does not say."""
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return 0.0


def disturbed(seconds: float, wait: float) -> bool:
    """Whether a sample of ``seconds`` during which its thread waited ``wait`` seconds on a
    run queue saw other work take its core."""
    return wait > DISTURBED_SHARE * seconds + DISTURBED_S


@dataclass(frozen=True)
class Timing:
    """Seconds of the kept samples, in the order taken."""

    samples: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))


def clocked(fn: Callable[[], object], loops: int = 1, *, retries: int = 0,
            before: Callable[[], object] | None = None, speed: SpeedProbe | None = None) -> Sample:
    """A sample of ``fn``: calls it ``loops`` times and returns the seconds per call.

    ``retries``: retake a sample that other work disturbed (see :func:`disturbed`) up
    to that many times (the last one is kept).  ``before`` runs, untimed, before
    each sample (e.g. to evict caches).  ``speed``: time the probe before and after
    the sample and return its seconds at the thread's quiet speed (divided by the
    mean :meth:`SpeedProbe.slowdown`)."""
    if loops < 1:
        raise ValueError(f"clocked: loops must be >= 1, got {loops}")
    if retries < 0:
        raise ValueError(f"clocked: retries must be >= 0, got {retries}")

    def sample() -> float:
        for _ in range(retries + 1):
            if before is not None:
                before()
            p0 = speed() if speed is not None else 0.0
            w0 = waited() if retries else 0.0
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            dt = time.perf_counter() - t0
            if not retries or not disturbed(dt, waited() - w0):
                break
        if speed is not None:
            dt /= 0.5 * (speed.slowdown(p0) + speed.slowdown(speed()))
        return dt / loops

    return sample


def loops_for(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` fill ``min_time`` seconds (at least 1), from one timed call."""
    one = max(clocked(fn)(), 1e-7)
    return max(1, int(min_time / one))


class SpeedProbe:
    """How fast the calling thread runs right now: a fixed conv (32 to 32 channels, 3x3,
    16x16 pixels, about 5 MFLOP) timed ``calls`` times, the median (seconds).

    A virtual machine's speed drifts with its neighbours' load (by up to 2x on the
    shared test host) without its threads waiting on a run queue.  Timed next to a
    measurement, the probe tells how fast the machine was then: ``slowdown(t)``
    is ``t`` over the fastest probe seen on this thread (its quiet speed), and
    :func:`clocked` with ``speed=`` brings each sample to that speed."""

    def __init__(self, calls: int = 1):
        import threading

        import numpy as np

        from ...kernels import buffer

        rng = np.random.default_rng(7)
        self.calls = int(calls)
        self._x = rng.standard_normal((1, 32, 16, 16), dtype=np.float32)
        self._w = buffer.prepack_weights(rng.standard_normal((32, 32, 3, 3), dtype=np.float32))
        self._out = np.empty((1, 32, 16, 16), np.float32)
        self._conv = buffer.conv2d
        self._fastest: dict = {}
        self._lock = threading.Lock()
        self._conv(self._x, self._w, stride=1, padding=1, out=self._out)  # compiles

    def __call__(self) -> float:
        import threading

        ts = []
        for _ in range(self.calls):
            t0 = time.perf_counter()
            self._conv(self._x, self._w, stride=1, padding=1, out=self._out)
            ts.append(time.perf_counter() - t0)
        t = float(statistics.median(ts))
        k = threading.get_ident()
        with self._lock:
            if t < self._fastest.get(k, float("inf")):
                self._fastest[k] = t
        return t

    def slowdown(self, t: float) -> float:
        """``t`` (a probe time on the calling thread) over the fastest probe seen there."""
        import threading

        f = self._fastest.get(threading.get_ident())
        return t / f if f else 1.0


def samples(sample: Callable[[], object], *, repeats: int, warmup: int = 1) -> list:
    """``sample()``'s results after ``warmup`` discarded calls: ``repeats`` of them."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"samples: need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        sample()
    return [sample() for _ in range(repeats)]


def measure(sample: Sample, *, repeats: int = 5, warmup: int = 1) -> Timing:
    """:class:`Timing` of ``repeats`` samples after ``warmup`` discarded ones."""
    return Timing(tuple(float(t) for t in samples(sample, repeats=repeats, warmup=warmup)))


def measure_interleaved(many: Sequence[Sample], *, rounds: int = 3, warmup: int = 1) -> list[Timing]:
    """One :class:`Timing` per sample: ``warmup`` discarded calls of each, then
    ``rounds`` rounds that call each once in turn.  Round ``r`` starts at sample
    ``r mod len(many)``, so no sample always follows the same other one (what ran
    just before leaves caches and clocks in its own state)."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"measure_interleaved: need rounds >= 1 and warmup >= 0, got {rounds}, {warmup}")
    for s in many:
        for _ in range(warmup):
            s()
    kept: list[list[float]] = [[] for _ in many]
    n = len(many)
    for r in range(rounds):
        for k in range(n):
            i = (r + k) % n
            kept[i].append(float(many[i]()))
    return [Timing(tuple(ts)) for ts in kept]


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of the positive values (NaN when there are none)."""
    v = [float(x) for x in values if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")
