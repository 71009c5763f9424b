"""A SimPy adapter: processors and links as SimPy resources, a frame of a plan as a SimPy process.

For simulators written with SimPy 4 (``pip install 'coinfer[sim]'``).  The
hardware model lends them what it knows (how long a processor computes, how
long a link takes for n bytes at a moment of its bandwidth trace), and SimPy
does the queueing: a processor or a link serves ``capacity`` stages at a time,
and a request that finds it busy waits in its FIFO queue.

- :class:`SimProcessor` ``(env, name, capacity=1)``: a ``simpy.Resource``; a
  compute stage holds one unit for its ``seconds``.  An edge server with
  ``workers`` threads is ``SimProcessor(env, "edge", capacity=workers)``: its
  resource's queue is the server's request queue.
- :class:`SimLink` ``(env, link, name, at=0.0)``: one direction of a
  :class:`~coinfer.hw.Link`, a ``simpy.Resource`` of capacity 1.  A transfer
  stage of ``nbytes`` over ``crossings`` tensors holds it for
  ``crossings x RTT/2 + 8 nbytes / B``, the bits integrated over the link's
  bandwidth trace from trace time ``at + env.now`` (as
  :meth:`Link.transfer_time <coinfer.hw.Link.transfer_time>` prices one tensor).
- :class:`Stage` ``(kind, where, seconds=0.0, nbytes=0, crossings=1, label="", wait=True)``:
  ``kind`` is ``"compute"`` or ``"transfer"``, ``where`` the name of the
  resource in the request's ``resources``.  hw knows nothing of graphs: the
  stages of a plan are computed by graph-level code
  (:func:`coinfer.graph.edgent.stages.frame_stages` for a device-edge plan).
- :class:`Request` ``(stages, resources, name="")``.
- :func:`infer` ``(env, request)``: the SimPy process (a generator, for
  ``env.process``) that runs the stages in order, holding each stage's
  resource (``Resource.request``) for its duration (``env.timeout``), and
  returns a :class:`RequestRecord`: per stage the time it asked for its
  resource, got it and let it go, so the queueing of each stage is
  ``started - requested``.

Utilisation: :attr:`SimProcessor.busy_s` and :attr:`SimLink.busy_s` sum the
service seconds of finished stages; ``utilisation(elapsed)`` divides by
``capacity x elapsed``.

Units are coinfer's: seconds, bytes, bit/s.  How they map to other fog and
edge simulators (iFogSim's MI and MIPS, LEAF's compute units and bit/s) is in
the README ("Embedding coinfer in a simulator").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from .link import Link

__all__ = ["SimPyMissing", "Stage", "Request", "StageRecord", "RequestRecord", "SimProcessor", "SimLink",
           "infer", "transfer_seconds", "STAGE_KINDS"]

STAGE_KINDS = ("compute", "transfer")


class SimPyMissing(ImportError):
    pass


def simpy():
    """The simpy module, or :class:`SimPyMissing` naming the extra to install."""
    try:
        import simpy as _simpy
    except ImportError as e:
        raise SimPyMissing("coinfer.hw.sim needs SimPy 4: pip install 'coinfer[sim]'") from e
    return _simpy


@dataclass(frozen=True)
class Stage:
    """One step of a request: compute ``seconds`` on processor ``where``, or move
    ``nbytes`` (``crossings`` tensors, each paying RTT/2) over link ``where``.

    ``wait=False``: the stage is queued and served like any other, but the
    request goes on at once without waiting for it (work a server starts on
    its own while the request's data is still arriving, e.g. a warm-up pass).
    """

    kind: str
    where: str
    seconds: float = 0.0
    nbytes: int = 0
    crossings: int = 1
    label: str = ""
    wait: bool = True

    def __post_init__(self):
        if self.kind not in STAGE_KINDS:
            raise ValueError(f"Stage: kind must be one of {STAGE_KINDS}, got {self.kind!r}")
        if not (isinstance(self.where, str) and self.where):
            raise ValueError(f"Stage: where must name a resource, got {self.where!r}")
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"Stage {self.label or self.where!r}: seconds must be finite and >= 0, got {self.seconds!r}")
        if not (isinstance(self.nbytes, int) and self.nbytes >= 0):
            raise ValueError(f"Stage {self.label or self.where!r}: nbytes must be an int >= 0, got {self.nbytes!r}")
        if not (isinstance(self.crossings, int) and self.crossings >= 0):
            raise ValueError(f"Stage {self.label or self.where!r}: crossings must be an int >= 0, "
                             f"got {self.crossings!r}")


@dataclass
class Request:
    """A frame to simulate: its ``stages`` in order, and ``resources`` by name
    (:class:`SimProcessor` or :class:`SimLink`) for every stage's ``where``."""

    stages: tuple
    resources: Mapping
    name: str = ""

    def __post_init__(self):
        self.stages = tuple(self.stages)
        for s in self.stages:
            if not isinstance(s, Stage):
                raise TypeError(f"Request {self.name!r}: stages must be Stage, got {type(s).__name__}")
            r = self.resources.get(s.where)
            if r is None:
                raise ValueError(f"Request {self.name!r}: stage {s.label or s.kind!r} needs resource {s.where!r}; "
                                 f"given: {sorted(self.resources)}")
            want = SimProcessor if s.kind == "compute" else SimLink
            if not isinstance(r, want):
                raise TypeError(f"Request {self.name!r}: a {s.kind} stage needs a {want.__name__} as {s.where!r}, "
                                f"got {type(r).__name__}")


@dataclass(frozen=True)
class StageRecord:
    stage: Stage
    requested: float
    started: float
    ended: float

    @property
    def wait_s(self) -> float:
        """Time queued for the resource."""
        return self.started - self.requested

    @property
    def service_s(self) -> float:
        return self.ended - self.started


@dataclass
class RequestRecord:
    name: str
    start: float
    end: float = math.nan
    stages: list = field(default_factory=list)

    @property
    def latency_s(self) -> float:
        return self.end - self.start

    def wait_s(self, where: str | None = None) -> float:
        """Seconds queued, in total or for resource ``where``."""
        return sum(r.wait_s for r in self.stages if where is None or r.stage.where == where)

    def service_s(self, kind: str | None = None, where: str | None = None) -> float:
        """Seconds served, over stages of ``kind`` and/or resource ``where``."""
        return sum(r.service_s for r in self.stages
                   if (kind is None or r.stage.kind == kind) and (where is None or r.stage.where == where))


class _Resource:
    def __init__(self, env, name: str, capacity: int):
        if not (isinstance(capacity, int) and capacity >= 1):
            raise ValueError(f"{type(self).__name__} {name!r}: capacity must be an int >= 1, got {capacity!r}")
        self.env, self.name, self.capacity = env, name, capacity
        self.resource = simpy().Resource(env, capacity=capacity)
        self.busy_s = 0.0
        self.served = 0

    def utilisation(self, elapsed: float) -> float:
        """Busy share of ``capacity x elapsed`` seconds (finished stages)."""
        return self.busy_s / (self.capacity * elapsed) if elapsed > 0 else 0.0

    @property
    def queued(self) -> int:
        """Requests waiting for this resource now."""
        return len(self.resource.queue)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, capacity={self.capacity}, busy_s={self.busy_s:.6g})"


