"""The network link between a device and an edge server, and bandwidth traces.

A :class:`Link` has a bandwidth (bit/s) and a round-trip time (s).  A transfer
of ``n`` bytes takes ``RTT/2 + 8n/bandwidth`` seconds: half a round trip of
propagation, then the bits at the link's rate (Edgent, MECOMM 2018: latency
terms ``Input/B`` and ``D/B``; the RTT term is ours).  A link may instead follow
a :class:`BandwidthTrace`: then the bits go at the trace's rate from the time
the transfer starts, integrated over the trace.

How a transfer enters a :class:`~coinfer.hw.trace.Trace`
--------------------------------------------------------
``link.send(trace, nbytes, op=..., after=[tasks], at=t)`` records one task of
kind ``transfer`` on the processor ``"link"`` (thread 0): its dependencies are
``after``'s tasks, it starts when they have ended (host time), and its duration
is the link's time for ``nbytes`` starting at emulated time ``at`` (seconds
into the bandwidth trace).  The link is *emulated*, not live: the time is
recorded, not waited out, so an episode of many frames runs at host speed.
``fn`` (optional) does the real data movement first, e.g. copying the tensor
into the receiver's buffer.  ``send`` returns a finished
:class:`~coinfer.hw.task.Task`; a Processor's work that needs the data waits
for it through a ``sync`` task (``proc.submit(None, kind="sync",
after=[sent])``): data crossing to another processor is waited for like any
other cross-processor event.

``Trace.replay(profile)`` prices a transfer like any other task: its recorded
duration is kept (``transfer`` work is not scaled by a processor's speed: the
wire does not get faster with the CPU), plus the profile's own ``transfer``
cost if it models one (:meth:`Link.cost` gives a link's cost as a
:class:`~coinfer.hw.profile.Cost`, for a profile that prices transfers
instead).  Under :func:`edge_profile` the device's and the edge's work is
scaled by their own profiles' ``scale()``.

Bandwidth traces
----------------
:class:`BandwidthTrace` reads a ``time_s  Mbit/s`` text file (1 Mbit = 10^6
bits).  Each sample holds from its time until the next sample's; the last one
holds for as long as the interval before it, and then the trace repeats.  A
sample of 0 Mbit/s moves no bits (a transfer waits it out), never a division
by zero; a trace whose samples are all 0 is refused.  ``shipped()`` lists the
six real traces that come with coinfer (FCC broadband, HSDPA 3G around Oslo;
their README, ``coinfer/hw/traces/README.md``, says where each comes from) and
``load_shipped(name)`` reads one.  ``BandwidthTrace.synthetic(...)`` draws a
seeded Markov-state trace.
"""
from __future__ import annotations

import math
import os
from importlib import resources

import numpy as np

from .profile import Cost, CostProfile, get_profile
from .task import Task
from .trace import Trace

__all__ = ["Link", "BandwidthTrace", "edge_profile", "shipped", "load_shipped", "trace_named", "parse_rate"]

MBIT = 1e6  # bits per Mbit (network convention)


