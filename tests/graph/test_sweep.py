"""coinfer sweep: the spec, points as independent tasks on any executor, files, resuming, determinism."""
import concurrent.futures as cf
import json

import pytest

from coinfer.graph.costs import tables
from coinfer.graph.edge.catalog import graph_digest
from coinfer.graph.edgent.models import branchy_alexnet, branchy_lenet
from coinfer.graph.studies import sweep as sw

SPEC = {"axes": {"models": ["branchy_lenet", "branchy_alexnet"], "socs": ["raspberry_pi", "nexus5_cpu"],
                 "bandwidths": ["250kbps", "4Mbps"], "targets_ms": [100, 300]},
        "run": {"mode": "plan", "rtt_ms": 20}}


def _table(g, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    host = {op.name: {"device": float(rng.uniform(1e-5, 2e-4)), "edge": float(rng.uniform(1e-5, 2e-4))}
            for op in g.ops}
    return {"kind": "edgent", "version": tables.VERSION, "host": tables.host_info(), "graph": g.name,
            "digest": graph_digest(g), "data": {"host": host}}


TABLES = {"branchy_lenet": {"edgent": _table(branchy_lenet(), 0)},
          "branchy_alexnet": {"edgent": _table(branchy_alexnet(), 1)}}


def test_spec_defaults_and_product():
    s = sw.Spec.from_dict(SPEC)
    pts = s.points()
    assert len(pts) == 2 * 2 * 1 * 2 * 2 and len({sw.point_key(p) for p in pts}) == len(pts)
    assert {p["strategy"] for p in pts} == {"edgent"} and {p["edge"] for p in pts} == {"desktop_edge"}
    c = sw.Spec.from_dict({"axes": {"models": ["alexnet"]}})
    assert c.points() == [{"model": "alexnet", "soc": "host", "strategy": "codl", "bandwidth": None,
                           "target_ms": None, "mode": "plan", "edge": None, "rtt_ms": None}]


@pytest.mark.parametrize("doc, msg", [
    ({"axes": {"socs": ["host"]}}, "needs models"),
    ({"axes": {"models": ["alexnet"], "colours": [1]}}, "unknown axes"),
    ({"axes": {"models": ["alexnet"], "strategies": ["codl"], "bandwidths": ["1Mbps"]}}, "takes no bandwidth"),
    ({"axes": {"models": ["branchy_lenet"], "strategies": ["edgent"]}}, "needs \\[axes\\] bandwidths"),
    ({"axes": {"models": ["alexnet"], "strategies": ["fastest"]}}, "unknown strategy"),
    ({"axes": {"models": ["alexnet"], "targets_ms": [-5]}}, "targets_ms"),
    ({"axes": {"models": ["alexnet"], "socs": ["pixel9"]}}, "unknown cost profile"),
    ({"axes": {"models": ["alexnet"], "bandwidths": ["fast"], "strategies": ["edgent"]}}, "bandwidth"),
    ({"axes": {"models": ["alexnet"]}, "run": {"mode": "guess"}}, "mode"),
    ({"axes": {"models": ["alexnet"]}, "run": {"rtt_ms": -1}}, "rtt_ms"),
    ({"axes": {"models": []}}, "non-empty"),
    ({"axes": {"models": ["alexnet"]}, "extra": {}}, "unknown table"),
])
def test_spec_errors(doc, msg):
    with pytest.raises(ValueError, match=msg):
        sw.Spec.from_dict(doc)


def test_rows_files_and_resume(tmp_path):
    spec = sw.Spec.from_dict(SPEC)
    out = tmp_path / "r.csv"
    with cf.ThreadPoolExecutor(1) as ex:
        res = sw.run_sweep(spec, ex, str(out), tables=TABLES, progress=False)
    assert res["ran"] == 16 and not res["failed"]
    rows = sw.read_rows(str(out))
    assert [sw.point_key(r) for r in rows] == [sw.point_key(p) for p in spec.points()]
    info = tables.host_info()
    for r in rows:
        assert (r["coinfer"], r["isa"], r["host"]) == (info["coinfer"], info["isa"], info["host"])
        assert r["total_ms"] == pytest.approx(r["device_ms"] + r["edge_ms"] + r["transfer_ms"])
        assert r["met"] == (r["total_ms"] <= r["target_ms"]) and r["costs"].startswith("edgent:")
    # resumable: drop half the rows, run again, get the same file back
    sw.write_rows(str(out), rows[::2])
    with cf.ThreadPoolExecutor(1) as ex:
        res = sw.run_sweep(spec, ex, str(out), tables=TABLES, progress=False)
    assert (res["skipped"], res["ran"]) == (8, 8)
    assert sw.read_rows(str(out)) == rows
    pq = pytest.importorskip("pyarrow.parquet")
    sw.write_rows(str(tmp_path / "r.parquet"), rows)
    assert sw.read_rows(str(tmp_path / "r.parquet")) == rows
    assert pq.read_table(str(tmp_path / "r.parquet")).num_rows == 16


def test_a_local_dask_cluster_gives_the_same_rows(tmp_path):
    dist = pytest.importorskip("dask.distributed")
    spec = sw.Spec.from_dict(SPEC)
    with cf.ThreadPoolExecutor(1) as ex:
        local = sw.run_sweep(spec, ex, str(tmp_path / "a.csv"), tables=TABLES, progress=False)["rows"]
    with dist.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None) as cluster, dist.Client(cluster, timeout="60s") as client:
        ex = client.get_executor()
        got = sw.run_sweep(spec, ex, str(tmp_path / "d.csv"), tables=TABLES, progress=False, timeout=120)
        hosts = {w["host"] for w in client.scheduler_info()["workers"].values()}
    assert hosts == {"127.0.0.1"}
    assert not got["failed"] and got["rows"] == local


