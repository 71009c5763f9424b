"""The co-inference runtime, the online change detector, and trace-driven episodes.

:class:`CoRunner` runs a plan for real: a ``"device"`` and an ``"edge"``
:class:`~coinfer.hw.Processor` (one pinned thread each, buffer kernels) share
one :class:`~coinfer.hw.Trace`.  Each side runs its ops as one command list
(one compute task per op); a tensor that crosses goes through
:meth:`Link.send <coinfer.hw.Link.send>` (a ``transfer`` task on the
``"link"`` lane, its duration the link's time from the frame's emulated
moment, integrated over a bandwidth trace if the link follows one), and the
receiving side waits for it with a ``sync`` task.  The frame's **emulated
latency** is ``trace.replay(profile, gaps=False)`` under
:func:`~coinfer.hw.link.edge_profile` (device work scaled by the device
profile, edge work by the edge profile, transfers as recorded): an ideal
runtime, without the host's dispatch gaps.

:class:`ChangeDetector` is the online part of Edgent's dynamic mode: a
windowed test on the log of the measured throughput samples.  A change is
declared when the mean of the last ``window`` samples differs from the mean
of the current segment before them by more than ``threshold`` (natural log);
the estimate is the mean of the current segment.  Our addition to Edgent's
runtime, :class:`SpeedTracker`, follows how much slower than predicted the
emulated compute runs (the host that emulates the device is shared, and its
speed drifts), and the dynamic strategy uses the configuration map built for
that speed.

:func:`run_episodes` plays a bandwidth trace with one frame every
``frame_s`` seconds through the strategies (:data:`STRATEGIES`), interleaved
frame by frame, running every frame's kernels (the median of ``runs`` runs).  Frames do not queue: each
starts at its own time.  A frame's accuracy is its exit's measured accuracy if it met the deadline, and
0 if it did not: a late answer is no answer.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ...hw import Link, Processor, Trace
from ...hw.link import BandwidthTrace, edge_profile
from ...kernels import buffer as buffer_kernels
from .. import interpret
from ..coexec.lower import buffer_weights
from ..coexec.lower import call as lower_call
from ..costs.measure import samples
from .cut import Placement, placement
from .exits import check_exits

__all__ = ["CoRunner", "FrameRun", "ChangeDetector", "SpeedTracker", "STRATEGIES", "run_episodes", "run_episode", "FrameRecord",
           "Summary", "summarize"]


def trimmed_mean(values, cut: float = 0.2) -> float:
    """Mean of ``values`` without the lowest and highest ``cut`` share of them."""
    v = np.sort(np.asarray(values, np.float64))
    k = int(len(v) * cut)
    return float(v[k:len(v) - k].mean()) if len(v) > 2 * k else float(v.mean())


def _run_op(graph, op, env, weights=None):
    """Run ``op`` on tensors in ``env``: with ``weights`` (the graph's
    :func:`~coinfer.graph.coexec.lower.buffer_weights`) on filters packed once, else
    through the interpreter, which prepares the op's weights on every call."""
    ins = [env[t] for t in op.inputs]
    if weights is None:
        env[op.output] = interpret.run_op(graph, op, ins, buffer_kernels)
    else:
        out = np.empty(graph.shape(op.output), np.float32)
        lower_call(graph, op, "buffer", weights[op.name], ins, out)
        env[op.output] = out


def _loop_samples(graph, ops, env, weights, repeats: int, warmup: int) -> dict:
    """{op name: seconds of each of ``repeats`` calls}: ``ops`` run back to back ``warmup +
    repeats`` times on the calling thread, each call timed on its own."""
    out: dict = {op.name: [] for op in ops}
    for r in range(warmup + repeats):
        for op in ops:
            t = time.perf_counter()
            _run_op(graph, op, env, weights)
            d = time.perf_counter() - t
            if r >= warmup:
                out[op.name].append(d)
    return out


@dataclass
class FrameRun:
    """A frame's answer, its emulated seconds, of which ``transfer_s`` on the link."""

    probabilities: np.ndarray
    emulated_s: float
    placement: Placement
    trace: Trace = field(repr=False, default=None)
    transfer_s: float = 0.0