def parse_rate(text) -> float:
    """``"500kbps"``, ``"1.5Mbps"``, ``"2e6"`` (bit/s) or a number -> bit/s."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        v = float(text)
    else:
        s = str(text).strip().lower().replace("bit/s", "bps")
        mult = 1.0
        for suffix, m in (("gbps", 1e9), ("mbps", 1e6), ("kbps", 1e3), ("bps", 1.0)):
            if s.endswith(suffix):
                s, mult = s[: -len(suffix)], m
                break
        try:
            v = float(s) * mult
        except ValueError:
            raise ValueError(f"link: bandwidth must look like '500kbps', '1.5Mbps' or a number of bit/s, "
                             f"got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"link: bandwidth must be > 0 bit/s, got {text!r}")
    return v


class BandwidthTrace:
    """Throughput over time, piecewise constant: ``BandwidthTrace(times_s, mbps, name="")``.

    ``times_s`` strictly increasing (s, from any origin), ``mbps`` >= 0, at
    least one sample above 0.  Times passed to the methods are seconds from
    the first sample; the trace repeats with period :attr:`period`.
    """

    def __init__(self, times_s, mbps, name: str = ""):
        t = np.asarray(times_s, np.float64).ravel()
        r = np.asarray(mbps, np.float64).ravel()
        who = f"BandwidthTrace {name!r}"
        if t.shape != r.shape or t.size < 1:
            raise ValueError(f"{who}: times and rates must be equal-length, non-empty, got {t.size} and {r.size}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(r))):
            raise ValueError(f"{who}: times and rates must be finite")
        if t.size > 1 and not np.all(np.diff(t) > 0):
            raise ValueError(f"{who}: times must increase strictly")
        if np.any(r < 0):
            raise ValueError(f"{who}: rates must be >= 0 Mbit/s, got min {r.min()}")
        if not np.any(r > 0):
            raise ValueError(f"{who}: every sample is 0 Mbit/s, so no transfer could finish")
        self.name = name
        self.times = t - t[0]
        self.mbps = r
        last = self.times[-1] - self.times[-2] if t.size > 1 else 1.0
        self.edges = np.append(self.times, self.times[-1] + last)  # segment i: [edges[i], edges[i+1])
        self.bps = r * MBIT
        self.cum_bits = np.concatenate([[0.0], np.cumsum(self.bps * np.diff(self.edges))])

    @property
    def period(self) -> float:
        """Seconds after which the trace repeats."""
        return float(self.edges[-1])

    @property
    def duration(self) -> float:
        """Last sample time minus the first (s), as the traces' README states it."""
        return float(self.times[-1])

    def __len__(self) -> int:
        return int(self.times.size)

    @classmethod
    def load(cls, path, name: str | None = None) -> "BandwidthTrace":
        """Read a text file of ``time_s  Mbit/s`` lines (whitespace-separated; blank lines skipped)."""
        times, rates = [], []
        with open(path, encoding="ascii") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ValueError(f"BandwidthTrace {path}: line {n} must hold 'time_s Mbit/s', got {line.strip()!r}")
                try:
                    times.append(float(parts[0]))
                    rates.append(float(parts[1]))
                except ValueError:
                    raise ValueError(f"BandwidthTrace {path}: line {n} is not two numbers: {line.strip()!r}") from None
        if name is None:
            name = os.path.splitext(os.path.basename(str(path)))[0]
        return cls(times, rates, name)

    @classmethod
    def synthetic(cls, states_mbps=(0.1, 0.5, 1.0, 2.0), *, duration_s: float = 300.0, dt_s: float = 1.0,
                  stay: float = 0.95, noise: float = 0.1, seed: int = 0, name: str = "") -> "BandwidthTrace":
        """A seeded Markov-state trace: one sample every ``dt_s`` for ``duration_s``.

        The hidden state stays with probability ``stay`` at each sample, else
        moves to one of the other states uniformly; a sample is its state's
        rate times a log-normal factor with sigma ``noise``.
        """
        states = np.asarray(states_mbps, np.float64)
        if states.size < 1 or np.any(states <= 0):
            raise ValueError(f"BandwidthTrace.synthetic: states_mbps must be > 0, got {states_mbps!r}")
        if not 0.0 <= stay <= 1.0:
            raise ValueError(f"BandwidthTrace.synthetic: stay must be in [0, 1], got {stay!r}")
        if not (dt_s > 0 and duration_s >= dt_s):
            raise ValueError(f"BandwidthTrace.synthetic: need 0 < dt_s <= duration_s, got {dt_s}, {duration_s}")
        rng = np.random.default_rng(seed)
        n = int(duration_s // dt_s)
        s = int(rng.integers(states.size))
        out = np.empty(n)
        for i in range(n):
            if i and states.size > 1 and rng.random() >= stay:
                s = int((s + rng.integers(1, states.size)) % states.size)
            out[i] = states[s] * math.exp(noise * rng.standard_normal())
        return cls(np.arange(n) * dt_s, out, name or f"markov{states.size}_seed{seed}")

    # -- queries -------------------------------------------------------------
    def _fold(self, t: float) -> tuple[int, float]:
        if not t >= 0:
            raise ValueError(f"BandwidthTrace {self.name!r}: time must be >= 0 s, got {t!r}")
        k = math.floor(t / self.period)
        return k, t - k * self.period

    def bandwidth(self, t: float) -> float:
        """Bit/s at ``t`` seconds."""
        _, r = self._fold(float(t))
        i = min(int(np.searchsorted(self.edges, r, side="right")) - 1, len(self.bps) - 1)
        return float(self.bps[i])

    def bits_until(self, t: float) -> float:
        """Bits the trace moves from time 0 to ``t``."""
        k, r = self._fold(float(t))
        i = min(int(np.searchsorted(self.edges, r, side="right")) - 1, len(self.bps) - 1)
        return k * self.cum_bits[-1] + self.cum_bits[i] + self.bps[i] * (r - self.edges[i])

    def transfer_time(self, t: float, nbits: float) -> float:
        """Seconds to move ``nbits`` starting at ``t``: the earliest ``d`` with
        ``bits_until(t + d) - bits_until(t) >= nbits``."""
        if not nbits >= 0:
            raise ValueError(f"BandwidthTrace {self.name!r}: bits must be >= 0, got {nbits!r}")
        if nbits == 0:
            return 0.0
        target = self.bits_until(t) + nbits
        per = self.cum_bits[-1]
        k = math.floor(target / per)
        rem = target - k * per
        if rem <= 0.0:  # lands exactly on a period's end: the earliest time that total is reached
            k, rem = k - 1, per
        i = int(np.searchsorted(self.cum_bits, rem, side="left"))  # cum_bits[i-1] < rem <= cum_bits[i]
        seg = i - 1
        end = k * self.period + self.edges[seg] + (rem - self.cum_bits[seg]) / self.bps[seg]
        return max(0.0, end - t)

    def mean_bps(self) -> float:
        """Time-weighted mean bit/s over one period."""
        return float(self.cum_bits[-1] / self.period)

    def __repr__(self) -> str:
        return (f"BandwidthTrace({self.name!r}, {len(self)} samples, {self.duration:.0f} s, "
                f"mean {self.mean_bps() / MBIT:.3f} Mbit/s)")


class _LinkLane:
    """What a Task needs of its pool: a name and the trace it records into."""

    def __init__(self, name: str, trace: Trace):
        self.name = name
        self.trace = trace


class Link:
    """``Link(bandwidth, rtt_s=0.0)`` or ``Link(trace=BandwidthTrace, rtt_s=...)``.

    ``bandwidth`` is bit/s or a string such as ``"500kbps"``; ``rtt_s`` the
    round-trip time in seconds.  See the module docstring for how transfers
    are recorded and priced.
    """

    def __init__(self, bandwidth=None, rtt_s: float = 0.0, *, trace: BandwidthTrace | None = None,
                 name: str = "link"):
        if (bandwidth is None) == (trace is None):
            raise ValueError("Link: give exactly one of bandwidth (bit/s) and trace (a BandwidthTrace)")
        if trace is not None and not isinstance(trace, BandwidthTrace):
            raise TypeError(f"Link: trace must be a BandwidthTrace, got {type(trace).__name__}")
        if not (isinstance(rtt_s, (int, float)) and math.isfinite(rtt_s) and rtt_s >= 0):
            raise ValueError(f"Link: rtt_s must be a finite number >= 0 s, got {rtt_s!r}")
        self.bandwidth_bps = None if bandwidth is None else parse_rate(bandwidth)
        self.trace = trace
        self.rtt_s = float(rtt_s)
        self.name = name
        self._lanes: dict = {}

    def bandwidth(self, at: float = 0.0) -> float:
        """Bit/s at emulated time ``at``."""
        return self.bandwidth_bps if self.trace is None else self.trace.bandwidth(at)

    def transfer_time(self, nbytes: int, at: float = 0.0) -> float:
        """Seconds for ``nbytes`` sent at ``at``: RTT/2 + 8n/bandwidth (integrated over
        the trace for a trace-driven link).  0 bytes cost nothing: nothing is sent."""
        if not (isinstance(nbytes, (int, np.integer)) and not isinstance(nbytes, bool) and nbytes >= 0):
            raise ValueError(f"Link.transfer_time: nbytes must be an int >= 0, got {nbytes!r}")
        if nbytes == 0:
            return 0.0
        bits = 8.0 * int(nbytes)
        if self.trace is None:
            return self.rtt_s / 2 + bits / self.bandwidth_bps
        return self.rtt_s / 2 + self.trace.transfer_time(at, bits)

    def cost(self, at: float = 0.0) -> Cost:
        """This link as a profile's ``transfer`` cost at the bandwidth in force at ``at``."""
        return Cost(self.rtt_s / 2, 8.0 / self.bandwidth(at))

    def send(self, trace: Trace, nbytes: int, *, op: str = "", after=(), at: float = 0.0, fn=None,
             timeout: float = 60.0) -> Task:
        """Record one ``transfer`` of ``nbytes`` on processor ``self.name`` in ``trace``.

        Waits (host time) for ``after``'s tasks, runs ``fn()`` if given (the
        real data movement), then records the task with the duration
        :meth:`transfer_time` gives at emulated time ``at``.  Returns a finished
        Task, which a Processor's ``sync`` task may wait on.
        """
        if isinstance(after, Task):
            after = (after,)
        after = tuple(after)
        ids: list[int] = []
        for d in after:
            if not isinstance(d, Task):
                raise TypeError(f"Link.send {op!r}: after must hold Tasks, got {type(d).__name__}")
            d.result(timeout)
            ids.extend(d.ids)
        duration = self.transfer_time(nbytes, at)
        lane = self._lanes.get(id(trace))
        if lane is None or lane.trace is not trace:
            lane = self._lanes[id(trace)] = _LinkLane(self.name, trace)
        task = Task(lane, op, "transfer", 1, after)
        submitted = trace.now()
        if fn is not None:
            fn()
        start = trace.now()
        rec = trace.record(self.name, 0, "transfer", op, start, start + duration, deps=sorted(set(ids)),
                           bytes=int(nbytes), submitted=submitted)
        task._finish(0, None, rec, None)
        return task

    def __repr__(self) -> str:
        bw = f"trace={self.trace.name!r}" if self.trace is not None else f"{self.bandwidth_bps:g} bit/s"
        return f"Link({bw}, rtt_s={self.rtt_s:g})"


def edge_profile(device="raspberry_pi", edge="desktop_edge", *, device_name: str = "device",
                 edge_name: str = "edge", link: Link | None = None) -> CostProfile:
    """One profile for a device-edge run: processor ``device_name`` scaled as ``device``
    scales it, ``edge_name`` as ``edge`` does (through each profile's ``scale()``).

    No sharing costs: the two sides share no memory.  With ``link``, transfers
    are also priced by the profile at the link's bandwidth (for traces whose
    transfer tasks were recorded with no duration of their own); by default
    the link's recorded durations stand alone.
    """
    d, e = get_profile(device), get_profile(edge)
    host = d.host_gflops
    gflops = {device_name: host / d.scale(device_name), edge_name: host / e.scale(edge_name)}
    costs = {} if link is None else {"transfer": link.cost()}
    return CostProfile(f"{d.name}|{e.name}", gflops, costs, host)


_TRACE_DIR = "traces"


def shipped() -> list[str]:
    """Names of the bandwidth traces shipped with coinfer (file names without ``.txt``)."""
    d = resources.files(__package__).joinpath(_TRACE_DIR)
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".txt"))


def trace_named(arg: str) -> BandwidthTrace:
    """A shipped trace by name, else a ``time_s Mbit/s`` file at the path ``arg``.

    Raises ValueError naming both choices when ``arg`` is neither."""
    if arg in shipped():
        return load_shipped(arg)
    if not os.path.isfile(arg):
        raise ValueError(f"bandwidth trace {arg!r} is neither a shipped trace ({', '.join(shipped())}) "
                         f"nor a file")
    return BandwidthTrace.load(arg)


def load_shipped(name: str) -> BandwidthTrace:
    """One shipped trace by name (see :func:`shipped`)."""
    known = shipped()
    if name not in known:
        raise ValueError(f"unknown bandwidth trace {name!r}; shipped: {', '.join(known)}")
    with resources.as_file(resources.files(__package__).joinpath(_TRACE_DIR, name + ".txt")) as p:
        return BandwidthTrace.load(p, name)
