"""coinfer.graph.latency: predicted latency and breakdown; Edgent plans as stages; cost table snapshots."""
import math

import numpy as np
import pytest

from coinfer.graph import latency, zoo
from coinfer.graph.coexec.chains import plan_cost
from coinfer.graph.coexec.strategies import plan_codl
from coinfer.graph.coexec.view import view_of
from coinfer.graph.costs.sides import MeasuredSideCosts
from coinfer.graph.costs.source import TableCosts
from coinfer.graph.edgent.cut import placement
from coinfer.graph.edgent.models import branchy_lenet
from coinfer.graph.edgent.stages import frame_stages
from coinfer.graph.edgent.static import StaticPlanner
from coinfer.graph.ir import fuse_relu
from coinfer.graph.latencies import clear_cache
from coinfer.hw import BandwidthTrace, Link
from coinfer.hw.link import edge_profile
from coinfer.hw.profile import get_profile

LENET = branchy_lenet()
SQUEEZE = fuse_relu(zoo.build("squeezenet", input_size=35))


def host_costs(g, seed=0):
    rng = np.random.default_rng(seed)
    return {op.name: {"device": float(rng.uniform(1e-5, 1e-4)), "edge": float(rng.uniform(1e-5, 1e-4))}
            for op in g.ops}


def table_costs(g, seed=0):
    rng = np.random.default_rng(seed)
    return TableCosts({op.name: {"cpu": float(rng.uniform(1e-4, 1e-3)), "gpu": float(rng.uniform(1e-4, 1e-3))}
                       for op in g.ops}, fixed=2e-5, transform_per_byte=1e-10, map_per_byte=1e-10, sync_s=5e-5)


def test_importable_from_coinfer_graph():
    import coinfer.graph as cg

    assert cg.latency is latency and callable(latency)


def test_codl_breakdown_is_the_cost_model_of_the_plan():
    costs = table_costs(SQUEEZE)
    r = latency(SQUEEZE, "host", "codl-nochain", costs=costs)
    view = view_of(SQUEEZE)
    plan = plan_codl(SQUEEZE, costs, chains=False)
    assert [c for c in r.plan.chains] == plan.chains
    assert r.total_s == pytest.approx(plan_cost(view, plan.chains, costs))
    assert r.transfer_s == 0.0 and set(r.compute_s) == {"cpu", "gpu"}
    # the cost model's arithmetic on a fixed cost table (no clock read): overlap never adds time
    assert r.total_s <= r.compute_s["cpu"] + r.compute_s["gpu"] + r.sharing_s + 1e-12
    assert latency(SQUEEZE, "host", "codl-nochain", costs=costs) is r  # planned once
    d = r.as_dict()
    assert d["total_ms"] == pytest.approx(r.total_s * 1e3) and d["strategy"] == "codl-nochain"
    assert isinstance(d["plan"], str) and d["cpu_ms"] >= 0


def test_single_processor_plans_and_profiles_scale_compute():
    costs = table_costs(SQUEEZE, 1)
    cpu = latency(SQUEEZE, "host", "cpu", costs=costs)
    view = view_of(SQUEEZE)
    full = sum(costs.compute(op, "cpu", (0, op.out_rows, 0, op.out_channels)) for op in view.ops)
    assert cpu.total_s == pytest.approx(full) and cpu.compute_s["gpu"] == 0 and cpu.sharing_s == 0
    sd = latency(SQUEEZE, "snapdragon855", "cpu", costs=costs)
    assert sd.total_s == pytest.approx(full * get_profile("snapdragon855").scale("cpu"))
    gpu = latency(SQUEEZE, "host", "gpu", costs=costs, target_s=1e-9)
    assert gpu.compute_s["cpu"] == 0 or gpu.sharing_s > 0  # unsupported ops fall back to the cpu
    assert gpu.met is False and gpu.target_s == 1e-9


def test_edgent_latency_is_the_planners():
    host = host_costs(LENET)
    costs = MeasuredSideCosts.of_host(host, edge_profile("raspberry_pi", "desktop_edge"))
    pl = StaticPlanner(LENET, costs)
    for bw in (1e5, 1e6, 1e7):
        for target in (0.02, 0.1, None):
            r = latency(LENET, "raspberry_pi", "edgent", bandwidth=bw, rtt_s=0.02, target_s=target, costs=host)
            d = pl.plan(bw, math.inf if target is None else target, 0.02)
            assert r.plan == d.key and r.total_s == pytest.approx(d.predicted_s)
            assert r.total_s == pytest.approx(r.compute_s["device"] + r.compute_s["edge"] + r.transfer_s)
            assert r.accuracy == LENET.exits[d.exit].accuracy
            if target is not None:
                assert r.met == (r.total_s <= target)


def test_edge_strategies_and_explicit_plans():
    host = host_costs(LENET, 2)
    kw = dict(bandwidth="1Mbps", rtt_s=0.01, costs=host)
    dev = latency(LENET, "raspberry_pi", "device-only", **kw)
    assert dev.transfer_s == 0 and dev.compute_s["edge"] == 0 and dev.plan[0] == len(LENET.exits) - 1
    edge = latency(LENET, "raspberry_pi", "edge-only", **kw)
    assert edge.compute_s["device"] == 0 and edge.transfer_s > 0
    pl = placement(LENET, 1, 2, "device-first")
    r = latency(LENET, "raspberry_pi", (1, 2, "device-first"), **kw)
    assert r.plan == (1, 2, "device-first")
    want = sum(0.005 + 8 * c.nbytes / 1e6 for c in pl.crossings)
    assert r.transfer_s == pytest.approx(want)
    ns = latency(LENET, "raspberry_pi", "neurosurgeon", **kw)
    assert ns.plan[2] == "device-first" and ns.plan[0] == len(LENET.exits) - 1


