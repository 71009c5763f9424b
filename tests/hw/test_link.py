"""The network link and bandwidth traces: transfer arithmetic, integration, shipped data."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.hw import BandwidthTrace, Cost, Link, Processor, Trace
from coinfer.hw.link import edge_profile, load_shipped, parse_rate, shipped


def test_transfer_time_is_half_rtt_plus_bits_over_bandwidth():
    link = Link(1e6, rtt_s=0.02)
    assert link.transfer_time(1000) == pytest.approx(0.01 + 8000 / 1e6)
    assert link.transfer_time(0) == 0.0
    assert Link("500kbps").transfer_time(12288) == pytest.approx(12288 * 8 / 5e5)
    assert link.cost() == Cost(0.01, 8e-6)


@pytest.mark.parametrize("text,bps", [("500kbps", 5e5), ("1.5Mbps", 1.5e6), ("2e6", 2e6), (64000, 64000.0),
                                      ("1 Mbit/s", 1e6)])
def test_parse_rate(text, bps):
    assert parse_rate(text) == pytest.approx(bps)


@pytest.mark.parametrize("bad", ["fast", "0kbps", "-1Mbps", float("nan")])
def test_parse_rate_rejects(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        parse_rate(bad)


def test_link_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        Link()
    with pytest.raises(ValueError, match="rtt_s"):
        Link(1e6, rtt_s=-1)
    with pytest.raises(ValueError, match="nbytes"):
        Link(1e6).transfer_time(-3)


def _steps():
    # 1 Mbit/s on [0, 1), nothing on [1, 2), 2 Mbit/s on [2, 3); then it repeats.
    return BandwidthTrace([0.0, 1.0, 2.0], [1.0, 0.0, 2.0], "steps")


def test_trace_bandwidth_and_period():
    tr = _steps()
    assert tr.period == 3.0 and tr.duration == 2.0
    assert tr.bandwidth(0.5) == 1e6 and tr.bandwidth(1.5) == 0.0 and tr.bandwidth(2.0) == 2e6
    assert tr.bandwidth(3.5) == 1e6  # repeats
    assert tr.mean_bps() == pytest.approx(1e6)


def test_trace_integration_waits_out_a_zero_sample():
    tr = _steps()
    assert tr.transfer_time(0.0, 1.5e6) == pytest.approx(2.25)  # 1 Mbit, a second of nothing, 0.5 Mbit at 2
    assert tr.transfer_time(0.5, 0.5e6) == pytest.approx(0.5)  # ends exactly at the zero sample
    assert tr.transfer_time(1.2, 1e6) == pytest.approx(1.3)  # starts inside the zero sample
    assert tr.transfer_time(2.5, 2e6) == pytest.approx(1.5)  # wraps into the next period
    assert tr.transfer_time(0.0, 9e6) == pytest.approx(9.0)  # three whole periods
    assert tr.transfer_time(1.5, 0) == 0.0
    link = Link(trace=tr, rtt_s=0.1)
    assert link.transfer_time(1_000_000 // 8, at=1.2) == pytest.approx(0.05 + 1.3)


def test_trace_rejects_all_zero_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="every sample is 0"):
        BandwidthTrace([0, 1], [0.0, 0.0])
    with pytest.raises(ValueError, match="increase"):
        BandwidthTrace([0, 0], [1.0, 1.0])
    p = tmp_path / "bad.txt"
    p.write_text("0.0 1.0\n1.0 x\n")
    with pytest.raises(ValueError, match="line 2"):
        BandwidthTrace.load(p)


def test_trace_file_with_a_zero_sample(tmp_path):
    p = tmp_path / "z.txt"
    p.write_text("0.0\t0.8\n1.0\t0.0\n2.0\t0.4\n")
    tr = BandwidthTrace.load(p)
    assert tr.name == "z" and len(tr) == 3
    d = tr.transfer_time(0.5, 0.8e6)  # 0.4 Mbit by t=1, none until 2, then 0.4 Mbit at 0.4 Mbit/s
    assert math.isfinite(d) and d == pytest.approx(2.5)


@given(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=8), st.floats(0.0, 30.0), st.floats(1.0, 2e7))
def test_trace_integration_inverts_bits_until(rates, t, bits):
    if not any(r > 0 for r in rates):
        rates = rates + [1.0]
    tr = BandwidthTrace(np.arange(len(rates), dtype=float) * 0.7, rates)
    d = tr.transfer_time(t, bits)
    assert tr.bits_until(t + d) - tr.bits_until(t) == pytest.approx(bits, rel=1e-9, abs=1e-3)
    if d > 1e-9:  # and not earlier
        assert tr.bits_until(t + d * (1 - 1e-6) - 1e-9) - tr.bits_until(t) < bits


def test_shipped_traces_with_their_readme():
    names = shipped()
    assert names == sorted(["fcc_amazon_13092", "fcc_youtube_5294", "hsdpa_bus_oslo", "hsdpa_car_snaroya",
                            "hsdpa_ferry_oslo", "hsdpa_train_vestby"])
    lines = {"fcc_youtube_5294": 372, "fcc_amazon_13092": 50, "hsdpa_bus_oslo": 832, "hsdpa_car_snaroya": 395,
             "hsdpa_ferry_oslo": 945, "hsdpa_train_vestby": 1586}
    for n in names:
        assert len(load_shipped(n)) == lines[n]
    yt = load_shipped("fcc_youtube_5294")
    assert yt.mbps.min() == 0.0 and math.isfinite(Link(trace=yt).transfer_time(12288, at=1849.0))
    from importlib import resources

    readme = resources.files("coinfer.hw").joinpath("traces", "README.md").read_text()
    assert "Pensieve" in readme and "Riiser" in readme
    with pytest.raises(ValueError, match="unknown bandwidth trace"):
        load_shipped("nope")


def test_synthetic_markov_trace_is_seeded():
    a = BandwidthTrace.synthetic((0.2, 1.0, 3.0), duration_s=200, seed=3)
    b = BandwidthTrace.synthetic((0.2, 1.0, 3.0), duration_s=200, seed=3)
    c = BandwidthTrace.synthetic((0.2, 1.0, 3.0), duration_s=200, seed=4)
    assert np.array_equal(a.mbps, b.mbps) and not np.array_equal(a.mbps, c.mbps)
    assert len(a) == 200 and a.mbps.min() > 0
    assert np.all(np.abs(np.log(a.mbps[:, None] / np.array([0.2, 1.0, 3.0]))).min(1) < 0.5)


def test_send_records_a_transfer_that_replay_prices():
    trace = Trace()
    link = Link(1e6, rtt_s=0.02)
    with Processor("device", "buffer", None, (0,), trace=trace) as dev, \
            Processor("edge", "buffer", None, (0,), trace=trace) as edge:
        a = dev.submit(lambda: None, op="front")
        got = {}
        sent = link.send(trace, 1000, op="x", after=[a], fn=lambda: got.setdefault("x", 1))
        s = edge.submit(None, op="receive x", kind="sync", after=[sent])
        edge.submit(lambda: None, op="back", after=[s]).result(10)
    assert got == {"x": 1}
    recs = {t.op: t for t in trace.tasks}
    x = recs["x"]
    assert (x.processor, x.kind, x.bytes) == ("link", "transfer", 1000)
    assert x.duration == pytest.approx(0.018) and x.deps == recs["front"].deps + (recs["front"].id,)
    base = trace.replay(edge_profile("host", "host"), gaps=False)
    assert base >= 0.018
    priced = trace.replay(edge_profile("host", "host").with_costs(transfer=Cost(0.0, 1e-5)), gaps=False)
    assert priced == pytest.approx(base + 0.01, rel=1e-6)


def test_edge_profile_scales_each_side_through_its_profile():
    p = edge_profile("raspberry_pi", "desktop_edge")
    from coinfer.hw import get_profile

    assert p.scale("device") == pytest.approx(get_profile("raspberry_pi").scale("device"))
    assert p.scale("edge") == pytest.approx(get_profile("desktop_edge").scale("edge"))
    assert p.cost("sync") == 0.0 and p.cost("transfer", 100) == 0.0