class CoRunner:
    """``CoRunner(graph, device="raspberry_pi", edge="desktop_edge", packed=False)``: device
    and edge processors (cores 0 and 1, or whichever this process may use), one
    trace, and :attr:`profile` = ``edge_profile(device, edge)``.  Close it (or use
    ``with``) to end the threads.

    ``packed``: run and time ops on weights prepared once per model
    (:func:`~coinfer.graph.coexec.lower.buffer_weights`, as the edge client and
    server run them) rather than through the interpreter, which repacks a conv's
    filter on every call.  The emulated studies keep the interpreter's path (their
    costs and their frames use the same one); a study whose frames run on packed
    weights must time its ops on them too."""

    def __init__(self, graph, device="raspberry_pi", edge="desktop_edge", *, device_core: int = 0,
                 edge_core: int = 1, timeout: float = 120.0, packed: bool = False):
        check_exits(graph)
        self.graph = graph
        self.packed = bool(packed)
        self.timeout = float(timeout)
        self.profile = edge_profile(device, edge)
        self.trace = Trace()
        self.procs = {}
        try:
            self.procs["device"] = Processor("device", "buffer", buffer_kernels, (device_core,), trace=self.trace)
            self.procs["edge"] = Processor("edge", "buffer", buffer_kernels, (edge_core,), trace=self.trace)
        except BaseException:
            self.close()
            raise
        self._placements: dict = {}

    def close(self) -> None:
        for p in self.procs.values():
            p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- measuring ------------------------------------------------------------
    def time_ops(self, side: str, repeats: int = 5) -> dict:
        """Host seconds of every op on ``side``'s thread: the mean of its calls, the
        fastest and slowest fifth left out.  Each exit's sub-model runs
        ``repeats`` times (after one warm-up) as one command list, exactly as the
        runtime runs a part; each op's compute records are read off the trace and
        pooled over the sub-models that hold it.  A mean, not a minimum, because
        means add up: a part's predicted time is the sum of its ops', and an op
        at its fastest in every call is a state of the host no frame is in; the
        trimmed tails drop host preemptions (they are no part of the emulated
        device) and the rare lucky call."""
        times: dict = {op.name: [] for op in self.graph.ops}
        for e in range(len(check_exits(self.graph))):
            for op, ds in self.op_samples(side, e, repeats).items():
                times[op].extend(ds)
        return {k: trimmed_mean(v) for k, v in times.items()}

    def op_samples(self, side: str, exit: int, repeats: int = 1, warmup: int = 1) -> dict:
        """{op: host seconds of each of ``repeats`` calls} for exit ``exit``'s sub-model
        run on ``side`` (after ``warmup`` discarded runs): as one command list (a task per
        op) on the interpreter's path, or, with ``packed``, as the edge runtime runs a part
        (:func:`coinfer.graph.edge.parts.run_range`): the ops called back to back in one
        call on the side's thread, each timed around its call."""
        g = self.graph
        env = {g.inputs[0]: np.random.default_rng(0).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)}
        w = self.weights()
        names = self.placement(exit, 0, "edge-first").ops
        if self.packed:
            return self.procs[side].call(_loop_samples, g, [g.op(n) for n in names], env, w, repeats, warmup,
                                         op="time ops").result(self.timeout)[0]
        steps = [(n, (lambda op=g.op(n): _run_op(g, op, env, w)), {}, {}, 0) for n in names]

        def one_run():
            self.trace.clear()
            self.procs[side].run_list(steps).result(self.timeout)
            return [(rec.op, rec.duration) for rec in self.trace.tasks]

        out: dict = {n: [] for n, *_ in steps}
        for run in samples(one_run, repeats=repeats, warmup=warmup):
            for op, d in run:
                out[op].append(d)
        self.trace.clear()
        return out

    def check_prediction(self, plan, link: Link, x, rounds: int = 7) -> tuple[float, float]:
        """(predicted, emulated) seconds of ``plan`` over ``link``, measured in interleaved
        rounds so both see the same state of the host: each round times the
        sub-model's ops on both sides, then really runs the frame.  Predicted is
        the sum of each op's trimmed mean on its side, scaled by the profile, plus
        the link's transfers; emulated the median frame."""
        e, p, d = (plan.exit, plan.cut, plan.direction) if hasattr(plan, "exit") else plan
        pl = self.placement(e, p, d)
        host = {side: {n: [] for n in pl.ops} for side in ("device", "edge")}
        frames = []
        for r in range(rounds + 1):
            for side in set(pl.sides):
                for op, ds in self.op_samples(side, e, 1, warmup=0).items():
                    host[side][op].extend(ds)
            em = self.run(x, (e, p, d), link).emulated_s
            if r:
                frames.append(em)
            else:  # the first round warms up
                host = {side: {n: [] for n in pl.ops} for side in ("device", "edge")}
        predicted = sum(trimmed_mean(host[side][n]) * self.profile.scale(side) for n, side in zip(pl.ops, pl.sides))
        predicted += sum(link.transfer_time(c.nbytes) for c in pl.crossings)
        return predicted, float(np.median(frames))

    # -- running ----------------------------------------------------------------
    def weights(self) -> dict | None:
        """The packed weights ops run on, or None for the interpreter's path (see ``packed``)."""
        return buffer_weights(self.graph) if self.packed else None

    def placement(self, exit: int, cut: int, direction: str) -> Placement:
        key = (exit, cut, direction)
        if key not in self._placements:
            self._placements[key] = placement(self.graph, exit, cut, direction)
        return self._placements[key]

    def run(self, x: np.ndarray, plan, link: Link, *, at: float = 0.0) -> FrameRun:
        """Run one frame of ``plan`` (an (exit, cut, direction) or anything with
        ``.exit``, ``.cut``, ``.direction``) on input ``x``; ``at`` is the frame's
        emulated start time on the link's bandwidth trace."""
        e, p, d = (plan.exit, plan.cut, plan.direction) if hasattr(plan, "exit") else plan
        pl = self.placement(e, p, d)
        g, trace = self.graph, self.trace
        w = self.weights()
        trace.clear()
        env = {"device": {g.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}, "edge": {}}
        last = {"device": None, "edge": None}
        crossings = list(pl.crossings)

        def cross(upto: int):
            while crossings and crossings[0].before <= upto:
                c = crossings.pop(0)
                src, dst = env[c.src], env[c.dst]
                after = [last[c.src]] if last[c.src] is not None else []
                for t in after:
                    t.result(self.timeout)
                so_far = trace.replay(self.profile, gaps=False) if len(trace) else 0.0
                sent = link.send(trace, c.nbytes, op=c.tensor, after=after, at=at + so_far,
                                 fn=lambda src=src, dst=dst, t=c.tensor: dst.__setitem__(t, src[t].copy()))
                dep = [sent] + ([last[c.dst]] if last[c.dst] is not None else [])
                last[c.dst] = self.procs[c.dst].submit(None, op=f"receive {c.tensor}", kind="sync", after=dep)

        j = 0
        while j < len(pl.ops):
            side = pl.sides[j]
            k = j
            while k < len(pl.ops) and pl.sides[k] == side:
                k += 1
            cross(j)
            steps = []
            for name in pl.ops[j:k]:
                op = g.op(name)
                steps.append((name, (lambda op=op, env=env[side]: _run_op(g, op, env, w)), {}, {},
                              g.tensors[op.output].nbytes))
            after = [last[side]] if last[side] is not None else []
            last[side] = self.procs[side].run_list(steps, after=after, timeout=self.timeout)
            j = k
        cross(len(pl.ops))
        for t in last.values():
            if t is not None:
                t.result(self.timeout)
        out = check_exits(g)[e].output
        xfer = sum(t.duration for t in trace.tasks if t.kind == "transfer")
        return FrameRun(env["device"][out], trace.replay(self.profile, gaps=False), pl, trace, xfer)


