"""Edgent study: B-AlexNet on an emulated Raspberry Pi device and desktop edge.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/test_edgent.py --benchmark-only -s

Prints, at the end of the session:

- the static planner against brute force over the printed candidates at 10
  bandwidths x 5 targets in each direction set, and the decision time;
- emulated (real kernels, replayed under the device and edge profiles with
  the link's transfers) against predicted latency for every chosen plan: the
  planner's own prediction (costs measured before the experiment), and an
  interleaved check (per-op costs and frames measured in alternating rounds),
  which separates the latency model's error from the host's speed drifting
  with other load between measuring and running;
- BranchyNet Table I for both branchy models, measured now with coinfer's
  kernels on the 1,000 held-out digits (needs ``coinfer[data]``);
- the trace-driven episodes on the six shipped traces at a target that
  device-only misses.

Figures go to ``bench/out/`` when matplotlib is installed.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from coinfer.graph.edgent.runtime import STRATEGIES, summarize
from coinfer.graph.studies import edgent as study_mod
from coinfer.hw import Link
from coinfer.hw.link import load_shipped, shipped

OUT = Path(__file__).resolve().parent / "out"
FRAMES = int(os.environ.get("COINFER_EDGENT_FRAMES", "200"))
BANDWIDTHS = np.geomspace(50e3, 1.5e6, 10)
TARGETS = [0.05, 0.1, 0.2, 0.5, 1.0]
LINES: dict = {}


@pytest.fixture(scope="module")
def study(study_table):
    study_table("Edgent study (B-AlexNet, raspberry_pi device, desktop_edge edge, RTT 20 ms)",
                lambda: [line for k in ("static", "emulated", "table1", "episodes") for line in LINES.get(k, [])])
    with study_mod.Study("branchy_alexnet", progress=False) as s:
        yield s


def test_static_plan_equals_brute_force(benchmark, study):
    rows = study.check_static(BANDWIDTHS, TARGETS)
    equal = sum(r["equal"] for r in rows)
    t = benchmark(study.planner.plan, 500e3, 0.3, study.rtt_s)
    dec = study.decision_time(500e3, 0.3)
    lines = [f"static planner == brute force: {equal}/{len(rows)} decisions (10 bandwidths x 5 targets x "
             f"edge-first, device-first, both; {len(study.planner)} candidates in 'both')",
             f"decision time (median of 2000, 'both'): {dec * 1e6:.1f} us",
             f"{'bandwidth':>10} " + " ".join(f"{tt * 1e3:>22.0f}ms" for tt in TARGETS)]
    both = [r for r in rows if r["directions"] == "edge-first+device-first"]
    for b in BANDWIDTHS:
        cells = []
        for tt in TARGETS:
            r = next(r for r in both if r["bandwidth_bps"] == b and r["target_s"] == tt)
            e, p, d = r["plan"]
            cells.append(f"e{e + 1} c{p:>2} {d[:4]}{'' if r['met'] else ' MISS':5}".rjust(24))
        lines.append(f"{b / 1e3:>8.0f}kb " + " ".join(cells))
    LINES["static"] = lines
    benchmark.extra_info.update({"equal": equal, "decisions": len(rows), "decision_us": dec * 1e6,
                                 "plan": t.key})


def test_emulated_vs_predicted(benchmark, study):
    study.remeasure()
    chosen = {}
    for b in BANDWIDTHS:
        for tt in TARGETS:
            d = study.planner.plan(b, tt, study.rtt_s)
            chosen.setdefault((d.key, b), d)
    rows = []

    def run_all():
        rows.clear()
        for (key, b), d in chosen.items():
            em = study.emulate(key, b, runs=5)
            pr_i, em_i = study.runner.check_prediction(key, Link(b, study.rtt_s), study.x)
            rows.append((key, b, d.predicted_s, em, pr_i, em_i))

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    err = np.array([(r[3] - r[2]) / r[2] for r in rows])
    err_i = np.array([(r[5] - r[4]) / r[4] for r in rows])
    within, within_i = int(np.sum(np.abs(err) <= 0.10)), int(np.sum(np.abs(err_i) <= 0.10))
    lines = [f"emulated vs predicted for the {len(rows)} distinct chosen (plan, bandwidth) pairs:",
             f"  planner's prediction (costs measured before the experiment) vs median of 5 runs: {within}/{len(rows)} "
             f"within 10%, mean |err| {100 * np.abs(err).mean():.1f}%, max {100 * np.abs(err).max():.1f}%",
             f"  interleaved (per-op costs and frames measured in alternating rounds, same host state): "
             f"{within_i}/{len(rows)} within 10%, mean |err| {100 * np.abs(err_i).mean():.1f}%, "
             f"max {100 * np.abs(err_i).max():.1f}%",
             f"{'exit':>4} {'cut':>4} {'direction':<13} {'kbit/s':>8} {'predicted':>10} {'emulated':>9} {'err':>7}"
             f" {'pred (il)':>10} {'emul (il)':>10} {'err':>7}"]
    for (e, p, d), b, pr, em, pi, ei in sorted(rows, key=lambda r: (r[1], r[0])):
        lines.append(f"{e + 1:>4} {p:>4} {d:<13} {b / 1e3:>8.0f} {pr * 1e3:>10.2f} {em * 1e3:>9.2f} "
                     f"{100 * (em - pr) / pr:>+6.1f}% {pi * 1e3:>10.2f} {ei * 1e3:>10.2f} {100 * (ei - pi) / pi:>+6.1f}%")
    LINES["emulated"] = lines
    benchmark.extra_info.update({"within_10pct": within, "within_10pct_interleaved": within_i, "pairs": len(rows),
                                 "mean_abs_err": float(np.abs(err).mean()),
                                 "mean_abs_err_interleaved": float(np.abs(err_i).mean())})


def test_table_one(benchmark, study):
    from coinfer.graph.edgent import data

    try:
        data.load_digits()
    except data.DataMissing as e:
        pytest.skip(str(e))
    reps = {}

    def measure():
        for m in ("branchy_alexnet", "branchy_lenet"):
            reps[m] = study_mod.table_one(m)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    lines = []
    for m, rep in reps.items():
        lines.append(f"BranchyNet Table I, {m}, MNIST held-out digits (stand-in for CIFAR-10 for B-AlexNet), "
                     f"coinfer buffer kernels:")
        lines.extend(rep.table().splitlines())
        benchmark.extra_info[m] = {"accuracy_alone": rep.accuracy_alone, "fractions": rep.fractions,
                                   "overall": rep.overall, "samples": rep.samples}
    LINES["table1"] = lines


@pytest.mark.parametrize("target", [0.1, 0.07])
def test_episodes(benchmark, study, target):
    dev = study.predicted(study.strategy_plan("device-only", 1e6, 1.0), 1e6)
    if dev <= target:
        pytest.skip(f"device-only meets {target * 1e3:.0f} ms on this host ({dev * 1e3:.1f} ms predicted)")
    results = {}

    def run_all():
        for name in shipped():
            tr = load_shipped(name)
            recs = study.episode(tr, target_s=target, frames=FRAMES)
            results[name] = (recs, study.config_map)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    on_device = [study.predicted((e, 0, "edge-first"), 1e6) * 1e3 for e in range(study.last + 1)]
    lines = [f"episodes: target {target * 1e3:.0f} ms (device-only predicted {dev * 1e3:.1f} ms; exits 1-5 on the "
             f"device: {', '.join(f'{v:.1f}' for v in on_device)} ms), {FRAMES} frames per trace spread over the "
             "whole trace, each the median of 3 runs; configuration map from the other five traces"]
    total = {s: [] for s in STRATEGIES}
    for name, (recs, cmap) in results.items():
        sums = [summarize(s, r) for s, r in recs.items()]
        lines.extend(study_mod.format_summaries(name, target, sums).splitlines())
        for s, r in recs.items():
            total[s].extend(r)
    sums = [summarize(s, r) for s, r in total.items()]
    lines.extend(study_mod.format_summaries("all six traces", target, sums).splitlines())
    by = {s.name: s for s in sums}
    dyn, sta, ns = by["edgent-dynamic"], by["edgent-static"], by["neurosurgeon"]
    lines.append(f"bar: dynamic met {dyn.met_frames} >= static {sta.met_frames}: {dyn.met_frames >= sta.met_frames}; "
                 f">= neurosurgeon {ns.met_frames}: {dyn.met_frames >= ns.met_frames}; mean accuracy "
                 f"{100 * dyn.mean_accuracy:.2f}% >= neurosurgeon {100 * ns.mean_accuracy:.2f}%: "
                 f"{dyn.mean_accuracy >= ns.mean_accuracy}")
    per_trace_ok = []
    for name, (recs, _) in results.items():
        s = {k: summarize(k, v) for k, v in recs.items()}
        per_trace_ok.append(s["edgent-dynamic"].met_frames >= max(s["edgent-static"].met_frames,
                                                                 s["neurosurgeon"].met_frames)
                            and s["edgent-dynamic"].mean_accuracy >= s["neurosurgeon"].mean_accuracy)
    lines.append(f"bar holds on {sum(per_trace_ok)}/{len(per_trace_ok)} traces individually")
    LINES["episodes"] = LINES.get("episodes", []) + lines
    benchmark.extra_info.update({s.name: s.as_json() | {"met_frames": s.met_frames} for s in sums})
    benchmark.extra_info["target_ms"] = target * 1e3
    try:
        OUT.mkdir(exist_ok=True)
        study_mod.plot_static(study, OUT, 1.0, 500e3)
        recs, _ = results["hsdpa_bus_oslo"]
        study_mod.plot_episode(study, OUT, load_shipped("hsdpa_bus_oslo"), target, recs,
                               suffix=f"_{target * 1e3:.0f}ms")
    except ImportError:
        pass
