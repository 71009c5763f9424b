"""Trace recording, replay math on hand-made task graphs, Chrome export, profiles."""
import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.hw import Cost, CostProfile, Trace, get_profile, profiles


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def test_chain_replays_to_its_measured_makespan():
    tr = Trace()
    a = tr.record("cpu", 0, "compute", "a", 0.0, 1.0)
    b = tr.record("cpu", 0, "compute", "b", 1.0, 3.0, deps=[a])
    tr.record("cpu", 0, "compute", "c", 3.0, 3.5, deps=[b])
    assert tr.makespan() == approx(3.5)
    assert tr.replay("host") == approx(3.5)


def test_gaps_are_kept_or_dropped():
    tr = Trace()
    a = tr.record("cpu", 0, "compute", "a", 0.0, 1.0)
    tr.record("cpu", 0, "compute", "b", 1.25, 2.0, deps=[a])  # 0.25 s of dispatch
    assert tr.replay("host") == approx(2.0)
    assert tr.replay("host", gaps=False) == approx(1.75)


def test_fan_in_waits_for_the_slowest_dependency():
    tr = Trace()
    a = tr.record("cpu", 0, "compute", "a", 0.0, 1.0)
    b = tr.record("gpu", 0, "compute", "b", 0.0, 2.0)
    c = tr.record("cpu", 1, "compute", "c", 0.0, 0.5)
    tr.record("cpu", 0, "sync", "join", 2.0, 2.1, deps=[a, b, c])
    assert tr.replay("host") == approx(2.1)
    # Slow the gpu down 3x: the join waits for b, now 6 s.
    prof = CostProfile("slow-gpu", {"gpu": 1.0}, host_gflops=3.0)
    assert prof.scale("gpu") == approx(3.0) and prof.scale("cpu") == 1.0
    assert tr.replay(prof) == approx(6.1)


def test_two_processors_scaled_and_costed():
    # gpu computes 0..2 while cpu computes 0..1; the cpu then syncs on the gpu,
    # maps 1000 bytes and computes again.
    tr = Trace()
    g = tr.record("gpu", 0, "compute", "g", 0.0, 2.0)
    c = tr.record("cpu", 0, "compute", "c", 0.0, 1.0)
    s = tr.record("cpu", 0, "sync", "s", 2.0, 2.0, deps=[g, c])
    m = tr.record("cpu", 0, "map", "m", 2.0, 2.5, deps=[s], bytes=1000)
    tr.record("cpu", 0, "compute", "c2", 2.5, 3.5, deps=[m])
    assert tr.replay("host") == approx(3.5)
    prof = CostProfile(
        "p", {"cpu": 2.0, "gpu": 1.0}, {"sync": Cost(0.1), "map": Cost(0.01, 1e-3)}, host_gflops=1.0
    )
    # cpu scale 0.5, gpu scale 1.0: g ends 2.0; c ends 0.5; sync 2.0..2.1;
    # map: 0.5 real (unscaled) + 0.01 + 1.0 -> 3.61; c2: 1.0 * 0.5 -> 4.11.
    assert tr.replay(prof) == approx(4.11)


def test_realised_modelled_cost_is_not_counted_twice():
    tr = Trace()
    tr.record("cpu", 0, "sync", "s", 0.0, 0.3, modelled=0.25)
    assert tr.replay("host") == approx(0.05)
    prof = CostProfile("p", costs={"sync": Cost(0.25)})
    assert tr.replay(prof) == approx(0.3)


def test_thread_order_is_kept():
    # Two independent tasks on one thread: the second waits for the first.
    tr = Trace()
    tr.record("gpu", 0, "compute", "a", 0.0, 1.0)
    tr.record("gpu", 0, "compute", "b", 1.0, 2.0)
    tr.record("gpu", 1, "compute", "c", 0.0, 1.0)
    prof = CostProfile("p", {"gpu": 1.0}, host_gflops=2.0)
    assert tr.replay(prof) == approx(4.0)


def test_submission_time_bounds_the_start():
    # Submitted at 5.0, ready at 1.0: replay under a faster profile still starts at 5.0.
    tr = Trace()
    a = tr.record("cpu", 0, "compute", "a", 0.0, 1.0, submitted=0.0)
    tr.record("cpu", 0, "compute", "b", 5.01, 6.0, deps=[a], submitted=5.0)
    assert tr.replay("host") == approx(6.0)
    fast = CostProfile("fast", {"cpu": 2.0}, host_gflops=1.0)
    assert tr.replay(fast) == approx(5.01 + 0.495)
    assert tr.replay(fast, gaps=False) == approx(0.995)


@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 1.0), st.floats(0.0, 0.2), st.lists(st.integers(0, 50), max_size=3)),
                min_size=1, max_size=30))
