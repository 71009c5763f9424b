"""Real co-inference through ``coinfer edge-server``: measured against predicted latency.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 -m pytest bench/test_edge.py --benchmark-only -s

Starts an edge server (``desktop_edge``, one worker) as a subprocess on
127.0.0.1, measures B-AlexNet's per-op costs on this host (raspberry_pi
device, desktop_edge edge, RTT 20 ms) and, at 200 kbit/s, 1 Mbit/s and
10 Mbit/s, runs the plan the static planner chooses for a 300 ms target
(and edge-only where that plan stays on the device) ``COINFER_EDGE_REPEAT``
times (default 9) through the server, with the link shaped by the client's
token buckets.  Prints the median measured end-to-end latency next to the
prediction (a priori, online-refined from the earlier frames, and on costs timed
between the frames), and its split: device compute (realised under the device
profile), transfer (both directions), edge compute, and the rest.

A second test plays a shipped bandwidth trace live (time-lapsed) with
Edgent's dynamic strategy and prints the plan switches and fallbacks.
"""
import os

import numpy as np
import pytest

from coinfer.graph.edgent.runtime import summarize
from coinfer.graph.studies import edgent as study_mod
from coinfer.graph.studies.edge import RemoteStudy, ServerProcess, format_compare
from coinfer.hw.link import load_shipped

REPEAT = int(os.environ.get("COINFER_EDGE_REPEAT", "9"))
BANDWIDTHS = (200e3, 1e6, 10e6)
TARGET_S = 0.3
LINES: dict = {}


@pytest.fixture(scope="module")
def remote(study_table):
    study_table("Edge server: measured vs predicted (B-AlexNet, raspberry_pi device, desktop_edge edge over "
                "loopback, RTT 20 ms, target 300 ms)", lambda: LINES.get("compare", []) + LINES.get("live", []))
    with ServerProcess("--soc", "desktop_edge") as server, \
            study_mod.Study("branchy_alexnet", progress=False, packed=True) as study, RemoteStudy(study, server.address) as rs:
        yield rs


def test_measured_vs_predicted(benchmark, remote):
    rows = []

    def run():
        rows[:] = remote.compare(BANDWIDTHS, TARGET_S, REPEAT)

    benchmark.pedantic(run, rounds=1, iterations=1)
    LINES["compare"] = [f"{REPEAT} frames per row (after one warm-up)"] + format_compare(rows).splitlines()
    benchmark.extra_info["rows"] = [
        {"bandwidth_bps": b, "which": kind, "plan": list(m.plan), "predicted_ms": m.predicted_s * 1e3,
         **m.as_json(), "error": m.error, "online_error": m.online_error,
         "interleaved_error": m.interleaved_error, "parts_ms": [v * 1e3 for v in m.parts_s], "warmup": m.warmup,
         "per_frame_ms": [[v * 1e3 for v in f] for f in m.per_frame]} for b, kind, m in rows]
    for b, kind, m in rows:
        assert m.fallbacks == 0 and m.max_abs_err <= 1e-6


def test_live_trace(benchmark, remote):
    trace = load_shipped("hsdpa_bus_oslo")
    frames = int(os.environ.get("COINFER_EDGE_LIVE_FRAMES", "40"))
    recs = []

    def run():
        recs[:] = remote.live(trace, target_s=TARGET_S, frames=frames, frame_s=trace.duration / frames,
                              speedup=20.0)

    benchmark.pedantic(run, rounds=1, iterations=1)
    s = summarize("edgent-dynamic (live)", recs)
    switches = sum(a.plan != b.plan for a, b in zip(recs, recs[1:]))
    err = np.array([abs(r.measured_s - r.predicted_s) / r.measured_s for r in recs])
    LINES["live"] = [
        "", f"live: {trace.name}, {frames} frames over the whole trace, played 20x faster, edgent-dynamic on measured "
        f"throughput: deadline met {100 * s.deadline_met:.0f}%, mean accuracy {100 * s.mean_accuracy:.1f}%, "
        f"mean {s.mean_ms:.0f} ms, p95 {s.p95_ms:.0f} ms, {switches} plan switches, "
        f"{sum(1 for r in recs if r.fallback)} fallbacks, mean |measured - predicted| / measured "
        f"{100 * err.mean():.1f}%"]
    benchmark.extra_info.update({"deadline_met": s.deadline_met, "mean_ms": s.mean_ms, "switches": switches})