class ChangeDetector:
    """Windowed change test on log throughput (see the module docstring).

    ``update(bps)`` takes one sample (bit/s; 0 is floored at ``floor_bps``)
    and returns True when it declares a change; :attr:`estimate` is the
    current segment's mean (bit/s, geometric).
    """

    def __init__(self, window: int = 3, threshold: float = 0.4, floor_bps: float = 1e4):
        if window < 1 or threshold <= 0:
            raise ValueError(f"ChangeDetector: need window >= 1 and threshold > 0, got {window}, {threshold}")
        self.window, self.threshold, self.floor = int(window), float(threshold), float(floor_bps)
        self.segment: list = []
        self.changes = 0

    def update(self, bps: float) -> bool:
        self.segment.append(math.log(max(float(bps), self.floor)))
        n, w = len(self.segment), self.window
        if n < w + 1:
            return False
        recent = sum(self.segment[-w:]) / w
        before = sum(self.segment[:-w]) / (n - w)
        if abs(recent - before) > self.threshold:
            self.segment = self.segment[-w:]
            self.changes += 1
            return True
        return False

    @property
    def estimate(self) -> float:
        if not self.segment:
            raise ValueError("ChangeDetector: no sample yet")
        return math.exp(sum(self.segment) / len(self.segment))


class SpeedTracker:
    """How much slower than predicted the emulated compute runs: an exponentially
    weighted mean (weight ``alpha`` on the newest) of log(emulated compute /
    predicted compute) over frames whose predicted compute is at least
    ``min_s``.  :attr:`speed` is its exponential (1: as measured).  The mean
    starts at 0 (speed 1), or with ``from_first`` at the first frame's ratio."""

    def __init__(self, alpha: float = 0.3, min_s: float = 1e-3, *, from_first: bool = False):
        self.alpha, self.min_s = float(alpha), float(min_s)
        self.log_speed = 0.0
        self._started = not from_first

    def update(self, emulated_compute_s: float, predicted_compute_s: float) -> None:
        """Fold one frame in (a frame with too little predicted compute, or a realised time
        that is not > 0, NaN included, is skipped)."""
        if predicted_compute_s >= self.min_s and emulated_compute_s > 0:
            r = math.log(emulated_compute_s / predicted_compute_s)
            self.log_speed = (1 - self.alpha) * self.log_speed + self.alpha * r if self._started else r
            self._started = True

    @property
    def speed(self) -> float:
        return math.exp(self.log_speed)