def test_replay_host_reproduces_a_consistent_timeline(spec):
    # Build a timeline that obeys the recorded constraints; host replay must give its makespan.
    tr = Trace()
    ends, free = [], {}
    for i, (th, dur, gap, deps) in enumerate(spec):
        deps = sorted({d for d in deps if d < i})
        ready = max([free.get(th, 0.0)] + [ends[d] for d in deps])
        start = ready + gap
        ends.append(start + dur)
        free[th] = start + dur
        tr.record("p", th, "compute", f"t{i}", start, start + dur, deps=deps)
    origin = min(t.start for t in tr.tasks)
    assert tr.makespan() == pytest.approx(max(ends) - origin, rel=1e-9, abs=1e-9)
    assert tr.replay("host") == pytest.approx(max(ends) - origin, rel=1e-9, abs=1e-9)
    assert tr.replay("host", gaps=False) <= tr.replay("host") + 1e-9


def test_summary_and_sharing_share():
    tr = Trace()
    tr.record("cpu", 0, "compute", "c", 0.0, 3.0)
    tr.record("cpu", 0, "transform", "t", 3.0, 3.5, bytes=100)
    tr.record("gpu", 0, "sync", "s", 0.0, 0.5)
    s = tr.summary()
    assert s["busy"] == approx(4.0)
    assert s["by_kind"]["compute"] == approx(3.0)
    assert s["sharing_share"] == approx(0.25)
    assert s["bytes"]["transform"] == 100
    assert s["by_processor"] == {"cpu": approx(3.5), "gpu": approx(0.5)}
    s2 = tr.summary(CostProfile("p", costs={"sync": Cost(0.5)}))
    assert s2["by_kind"]["sync"] == approx(1.0)


def test_record_refuses_bad_tasks():
    tr = Trace()
    with pytest.raises(ValueError, match="kind"):
        tr.record("cpu", 0, "nap", "x", 0.0, 1.0)
    with pytest.raises(ValueError, match="unknown task ids"):
        tr.record("cpu", 0, "compute", "x", 0.0, 1.0, deps=[0])
    with pytest.raises(ValueError, match="ends"):
        tr.record("cpu", 0, "compute", "x", 1.0, 0.5)
    assert tr.replay() == 0.0 and tr.makespan() == 0.0


def test_concurrent_records_get_unique_ids():
    tr = Trace()

    def work():
        for _ in range(200):
            tr.record("cpu", 0, "compute", "x", 0.0, 0.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [t.id for t in tr.tasks] == list(range(800))


def test_chrome_json(tmp_path):
    tr = Trace()
    a = tr.record("cpu", 0, "compute", "conv1", 0.0, 0.001, region={"rows": (0, 4)}, bytes=64)
    tr.record("gpu", 1, "map", "conv1", 0.001, 0.002, deps=[a], bytes=128)
    path = tmp_path / "t.json"
    tr.to_chrome(path)
    doc = json.loads(path.read_text())
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == 2
    assert {e["pid"] for e in xs} == {1, 2} and {e["tid"] for e in xs} == {0, 1}
    assert xs[0]["args"]["op"] == "conv1" and xs[0]["args"]["region"] == {"rows": [0, 4]}
    assert xs[1]["args"]["bytes"] == 128 and xs[1]["args"]["deps"] == [0]
    assert xs[1]["ts"] == pytest.approx(1000.0) and xs[1]["dur"] == pytest.approx(1000.0)
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert {"cpu", "gpu", "cpu.0", "gpu.1"} <= names
    replayed = tr.to_chrome(profile=CostProfile("p", costs={"map": Cost(1.0)}))
    assert replayed["otherData"]["profile"] == "p"


def test_profiles_registry():
    ps = profiles()
    assert {"host", "snapdragon855", "raspberry_pi", "desktop_edge"} <= set(ps)
    host = get_profile("host")
    assert host.is_free and host.scale("cpu") == 1.0 and host.cost("map", 10**6) == 0.0
    sd = get_profile("snapdragon855")
    share = 56 * 112 * 32 * 4
    assert sd.cost("map", share) == pytest.approx(0.07e-3)
    assert sd.cost("transform", share) == pytest.approx(0.05e-3)
    assert sd.cost("unmap", share) == pytest.approx(0.003e-3)
    assert 2 * sd.cost("sync") == pytest.approx(0.91e-3)
    assert 0.9 < sd.scale("gpu") / sd.scale("cpu") < 1.1  # comparably fast
    assert get_profile("raspberry_pi").scale("cpu") > 10 * sd.scale("cpu")
    assert sd.calibrated(2 * sd.host_gflops).scale("cpu") == pytest.approx(2 * sd.scale("cpu"))
    assert sd.with_gflops(edge=10.0).scale("edge") == pytest.approx(sd.host_gflops / 10.0)
    assert sd.with_costs(sync=Cost(1.0)).cost("sync") == 1.0
    assert get_profile(sd) is sd
    with pytest.raises(ValueError, match="unknown cost profile"):
        get_profile("pdp11")
    with pytest.raises(ValueError, match="kind"):
        CostProfile("x", costs={"compute": Cost(1.0)})
    with pytest.raises(ValueError):
        Cost(-1.0)
