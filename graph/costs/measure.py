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
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

Sample = Callable[[], float]


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


def clocked(fn: Callable[[], object], loops: int = 1) -> Sample:
    """A sample of ``fn``: calls it ``loops`` times and returns the seconds per call."""
    if loops < 1:
        raise ValueError(f"clocked: loops must be >= 1, got {loops}")

    def sample() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - t0) / loops

    return sample


def loops_for(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` fill ``min_time`` seconds (at least 1), from one timed call."""
    one = max(clocked(fn)(), 1e-7)
    return max(1, int(min_time / one))


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