def test_a_trace_link_integrates_the_transfers_over_the_trace():
    host = host_costs(LENET, 3)
    tr = BandwidthTrace([0, 10], [0.5, 4.0])
    r = latency(LENET, "raspberry_pi", "edge-only", link=Link(trace=tr, rtt_s=0.02), at=9.99, costs=host)
    fixed = latency(LENET, "raspberry_pi", "edge-only", bandwidth=0.5e6, rtt_s=0.02, costs=host)
    assert r.bandwidth_bps == 0.5e6 and r.transfer_s < fixed.transfer_s  # 4 Mbit/s from 0.01 s into the upload


def test_errors_name_what_is_wrong():
    host = host_costs(LENET)
    with pytest.raises(ValueError, match="one SoC"):
        latency(SQUEEZE, "host", "codl", bandwidth="1Mbps", costs=table_costs(SQUEEZE))
    with pytest.raises(ValueError, match="bandwidth and link"):
        latency(LENET, "raspberry_pi", "edgent", costs=host)
    with pytest.raises(ValueError, match="branchy"):
        latency(SQUEEZE, "raspberry_pi", "edgent", bandwidth="1Mbps")
    with pytest.raises(ValueError, match="unknown strategy"):
        latency(LENET, "host", "fastest")
    with pytest.raises(ValueError, match="unknown cost profile"):
        latency(LENET, "pixel9", "edgent", bandwidth="1Mbps", costs=host)
    with pytest.raises(ValueError, match="unknown model"):
        latency("nosuchmodel")
    with pytest.raises(ValueError, match="target_s"):
        latency(LENET, "raspberry_pi", "edgent", bandwidth="1Mbps", target_s=-1, costs=host)
    with pytest.raises(ValueError, match="bandwidth"):
        latency(LENET, "raspberry_pi", "edgent", bandwidth="fast", costs=host)
    with pytest.raises(ValueError, match="no plan"):
        latency(LENET, "raspberry_pi", (0, 99, "edge-first"), bandwidth="1Mbps", costs=host)
    with pytest.raises(TypeError, match="model"):
        latency(3.5)
    clear_cache()


@pytest.mark.parametrize("key", [(2, 0, "edge-first"), (2, 4, "edge-first"), (2, 4, "device-first"),
                                 (0, 3, "device-first"), (1, 7, "edge-first")])
def test_frame_stages_follow_the_placement(key):
    host = host_costs(LENET, 4)
    costs = MeasuredSideCosts.of_host(host, edge_profile("raspberry_pi", "desktop_edge"))
    pl = placement(LENET, *key)
    st = frame_stages(pl, costs)
    compute = {s: sum(costs.seconds(op, s) for op, w in zip(pl.ops, pl.sides) if w == s) for s in ("device", "edge")}
    for side in ("device", "edge"):
        assert sum(s.seconds for s in st if s.where == side) == pytest.approx(compute[side])
    xfer = [s for s in st if s.kind == "transfer"]
    assert sum(s.nbytes for s in xfer) == pl.transfer_bytes
    assert sum(s.crossings for s in xfer) == len(pl.crossings)
    assert all(a.where != b.where for a, b in zip(st, st[1:]))  # runs are merged
    framed = frame_stages(pl, costs, framing=64, warmup=lambda op: 1e-3)
    assert sum(s.nbytes for s in framed if s.kind == "transfer") == pl.transfer_bytes + sum(
        64 * (s.crossings + 1) for s in xfer)
    warm = [s for s in framed if not s.wait]
    if compute["edge"] > 0:
        (w,) = warm
        i = framed.index(w)
        assert w.where == "edge" and framed[i + 1].where == "uplink"
        assert w.seconds == pytest.approx(1e-3 * pl.sides.count("edge"))
    else:
        assert not warm


def test_measured_costs_survive_json(tmp_path):
    import json

    from coinfer.graph.costs.measured import MeasuredCosts
    from coinfer.hw import SoC

    g = fuse_relu(zoo.build("squeezenet", input_size=35))
    with SoC.host() as soc:
        m = MeasuredCosts(g, soc, repeats=1, progress=False)
    back = MeasuredCosts.from_json(json.loads(json.dumps(m.to_json())), g)
    view = view_of(g)
    for op in view.ops:
        for proc in ("cpu", "gpu"):
            for region in ((0, op.out_rows, 0, op.out_channels), (0, max(1, op.out_rows // 3), 0, op.out_channels)):
                assert back.compute(op, proc, region, True) == m.compute(op, proc, region, True)
    assert back.sync() == m.sync() and back.transform(12345) == m.transform(12345)
    assert back.throughput("cpu") == m.throughput("cpu")
    with pytest.raises(ValueError, match="other ops"):
        MeasuredCosts.from_json(m.to_json(), LENET)