# -- episodes -------------------------------------------------------------------

STRATEGIES = ("device-only", "edge-only", "neurosurgeon", "edgent-static", "edgent-dynamic")


@dataclass
class FrameRecord:
    t_s: float
    bandwidth_bps: float  # the trace's bandwidth at the frame's start
    estimate_bps: float  # what the strategy planned with
    plan: tuple  # (exit, cut, direction)
    predicted_s: float
    emulated_s: float
    exit: int
    met: bool
    exit_accuracy: float  # the exit's measured accuracy
    accuracy: float  # the exit's accuracy if met, else 0
    transfer_s: float = 0.0  # of emulated_s, the link's transfers (modelled by the link and its trace)


@dataclass
class Summary:
    name: str
    frames: int
    deadline_met: float  # share of frames
    met_frames: int
    mean_accuracy: float  # late frames count 0
    exit_accuracy: float  # mean accuracy of the exits used, late or not
    mean_ms: float
    p95_ms: float
    switches: int
    mean_abs_err: float  # |emulated - predicted| / emulated, mean

    def as_json(self) -> dict:
        return {"name": self.name, "deadline_met": self.deadline_met, "mean_accuracy": self.mean_accuracy,
                "mean_ms": self.mean_ms, "p95_ms": self.p95_ms, "switches": self.switches}


def summarize(name: str, records: list) -> Summary:
    lat = np.array([r.emulated_s for r in records])
    pred = np.array([r.predicted_s for r in records])
    met = np.array([r.met for r in records])
    switches = sum(1 for a, b in zip(records, records[1:]) if a.plan != b.plan)
    return Summary(name, len(records), float(met.mean()), int(met.sum()),
                   float(np.mean([r.accuracy for r in records])),
                   float(np.mean([r.exit_accuracy for r in records])),
                   float(lat.mean() * 1e3), float(np.percentile(lat, 95) * 1e3), switches,
                   float(np.mean(np.abs(lat - pred) / lat)))