class SimProcessor(_Resource):
    """A processor (or a server's pool of ``capacity`` workers) as a SimPy resource."""

    def __init__(self, env, name: str, capacity: int = 1):
        super().__init__(env, name, capacity)

    def duration(self, stage: Stage, now: float) -> float:
        return stage.seconds


class SimLink(_Resource):
    """One direction of ``link`` (a :class:`~coinfer.hw.Link`) as a SimPy resource of
    capacity 1; ``at``: the link's trace time at simulation time 0."""

    def __init__(self, env, link: Link, name: str, *, at: float = 0.0):
        if not isinstance(link, Link):
            raise TypeError(f"SimLink {name!r}: link must be a coinfer.hw.Link, got {type(link).__name__}")
        if not (math.isfinite(at) and at >= 0):
            raise ValueError(f"SimLink {name!r}: at must be >= 0 s, got {at!r}")
        super().__init__(env, name, 1)
        self.link, self.at = link, float(at)

    def bandwidth(self, now: float) -> float:
        """Bit/s in force at simulation time ``now``."""
        return self.link.bandwidth(self.at + now)

    def duration(self, stage: Stage, now: float) -> float:
        return transfer_seconds(self.link, stage.nbytes, stage.crossings, self.at + now)


def transfer_seconds(link: Link, nbytes: int, crossings: int = 1, at: float = 0.0) -> float:
    """Seconds ``link`` takes for ``nbytes`` in ``crossings`` tensors starting at trace time
    ``at``: ``crossings x RTT/2`` plus the bits at the rate in force (0 bytes: 0 s)."""
    if nbytes == 0:
        return 0.0
    half = link.rtt_s / 2
    return crossings * half + (link.transfer_time(nbytes, at) - half)


def infer(env, request: Request):
    """SimPy process: run ``request``'s stages in order, each holding its resource for its
    duration; returns a :class:`RequestRecord` (``yield env.process(infer(env, r))``)."""
    rec = RequestRecord(request.name, env.now)
    for st in request.stages:
        res = request.resources[st.where]
        if st.wait:
            yield from _hold(env, res, st, rec)
        else:
            env.process(_hold(env, res, st, rec))
    rec.end = env.now
    return rec


def _hold(env, res, st: Stage, rec: RequestRecord):
    asked = env.now
    with res.resource.request() as req:
        yield req
        t0 = env.now
        d = res.duration(st, t0)
        if d > 0:
            yield env.timeout(d)
        res.busy_s += d
        res.served += 1
    rec.stages.append(StageRecord(st, asked, t0, env.now))
