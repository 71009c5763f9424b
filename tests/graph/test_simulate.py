"""coinfer simulate: N devices sharing one edge server in SimPy, and the check against the real server."""
import numpy as np
import pytest

pytest.importorskip("simpy")
pytest.importorskip("ruptures")

from coinfer.graph.edgent.models import branchy_lenet  # noqa: E402
from coinfer.graph.studies import simulate as sim  # noqa: E402

LENET = branchy_lenet()


def _host(g):
    return {op.name: {"device": 2e-4, "edge": 2e-4} for op in g.ops}


def _planning(**kw):
    sc = sim.Scenario(model="branchy_lenet", frames=kw.pop("frames", 20), **kw)
    return sim.Planning(sc, _host(LENET))


def test_queueing_at_the_edge_shows_in_the_latencies():
    p = _planning(edge="nexus5_gpu", frame_s=0.1, traces=("hsdpa_ferry_oslo",), stagger_s=7.0)
    last = len(LENET.exits) - 1
    from coinfer.graph.edgent.cut import placement

    plan = (last, len(placement(LENET, last, 0, "edge-first").ops), "edge-first")
    res = [sim.simulate(p, n, plans=lambda k, f, est: plan) for n in (1, 2, 4)]
    waits = [np.mean([f.edge_wait_s for fs in r.frames for f in fs]) for r in res]
    mean = [np.mean([f.latency_s for fs in r.frames for f in fs]) for r in res]
    assert waits[0] == 0 and waits[0] < waits[1] < waits[2]
    assert mean[0] < mean[1] < mean[2]
    assert res[0].edge_utilisation < res[1].edge_utilisation < res[2].edge_utilisation <= 1.0
    for r in res:
        for k, fs in enumerate(r.frames):
            assert len(fs) == 20 and all(f.plan == plan for f in fs)
            for f in fs:  # latency = device + transfers + edge + queueing (+ nothing else)
                assert f.latency_s == pytest.approx(f.device_s + f.transfer_s + f.edge_s + f.edge_wait_s, abs=1e-9)


def test_dynamic_devices_plan_from_their_traces_and_report_percentiles():
    p = _planning(frame_s=0.2, traces=("hsdpa_bus_oslo", "fcc_youtube_5294"))
    r = sim.simulate(p, 2)
    rows = r.per_device()
    assert [x["trace"] for x in rows] == ["hsdpa_bus_oslo", "fcc_youtube_5294"]
    for x in rows:
        assert 0 < x["p50_ms"] <= x["p95_ms"] and 0 <= x["met"] <= 1
    s = r.summary()
    assert s["n"] == 2 and 0 <= s["edge_utilisation"] <= 1 and len(s["device_p95_ms"]) == 2
    assert "edge util" in sim.format_table([r])
    # frames start every frame_s unless the one before overran
    for fs in r.frames:
        for f in fs:
            assert f.t_s == pytest.approx(f.index * 0.2 + f.lag_s)


def test_scenario_checks():
    with pytest.raises(ValueError, match="frames"):
        sim.Scenario(frames=0)
    with pytest.raises(ValueError, match="workers"):
        sim.Scenario(workers=0)
    with pytest.raises(ValueError, match="n must be"):
        sim.simulate(_planning(), 0)


def test_cli_json(capsys, tmp_path, monkeypatch):
    import json

    from coinfer.graph.studies.cli import main

    monkeypatch.setenv("COINFER_CACHE_DIR", str(tmp_path))  # the model's cost table is measured here
    assert main(["simulate", "--model", "branchy_lenet", "--devices", "1,3", "--frames", "5", "--json",
                 "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in doc["results"]] == [1, 3] and len(doc["results"][1]["devices"]) == 3
    assert main(["simulate", "--devices", "0"]) == 2
    assert "--devices" in capsys.readouterr().err


def test_real_check_runs_both_sides():
    sc = sim.Scenario(model="branchy_lenet", frames=4, frame_s=0.05, edge="desktop_edge")
    rows = sim.check_real(sc, ns=(2,), progress=False)
    assert [(r.n, r.device) for r in rows] == [(2, 0), (2, 1)]
    for r in rows:
        assert r.frames == 4 and r.fallbacks == 0
        assert np.isfinite([r.real_mean_ms, r.sim_mean_ms, r.replay_mean_ms]).all() and r.real_mean_ms > 0
    assert "replay" in sim.format_real(rows)