def test_cli_reads_cached_tables_and_skips_done_points(tmp_path, monkeypatch, capsys):
    from coinfer.graph.studies.cli import main

    monkeypatch.setenv("COINFER_CACHE_DIR", str(tmp_path / "cache"))
    for m, t in TABLES.items():  # the host's cost tables, as if measured before
        g = branchy_lenet() if m == "branchy_lenet" else branchy_alexnet()
        p = tables._path("edgent", g, t["edgent"]["digest"], None)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(t["edgent"]))
    spec = tmp_path / "s.toml"
    spec.write_text('[axes]\nmodels = ["branchy_lenet"]\nbandwidths = ["1Mbps", "2Mbps"]\ntargets_ms = [50]\n')
    out = tmp_path / "o.csv"
    assert main(["sweep", str(spec), "--scheduler", "local", "--out", str(out), "--quiet"]) == 0
    assert "2 points run" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--scheduler", "local", "--out", str(out), "--quiet"]) == 0
    assert "0 points run, 2 already" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o.txt")]) == 2
    assert ".parquet or .csv" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--scheduler", "yarn", "--out", str(out)]) == 2
    assert "--scheduler" in capsys.readouterr().err


def test_execute_mode_runs_the_plan(tmp_path):
    spec = sw.Spec.from_dict({"axes": {"models": ["branchy_lenet"], "socs": ["raspberry_pi"],
                                       "strategies": ["edge-only"], "bandwidths": ["2Mbps"]},
                              "run": {"mode": "execute", "repeat": 1}})
    with cf.ThreadPoolExecutor(1) as ex:
        res = sw.run_sweep(spec, ex, str(tmp_path / "e.csv"), tables=TABLES, progress=False, timeout=120)
    (row,) = res["rows"]
    assert not res["failed"] and row["mode"] == "execute"
    # edge-only: the transfers are recorded at the link's rate, so the emulated frame holds them
    assert row["measured_ms"] >= row["transfer_ms"] > 0
