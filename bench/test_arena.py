"""Arena planner study: bytes used versus the lower bound, and planning time.

Run: ``pytest bench/test_arena.py --benchmark-only``.  Each workload's plan is
timed; ``test_arena_table`` prints one table (workload, tensors, used bytes,
lower bound, naive sum, used / lower bound, the same without the local search)
with the averages per group, and puts the ratios in ``benchmark.extra_info``.
The peers are the naive plan (one range per tensor), the greedy best-fit
orderings without the local search, greedy by size alone (TFLite's arena
planner), and the lower bound no plan can beat.
"""
import statistics
import time

import pytest

from coinfer.graph.studies import arena as W
from coinfer.hw.arena import lower_bound, naive_bytes, plan_offsets
from coinfer.hw.arena_plan import greedy_by_size


def _workloads() -> dict:
    sets = {f"net/{k}": v for k, v in W.networks().items()}
    for seed in range(6):
        sets[f"random/small-{seed}"] = W.random_lifetimes(seed, n=60, ops=40, mean_life=6)
        sets[f"random/dense-{seed}"] = W.random_lifetimes(100 + seed, n=200, ops=50, mean_life=10)
    for seed in range(6):
        sets[f"cnn-like/{seed}"] = W.cnn_like(seed, ops=60)
    return sets


WORKLOADS = _workloads()


def _row(name, ts):
    t = time.perf_counter()
    _, used = plan_offsets(ts)
    ms = (time.perf_counter() - t) * 1e3
    _, greedy = plan_offsets(ts, search=0)
    _, tflite = greedy_by_size(ts)
    lb = lower_bound(ts)
    return {"workload": name, "tensors": len(ts), "used": used, "lower_bound": lb,
            "naive": naive_bytes(ts), "ratio": used / lb if lb else 1.0,
            "greedy": greedy / lb if lb else 1.0, "by_size": tflite / lb if lb else 1.0, "ms": ms}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_plan_offsets(benchmark, name):
    ts = WORKLOADS[name]
    _, used = benchmark(plan_offsets, ts)
    lb = lower_bound(ts)
    benchmark.extra_info.update(
        used_bytes=used, lower_bound=lb, naive_bytes=naive_bytes(ts), ratio=used / lb if lb else 1.0
    )


def test_arena_table(benchmark, capsys):
    rows = benchmark.pedantic(lambda: [_row(k, v) for k, v in WORKLOADS.items()], rounds=1, iterations=1)
    groups = {
        "networks": [r["ratio"] for r in rows if r["workload"].startswith("net/")],
        "random": [r["ratio"] for r in rows if r["workload"].startswith("random/")],
        "cnn-like": [r["ratio"] for r in rows if r["workload"].startswith("cnn-like/")],
    }
    groups["random+cnn-like"] = groups["random"] + groups["cnn-like"]
    means = {g: statistics.mean(v) for g, v in groups.items()}
    benchmark.extra_info.update({f"mean_ratio_{g}": m for g, m in means.items()})
    benchmark.extra_info.update({f"ratio_{r['workload']}": r["ratio"] for r in rows})
    lines = [
        "",
        f"{'workload':<18} {'tensors':>7} {'used B':>12} {'lower bound B':>14} {'naive B':>12} "
        f"{'used/lb':>8} {'no-search/lb':>12} {'by-size/lb':>10} {'naive/lb':>9} {'plan ms':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['workload']:<18} {r['tensors']:>7} {r['used']:>12} {r['lower_bound']:>14} "
            f"{r['naive']:>12} {r['ratio']:>8.4f} {r['greedy']:>12.4f} {r['by_size']:>10.4f} "
            f"{r['naive'] / r['lower_bound']:>9.2f} {r['ms']:>8.1f}"
        )
    for g, m in means.items():
        lines.append(f"mean used/lower bound, {g:<16} {m:.4f}  (max {max(groups[g]):.4f})")
    for key, label in (("greedy", "without the local search"), ("by_size", "greedy by size alone")):
        m = statistics.mean(r[key] for r in rows if not r["workload"].startswith("net/"))
        lines.append(f"mean {label}, random+cnn-like: {m:.4f}")
        benchmark.extra_info[f"mean_ratio_{key}_random+cnn-like"] = m
    m = statistics.mean(r["by_size"] for r in rows if r["workload"].startswith("net/"))
    lines.append(f"mean greedy by size alone, networks: {m:.4f}")
    with capsys.disabled():
        print("\n".join(lines))
    assert means["networks"] <= 1.05 and means["random+cnn-like"] <= 1.10
