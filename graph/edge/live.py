"""Live episodes: a bandwidth trace played in real time through the edge server, plans switching as it plays.

:func:`play` runs one frame every ``frame_s`` seconds of trace time (wall
time ``frame_s / speedup``) through a :class:`~coinfer.graph.edge.client.RemoteRunner`
whose client is shaped by the trace (:meth:`EdgeClient.shape`), with Edgent's
dynamic strategy run online:

- the **throughput samples are measured** from the frame's own transfers
  (bits over the shaped time of each crossing tensor, RTT/2 left out); a
  frame that crossed nothing (a device-only plan, or a fallback) sends a
  probe instead, a PING of about 10 ms of the estimated bandwidth, after the
  frame;
- each sample goes to the online detector
  (:class:`~coinfer.graph.edgent.runtime.ChangeDetector`), whose current
  segment's estimate picks the plan from the configuration map
  (:class:`~coinfer.graph.edgent.dynamic.ConfigurationMap`), for the host
  speed a :class:`~coinfer.graph.edgent.runtime.SpeedTracker` follows from
  measured against predicted compute;
- before the first frame one probe gives the first sample.

``plan_for`` replaces the map with any function of (estimate bit/s, speed)
to a plan (e.g. a fixed plan).  Each frame's record carries the plan in
force, its predicted and measured latency and their split, and ``fallback``:
why the frame ran device-only instead (None if it did not).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...hw.link import Link
from ..edgent.runtime import ChangeDetector, SpeedTracker
from .client import EdgeError
from .shaping import sleep_until

__all__ = ["LiveFrame", "play"]


@dataclass
class LiveFrame:
    t_s: float  # trace time at the frame's start
    bandwidth_bps: float  # the trace's bandwidth then
    estimate_bps: float  # the detector's estimate the plan was chosen with
    plan: tuple  # the plan in force (exit, cut, direction)
    ran: tuple  # what ran: the plan, or device-only after a fallback
    predicted_s: float
    measured_s: float
    device_s: float
    transfer_s: float
    edge_s: float
    met: bool
    exit_accuracy: float
    accuracy: float  # the exit's accuracy if met, else 0
    fallback: str | None
    lag_s: float  # how late the frame started (the previous one overran)
    samples: list = field(default_factory=list)
    max_abs_err: float | None = None

    @property
    def emulated_s(self) -> float:  # what runtime.summarize reads
        return self.measured_s

    def as_json(self) -> dict:
        return {"t_s": self.t_s, "bandwidth_bps": self.bandwidth_bps, "estimate_bps": self.estimate_bps,
                "plan": {"exit": self.plan[0], "cut": self.plan[1], "direction": self.plan[2]},
                "ran": {"exit": self.ran[0], "cut": self.ran[1], "direction": self.ran[2]},
                "predicted_ms": self.predicted_s * 1e3, "measured_ms": self.measured_s * 1e3,
                "device_ms": self.device_s * 1e3, "transfer_ms": self.transfer_s * 1e3,
                "edge_ms": self.edge_s * 1e3, "met": self.met, "accuracy": self.accuracy,
                "fallback": self.fallback, "lag_ms": self.lag_s * 1e3, "max_abs_err": self.max_abs_err}


def _probe(runner, estimate: float) -> float | None:
    """One shaped PING of about 10 ms at ``estimate``; its measured bit/s, or None if the edge is away."""
    try:
        runner.ensure_open()
        return runner.client.ping(int(min(65536, max(512, estimate / 8 * 0.01))))
    except EdgeError:
        runner.client.close()
        runner.info = None
        return None


def play(runner, planner, trace, *, target_s: float, frame_s: float, frames: int, rtt_s: float = 0.0,
         config_map=None, plan_for=None, speedup: float = 1.0, inputs=(), reference=None,
         progress=None) -> list:
    """Play ``frames`` frames of ``trace`` (a BandwidthTrace) live; returns [LiveFrame].

    ``planner``: the StaticPlanner whose candidates the plans are (for the
    predictions); ``config_map`` or ``plan_for`` chooses the plans;
    ``inputs``: frames' inputs (cycled); ``reference(x, exit)`` (optional)
    gives the local output each frame's answer is compared with."""
    if (config_map is None) == (plan_for is None):
        raise ValueError("live.play: give exactly one of config_map and plan_for")
    if frames < 1 or not frame_s > 0 or not speedup > 0:
        raise ValueError(f"live.play: need frames >= 1, frame_s > 0, speedup > 0; got {frames}, {frame_s}, {speedup}")
    choose = plan_for if plan_for is not None else config_map.plan_for
    detector, speed = ChangeDetector(), SpeedTracker()
    origin = time.perf_counter()
    runner.client.shape(Link(trace=trace, rtt_s=rtt_s), origin=origin, speedup=speedup)
    first = _probe(runner, trace.bandwidth(0.0))
    detector.update(first if first is not None else trace.bandwidth(0.0))
    out = []
    for f in range(frames):
        due = origin + f * frame_s / speedup
        sleep_until(due)
        lag = time.perf_counter() - due
        t = f * frame_s + lag * speedup
        est = detector.estimate
        plan = tuple(choose(est, speed.speed))
        i = planner.index(*plan)
        pred = float(planner.latencies(max(est, 1.0), rtt_s)[i] + planner.compute_s[i] * (speed.speed - 1.0))
        x = inputs[f % len(inputs)]
        r = runner.run(x, plan)
        if r.fallback is None:
            speed.update(r.device_s + r.edge_s, float(planner.compute_s[i]))
        samples = list(r.samples)
        if not samples:
            s = _probe(runner, est)
            if s:
                samples.append(s)
        for s in samples:
            detector.update(s)
        acc = planner.exit_accuracy[r.exit]
        met = r.total_s <= target_s
        err = None
        if reference is not None:
            import numpy as np

            err = float(np.max(np.abs(r.output - reference(x, r.exit))))
        out.append(LiveFrame(t, trace.bandwidth(t), est, plan, r.plan, pred, r.total_s, r.device_s, r.transfer_s,
                             r.edge_s, met, acc, acc if met else 0.0, r.fallback, lag, samples, err))
        if progress is not None:
            progress(out[-1])
    return out
