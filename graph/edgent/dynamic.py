"""Edgent's dynamic mode, offline part: bandwidth states and the configuration map.

1. **Change points.**  Each bandwidth trace is segmented with ``ruptures``'
   Pelt (cost ``l2`` on the log of the throughput, ``jump=1`` so change
   points are not rounded to a grid, ``min_size=2``) with a BIC-like penalty
   ``2 * sigma^2 * ln(n)``, where sigma is the noise of the log throughput
   estimated from first differences (median absolute deviation / 0.6745 / sqrt 2).
2. **States.**  The segments' mean log throughputs are grouped into ``k``
   states by a one-dimensional k-means weighted by segment length (starting
   from quantiles, so it is deterministic).  A state keeps every sample of
   its segments; a bandwidth maps to the state with the nearest centre (log
   scale).
3. **Configuration map** (Edgent, IEEE TWC 2020).  For each state, every
   (exit, cut, direction) is scored on each of the state's samples with the
   reward ``exp(accuracy) + throughput`` when its latency at that sample's
   bandwidth meets the target, else 0, and the plan with the best mean reward
   is kept (ties: lower latency at the state's centre).  Throughput is the
   frames served per second, ``min(1/latency, 1/frame_s)``: with a frame every
   ``frame_s`` seconds a plan cannot serve more.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...hw.link import BandwidthTrace

__all__ = ["segment", "BandwidthStates", "ConfigurationMap", "reward", "RupturesMissing"]

FLOOR_BPS = 1e4  # log of 0 Mbit/s: treat as 10 kbit/s when segmenting


class RupturesMissing(ImportError):
    pass


def _ruptures():
    try:
        import ruptures
    except ImportError as e:
        raise RupturesMissing("Edgent's dynamic mode segments traces with ruptures: "
                              "pip install 'coinfer[edgent]'") from e
    return ruptures


def _log(bps: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(bps, np.float64), FLOOR_BPS))


def segment(trace: BandwidthTrace, *, penalty: float | None = None, min_size: int = 2) -> list[tuple[int, int]]:
    """Change-point segments of ``trace`` as ``[(first sample, end sample), ...]``."""
    rpt = _ruptures()
    y = _log(trace.bps)
    n = len(y)
    if n < 2 * min_size:
        return [(0, n)]
    if penalty is None:
        d = np.diff(y)
        sigma = np.median(np.abs(d - np.median(d))) / 0.6745 / math.sqrt(2)
        sigma = max(sigma, 1e-3)
        penalty = 2.0 * sigma ** 2 * math.log(n)
    bkps = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(y.reshape(-1, 1)).predict(pen=penalty)
    edges = [0] + list(bkps)
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


@dataclass
class BandwidthStates:
    """``centres`` (bit/s, increasing) and, per state, its ``samples`` (bit/s)."""

    centres: np.ndarray
    samples: list

    @classmethod
    def fit(cls, traces, k: int = 6, *, penalty: float | None = None, iterations: int = 50) -> "BandwidthStates":
        """States from change-point segments of ``traces`` (BandwidthTrace objects)."""
        seg_mean, seg_len, seg_samples = [], [], []
        for tr in traces:
            y = _log(tr.bps)
            for a, b in segment(tr, penalty=penalty):
                seg_mean.append(float(y[a:b].mean()))
                seg_len.append(b - a)
                seg_samples.append(tr.bps[a:b])
        m, w = np.array(seg_mean), np.array(seg_len, np.float64)
        k = max(1, min(int(k), len(np.unique(m))))
        c = np.quantile(np.repeat(m, seg_len), (np.arange(k) + 0.5) / k)
        for _ in range(iterations):
            lab = np.abs(m[:, None] - c[None, :]).argmin(1)
            new = np.array([np.average(m[lab == j], weights=w[lab == j]) if np.any(lab == j) else c[j]
                            for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        order = np.argsort(c)
        c = c[order]
        lab = np.abs(m[:, None] - c[None, :]).argmin(1)
        keep = [j for j in range(k) if np.any(lab == j)]
        samples = [np.concatenate([seg_samples[i] for i in np.flatnonzero(lab == j)]) for j in keep]
        return cls(np.exp(c[keep]), samples)

    def __len__(self) -> int:
        return len(self.centres)

    def state_of(self, bps: float) -> int:
        """The state whose centre is nearest ``bps`` on a log scale."""
        return int(np.abs(np.log(self.centres) - math.log(max(bps, FLOOR_BPS))).argmin())


def reward(accuracy, latency_s, target_s: float, frame_s: float):
    """Edgent's reward: ``exp(accuracy) + min(1/latency, 1/frame_s)`` if ``latency <= target``, else 0.

    Works elementwise on arrays."""
    acc = np.asarray(accuracy, np.float64)
    lat = np.asarray(latency_s, np.float64)
    with np.errstate(divide="ignore"):
        thr = np.minimum(1.0 / lat, 1.0 / frame_s)
    return np.where(lat <= target_s, np.exp(acc) + thr, 0.0)


class ConfigurationMap:
    """The best plan per bandwidth state: ``plans[state]`` = (exit, cut, direction),
    ``rewards[state]`` its mean reward, ``met[state]`` the share of the state's
    samples where it meets the target.

    ``speeds``: the map is also built for compute times multiplied by each of
    these factors (``by_speed[f]`` = (plans, rewards, met)); ``plan_for(bps,
    speed)`` uses the nearest factor.  The emulated device runs on a shared host
    whose speed drifts with other load; the runtime measures that drift
    (:class:`~coinfer.graph.edgent.runtime.SpeedTracker`) and picks the map built
    for it.  ``plans``, ``rewards`` and ``met`` are those of factor 1.
    """

    def __init__(self, planner, states: BandwidthStates, *, target_s: float, frame_s: float,
                 rtt_s: float = 0.0, speeds=(1.0,)):
        self.states, self.target_s, self.frame_s = states, float(target_s), float(frame_s)
        if any(not f > 0 for f in speeds):
            raise ValueError(f"ConfigurationMap: speeds must be > 0, got {speeds!r}")
        self.speeds = np.array(sorted({float(f) for f in speeds} | {1.0}))
        self.by_speed = {}
        for f in self.speeds:
            plans, rewards, met = [], [], []
            for j in range(len(states)):
                bw = np.asarray(states.samples[j], np.float64)
                lat = self.latency_matrix(planner, bw, rtt_s, f)
                r = reward(planner.accuracy[:, None], lat, target_s, frame_s).mean(axis=1)
                centre = planner.latencies(float(states.centres[j]), rtt_s) + planner.compute_s * (f - 1.0)
                i = int(np.lexsort((np.arange(len(r)), centre, -r))[0])
                plans.append(planner.keys[i])
                rewards.append(float(r[i]))
                met.append(float((lat[i] <= target_s).mean()))
            self.by_speed[float(f)] = (plans, rewards, met)
        self.plans, self.rewards, self.met = self.by_speed[1.0]

    @staticmethod
    def latency_matrix(planner, bw: np.ndarray, rtt_s: float, speed: float = 1.0) -> np.ndarray:
        """(candidates, samples) latencies, compute times x ``speed``; a sample of
        0 bit/s makes any transfer infinite."""
        per_byte = np.where(bw > 0, 8.0 / np.where(bw > 0, bw, 1.0), np.inf)
        with np.errstate(invalid="ignore"):
            xfer = planner.bytes[:, None] * per_byte[None, :]
        xfer = np.where(planner.bytes[:, None] > 0, xfer, 0.0)
        return planner.compute_s[:, None] * speed + planner.transfers[:, None] * (rtt_s / 2) + xfer

    def plan_for(self, bps: float, speed: float = 1.0) -> tuple:
        f = float(self.speeds[np.abs(np.log(self.speeds) - math.log(speed)).argmin()])
        return self.by_speed[f][0][self.states.state_of(bps)]

    def table(self) -> str:
        lines = [f"{'state':>5} {'centre kbit/s':>14} {'samples':>8} {'exit':>5} {'cut':>4} {'direction':<13}"
                 f" {'reward':>7} {'met':>6}"]
        for j, (e, p, d) in enumerate(self.plans):
            lines.append(f"{j:>5} {self.states.centres[j] / 1e3:>14.1f} {len(self.states.samples[j]):>8} "
                         f"{e + 1:>5} {p:>4} {d:<13} {self.rewards[j]:>7.3f} {100 * self.met[j]:>5.1f}%")
        return "\n".join(lines)
