"""The SimPy adapter: resources, stages, queueing, links over traces."""
import pytest

simpy = pytest.importorskip("simpy")

from coinfer.hw import BandwidthTrace, Link  # noqa: E402
from coinfer.hw.sim import (Request, SimLink, SimProcessor, Stage, infer,  # noqa: E402
                            transfer_seconds)


def _run(env, reqs):
    procs = [env.process(infer(env, r)) for r in reqs]
    env.run()
    return [p.value for p in procs]


def test_one_processor_queues_requests_in_order():
    env = simpy.Environment()
    cpu = SimProcessor(env, "edge")
    res = {"edge": cpu}
    recs = _run(env, [Request([Stage("compute", "edge", seconds=0.5)], res, f"r{i}") for i in range(3)])
    assert [r.latency_s for r in recs] == [0.5, 1.0, 1.5]
    assert [r.wait_s() for r in recs] == [0.0, 0.5, 1.0]
    assert cpu.busy_s == 1.5 and cpu.served == 3
    assert cpu.utilisation(env.now) == pytest.approx(1.0)


def test_capacity_serves_in_parallel():
    env = simpy.Environment()
    res = {"edge": SimProcessor(env, "edge", capacity=2)}
    recs = _run(env, [Request([Stage("compute", "edge", seconds=0.5)], res) for _ in range(3)])
    assert sorted(r.latency_s for r in recs) == [0.5, 0.5, 1.0]
    assert res["edge"].utilisation(env.now) == pytest.approx(1.5 / 2)


def test_link_prices_bits_and_half_a_round_trip_per_tensor():
    env = simpy.Environment()
    link = Link("1Mbps", rtt_s=0.02)
    up = SimLink(env, link, "up")
    st = Stage("transfer", "uplink", nbytes=125_000, crossings=2)
    (rec,) = _run(env, [Request([st], {"uplink": up})])
    assert rec.latency_s == pytest.approx(2 * 0.01 + 1.0)
    assert transfer_seconds(link, 125_000, 1) == pytest.approx(link.transfer_time(125_000))
    assert transfer_seconds(link, 0, 3) == 0.0


def test_link_follows_its_trace_from_its_offset():
    tr = BandwidthTrace([0, 1, 2], [1.0, 2.0, 4.0])  # Mbit/s, 1 s each, period 3 s
    link = Link(trace=tr)
    env = simpy.Environment()
    up = SimLink(env, link, "up", at=1.0)  # starts in the 2 Mbit/s second
    (rec,) = _run(env, [Request([Stage("transfer", "uplink", nbytes=500_000)], {"uplink": up})])
    # 4 Mbit: 2 in the 2 Mbit/s second, the other 2 at 4 Mbit/s take 0.5 s
    assert rec.latency_s == pytest.approx(1.5)
    assert up.bandwidth(0.0) == 2e6


def test_stages_run_in_order_and_a_detached_stage_is_not_waited_for():
    env = simpy.Environment()
    res = {"device": SimProcessor(env, "device"), "edge": SimProcessor(env, "edge"),
           "uplink": SimLink(env, Link(8e6), "up")}
    stages = [Stage("compute", "device", seconds=0.1), Stage("compute", "edge", seconds=0.3, wait=False),
              Stage("transfer", "uplink", nbytes=100_000), Stage("compute", "edge", seconds=0.2)]
    (rec,) = _run(env, [Request(stages, res)])
    # device 0.1, upload 0.1 while the edge's detached 0.3 s runs (0.1..0.4), then the edge's 0.2 waits for it
    assert rec.latency_s == pytest.approx(0.6)
    edge = [r for r in rec.stages if r.stage.where == "edge" and r.stage.wait][0]
    assert edge.wait_s == pytest.approx(0.2)
    assert rec.service_s("compute", "edge") == pytest.approx(0.5)
    assert res["edge"].busy_s == pytest.approx(0.5)


def test_bad_stages_and_requests():
    env = simpy.Environment()
    with pytest.raises(ValueError, match="kind"):
        Stage("sleep", "cpu")
    with pytest.raises(ValueError, match="seconds"):
        Stage("compute", "cpu", seconds=-1.0)
    with pytest.raises(ValueError, match="nbytes"):
        Stage("transfer", "up", nbytes=-1)
    with pytest.raises(ValueError, match="needs resource 'edge'"):
        Request([Stage("compute", "edge", seconds=1.0)], {"cpu": SimProcessor(env, "cpu")})
    with pytest.raises(TypeError, match="SimLink"):
        Request([Stage("transfer", "up", nbytes=1)], {"up": SimProcessor(env, "cpu")})
    with pytest.raises(ValueError, match="capacity"):
        SimProcessor(env, "edge", capacity=0)
    with pytest.raises(TypeError, match="Link"):
        SimLink(env, 1e6, "up")