class _Policy:
    """How one strategy picks the plan for a frame: ``decide(t, sample) -> (plan, estimate)``."""

    def __init__(self, name: str, runner: CoRunner, bw: BandwidthTrace, planners: dict, target_s: float,
                 rtt_s: float, config_map):
        if name not in STRATEGIES:
            raise ValueError(f"run_episodes: strategy must be one of {STRATEGIES}, got {name!r}")
        if name == "edgent-dynamic" and config_map is None:
            raise ValueError("run_episodes: edgent-dynamic needs a config_map")
        self.name, self.bw, self.planners, self.target_s, self.rtt_s = name, bw, planners, target_s, rtt_s
        self.config_map = config_map
        self.last = len(check_exits(runner.graph)) - 1
        self.n_ops = len(runner.placement(self.last, 0, "edge-first").ops)
        self.static = planners["all"].plan(bw.mean_bps(), target_s, rtt_s) if name == "edgent-static" else None
        self.detector = ChangeDetector() if name == "edgent-dynamic" else None
        self.speed = SpeedTracker() if name == "edgent-dynamic" else None
        self.seen = 0  # trace samples already fed to the detector

    def decide(self, t: float, sample: float) -> tuple:
        if self.name == "device-only":
            return (self.last, 0, "edge-first"), sample
        if self.name == "edge-only":
            return (self.last, self.n_ops, "edge-first"), sample
        if self.name == "neurosurgeon":
            return self.planners["neurosurgeon"].plan(max(sample, 1.0), self.target_s, self.rtt_s).key, sample
        if self.name == "edgent-static":
            return self.static.key, self.bw.mean_bps()
        k_t = _samples_until(self.bw, t)
        while self.seen < k_t:
            self.detector.update(float(self.bw.bps[self.seen % len(self.bw)]))
            self.seen += 1
        est = self.detector.estimate
        return self.config_map.plan_for(est, self.speed.speed), est

    def observe(self, compute_index: int, emulated_compute_s: float) -> None:
        """After a frame: what its compute took, emulated, against the planner's figure."""
        if self.speed is not None:
            self.speed.update(emulated_compute_s, float(self.planners["all"].compute_s[compute_index]))


def run_episodes(runner: CoRunner, bw: BandwidthTrace, strategies=STRATEGIES, *, target_s: float, frame_s: float,
                 frames: int, planners: dict, rtt_s: float = 0.0, config_map=None, inputs=None, runs: int = 1,
                 progress=None) -> dict:
    """Play ``frames`` frames of ``bw`` (one every ``frame_s`` s) through each strategy.

    The strategies are interleaved frame by frame: at each frame every one of
    them runs in turn, so all of them meet the same state of the host.
    ``planners``: ``{"all": StaticPlanner over every exit and direction,
    "neurosurgeon": StaticPlanner over the last exit, device-first}``;
    ``config_map``: a :class:`~coinfer.graph.edgent.dynamic.ConfigurationMap`
    for ``edgent-dynamic``.  ``inputs``: frames' input arrays (cycled), default
    one seeded random input.  Each frame really runs ``runs`` times and
    keeps the median emulated latency (the lower middle one for an even count):
    a host preemption inside a kernel, scaled by the device profile, would
    otherwise stand for the device.  Returns {strategy: [FrameRecord]}.
    """
    g = runner.graph
    full = planners["all"]
    if inputs is None:
        inputs = [np.random.default_rng(0).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)]
    link = Link(trace=bw, rtt_s=rtt_s)
    policies = [_Policy(s, runner, bw, planners, target_s, rtt_s, config_map) for s in strategies]
    records: dict = {p.name: [] for p in policies}
    for f in range(frames):
        t = f * frame_s
        sample = bw.bandwidth(t)  # the latest sample taken at or before t
        x = inputs[f % len(inputs)]
        for pol in policies:
            key, est = pol.decide(t, sample)
            i = full.index(*key)
            speed = pol.speed.speed if pol.speed is not None else 1.0
            pred = float(full.latencies(max(est, 1.0), rtt_s)[i] + full.compute_s[i] * (speed - 1.0))
            runs_ = samples(lambda: runner.run(x, key, link, at=t), repeats=runs, warmup=0)
            mid = sorted(runs_, key=lambda r: r.emulated_s)[(len(runs_) - 1) // 2]
            pol.observe(i, mid.emulated_s - mid.transfer_s)
            met = mid.emulated_s <= target_s
            acc = full.exit_accuracy[key[0]]
            records[pol.name].append(FrameRecord(t, sample, est, key, pred, mid.emulated_s, key[0], bool(met), acc,
                                                 acc if met else 0.0, mid.transfer_s))
        if progress is not None:
            progress()
    return records


def run_episode(runner: CoRunner, strategy: str, bw: BandwidthTrace, **kw) -> list:
    """One strategy's frames (see :func:`run_episodes`)."""
    return run_episodes(runner, bw, (strategy,), **kw)[strategy]


def _samples_until(bw: BandwidthTrace, t: float) -> int:
    """How many samples the monitor has taken by time ``t`` (counting repeats of the trace)."""
    k = math.floor(t / bw.period)
    r = t - k * bw.period
    return k * len(bw) + int(np.searchsorted(bw.times, r, side="right"))
