"""The latency dataset, the predictors, their JSON, the cost source over them, emulated SoCs."""
import json

import numpy as np
import pytest

from coinfer.graph import zoo
from coinfer.graph.coexec.strategies import plan_codl
from coinfer.graph.coexec.view import view_of
from coinfer.graph.costs import features as F
from coinfer.graph.costs import predictor as P
from coinfer.graph.costs import sampling as S
from coinfer.graph.costs.dataset import FIELDS, VERSION, Dataset
from coinfer.graph.costs.emulated import EmulatedCosts
from coinfer.graph.ir import fuse_relu
from coinfer.graph.studies.cli import main
from coinfer.hw import calibration, host
from coinfer.hw.profile import CostProfile, get_profile


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COINFER_CACHE_DIR", str(tmp_path / "cache"))


def _conv_desc(**kw):
    d = S._base("conv", c=64, h=56, w=56, oc=48, oh=56, ow=56, kh=3, kw=3, pt=1, pl=1, pb=1, pr=1)
    d.update(kw)
    return d


def test_describe_and_build_round_trip():
    g = fuse_relu(zoo.build("squeezenet", input_size=35, weights=False))
    for op in view_of(g).ops:
        d = S.describe(op)
        if d["type"] not in S.SAMPLED_TYPES:
            continue
        (op2,) = view_of(S.build(d)).ops
        assert S.describe(op2) == d


def test_sampling_is_reproducible_and_bounded():
    zoo_d = S.zoo_descriptions(("squeezenet",))
    a = [s["desc"] for s in S.sample(25, 3, zoo=zoo_d)]
    b = [s["desc"] for s in S.sample(25, 3, zoo=zoo_d)]
    assert a == b and len({d["type"] for d in a}) >= 3
    for s in S.sample(25, 4, zoo=zoo_d):
        assert S.fits_budget(s["graph"])
        r = s["region"]
        assert 0 <= r[0] < r[1] and 0 <= r[2] < r[3]


def test_conv_tile_counts_follow_the_kernels():
    d = _conv_desc()
    k = 64 * 9
    # AVX-512: 48 channels = one 32-channel (8-pixel) pass and one 16-channel (12-pixel) pass.
    f = F._conv_tiles(d, (0, 56, 0, 48), "buffer", "avx512")
    assert f["wide_steps"] == -(-56 * 56 // 8) * k and f["narrow_steps"] == -(-56 * 56 // 12) * k
    # AVX2: three 6x16 passes; a partial last pixel tile is a whole tile.
    f = F._conv_tiles(d, (0, 7, 0, 48), "buffer", "avx2")
    assert f["wide_steps"] == 0 and f["narrow_steps"] == 3 * -(-7 * 56 // 6) * k
    # Image: channel blocks [4, 8) lie in the first 16-channel group only.
    f = F._conv_tiles(d, (0, 56, 4, 8), "image", "avx512")
    assert f["wide_steps"] == 0 and f["narrow_steps"] == -(-56 * 56 // 12) * k
    assert F._conv_tiles(_conv_desc(kh=1, kw=1, pt=0, pl=0, pb=0, pr=0), (0, 56, 0, 48), "buffer",
                         "avx512")["planes"] == 0  # a 1x1 stride-1 conv reads its input in place


def _synthetic(n=120, seed=0):
    """Op rows whose time follows a known law in the codl features, and sharing rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        c, oc, side = int(rng.integers(8, 128)), int(rng.integers(8, 128)), int(rng.integers(7, 40))
        d = _conv_desc(c=c, oc=oc, h=side, w=side, oh=side, ow=side)
        r0 = int(rng.integers(0, side // 2))
        for proc, lay in P.PROCESSORS.items():
            f = F.codl(d, (r0, side, 0, oc), lay, "avx512")[1]
            t = 2e-5 + 5e-9 * (f["wide_steps"] + f["narrow_steps"]) + 1e-7 * f["tiles"]
            for mode in P.MODES:
                rows.append({"kind": "op", **d, "split": "H", "r0": r0, "r1": side, "c0": 0, "c1": oc,
                             "processor": proc, "layout": lay, "mode": mode, "bytes": 0,
                             "seconds": t * 1.05, "min_seconds": t})
    for b in (1 << 12, 1 << 16, 1 << 20):
        for kind in P.SHARING:
            rows.append({"kind": kind, "processor": "gpu", "bytes": b, "seconds": 1e-6 + b * 1e-11,
                         "min_seconds": 1e-6 + b * 1e-11})
    rows += [{"kind": "sync", "processor": "cpu", "seconds": 5e-5, "min_seconds": 5e-5},
             {"kind": "dispatch", "processor": "cpu", "seconds": 1e-5, "min_seconds": 1e-5},
             {"kind": "dispatch", "processor": "gpu", "seconds": 1e-5, "min_seconds": 1e-5}]
    return Dataset(rows, {"isa": "avx512", "cpu": "test", "clock_ghz": 3.0})


def test_dataset_csv_round_trip(tmp_path):
    ds = _synthetic(10)
    p = ds.save(tmp_path / "d.csv")
    text = p.read_text()
    assert text.startswith("# coinfer latency dataset") and "# isa: avx512" in text
    back = Dataset.load(p)
    assert back.meta["isa"] == "avx512" and back.meta["clock_ghz"] == 3.0
    assert len(back.rows) == len(ds.rows)
    a, b = ds.ops("gpu", "alone")[3], back.ops("gpu", "alone")[3]
    assert {k: a.get(k) for k in FIELDS if k in a} == {k: b[k] for k in FIELDS if k in a}
    p.write_text(text.replace(f"# version: {VERSION}", "# version: 99"))
    with pytest.raises(ValueError, match="version"):
        Dataset.load(p)


def test_split_keeps_instances_together():
    tr, te = _synthetic(40).split(0.3, seed=1)
    keys = lambda d: {F.family(r) + str([r[k] for k in ("c", "oc", "h", "r0")]) for r in d.ops()}  # noqa: E731
    assert not keys(tr) & keys(te) and te.ops() and tr.sharing("map") and te.sharing("map")


@pytest.mark.parametrize("method", P.METHODS)
def test_every_method_fits_saves_and_loads(method, tmp_path):
    pytest.importorskip("sklearn") if method == "forest" else None
    ds = _synthetic()
    tr, te = ds.split(0.3)
    p = P.fit(method, tr)
    size = p.save(tmp_path / "m.json")
    assert size == len((tmp_path / "m.json").read_bytes()) and p.model_bytes("cpu") > 0
    q = P.Predictor.load(tmp_path / "m.json")
    for r in te.ops("gpu", "alone")[:5]:
        reg = P._region(r)
        assert q.op_seconds(r, reg, "gpu") == pytest.approx(p.op_seconds(r, reg, "gpu"), rel=1e-5)
    if method == "codl":  # the law is linear in codl's features: fitted exactly
        assert P.score(P.op_errors(p, te, "cpu"))["within_10pct"] == 1.0
        assert p.model_bytes("cpu") < 10_000
    with pytest.raises(ValueError, match="not a coinfer predictor"):
        P.Predictor.from_json({"format": "x"})


def test_score():
    s = P.score([0.0, 0.1, -0.05, 0.5])
    assert s["within_10pct"] == 0.75 and s["rmspe"] == pytest.approx(np.sqrt((0.01 + 0.0025 + 0.25) / 4))


def test_predicted_costs_plan_codl_and_refinement():
    pred = P.fit("codl", _synthetic())
    g = fuse_relu(zoo.build("squeezenet", input_size=35, weights=False))
    view = view_of(g)
    costs = P.PredictedCosts(pred, view)
    conv = next(op for op in view.ops if op.type == "conv")
    full = (0, conv.out_rows, 0, conv.out_channels)
    t = costs.compute(conv, "cpu", full)
    assert t > 0 and costs.compute(conv, "gpu_buffer", full) == pytest.approx(t)
    assert costs.transform(1 << 20) > costs.transform(1 << 10) > 0 and costs.sync() > 0
    step = costs.gaps["step"]
    costs.observe(conv, "cpu", full, 2 * (t - step), weight=1.0)
    assert costs.compute(conv, "cpu", full) == pytest.approx(2 * t - step)
    plan = plan_codl(g, pred)  # a predictor, no measuring pass
    assert plan.predicted_s > 0 and plan.notes["chosen_by"] == "prediction"


def test_emulated_costs_follow_the_profile():
    pred = P.fit("codl", _synthetic())
    g = fuse_relu(zoo.build("squeezenet", input_size=35, weights=False))
    view = view_of(g)
    base = P.PredictedCosts(pred, view)
    sd = get_profile("snapdragon855")
    em = EmulatedCosts(base, sd)
    conv = next(op for op in view.ops if op.type == "conv")
    full = (0, conv.out_rows, 0, conv.out_channels)
    assert em.compute(conv, "gpu", full) == pytest.approx(base.compute(conv, "gpu", full) * sd.scale("gpu"))
    # The GPU on buffers pays CoDL's 3.5x for conv.
    assert em.compute(conv, "gpu_buffer", full) == pytest.approx(
        base.compute(conv, "gpu_buffer", full) * sd.scale("gpu") * 3.5)
    assert em.sync() == pytest.approx(base.sync() + sd.cost("sync"))
    assert em.map(1000) == pytest.approx(base.map(1000) + sd.cost("map", 1000)) and em.map(0) == 0.0


def test_profile_scales_by_layout_op_class_and_host():
    sd = get_profile("snapdragon855")
    assert sd.scale("gpu", "buffer", "conv") == pytest.approx(3.5 * sd.scale("gpu"))
    assert sd.scale("gpu", "buffer", "pool") == pytest.approx(sd.scale("gpu"))
    assert sd.scale("gpu") == sd.scale("gpu", "image", "conv")
    slow = calibration.HostSpeed({lay: {c: 2 * s for c, s in d.items()} for lay, d in calibration.REFERENCE.items()})
    assert sd.calibrated(slow).scale("cpu", None, "fc") == pytest.approx(sd.scale("cpu") / 2)
    assert get_profile("host").calibrated(slow).scale("gpu", "buffer", "conv") == 1.0
    assert calibration.HostSpeed.from_json(json.loads(json.dumps(slow.to_json()))).factor("image", "lrn") == 0.5
    with pytest.raises(ValueError, match="layouts"):
        CostProfile("bad", layouts={"gpu": {"texture": 2.0}})


def test_host_cache_finds_a_nearby_clock():
    hid = host.HostId("avx2", "haswell", 3.0)
    p = host.cache_path("calibration", hid, ".json", "v1")
    p.write_text("{}")
    assert host.find_cached("calibration", host.HostId("avx2", "haswell", 3.1), ".json", "v1") == p
    assert host.find_cached("calibration", host.HostId("avx2", "haswell", 3.5), ".json", "v1") is None
    assert host.find_cached("calibration", host.HostId("avx512", "haswell", 3.0), ".json", "v1") is None


def test_predict_cli_json(capsys):
    assert main(["predict", "--samples", "12", "--models", "", "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["soc"] == "host" and doc["isa"] in ("avx512", "avx2", "generic") and doc["models"] == []
    names = {(m["name"], m["processor"]) for m in doc["methods"]}
    assert ("codl", "cpu") in names and ("flops", "gpu") in names
    for m in doc["methods"]:
        assert {"name", "processor", "within_10pct", "rmspe", "model_bytes"} <= set(m)
    # The dataset is cached per host: a second run measures nothing.
    assert main(["predict", "--samples", "12", "--models", "", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"]["measured_now"] is False


def test_run_on_an_emulated_soc_json(capsys):
    assert main(["run", "squeezenet", "--input-size", "35", "--strategy", "gpu", "--repeat", "1", "--soc",
                 "snapdragon855", "--json", "--quiet"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["strategies"]
    assert s["emulated_ms"] > 0 and s["emulated_ms"] != s["replay_ms"]
    assert main(["run", "squeezenet", "--input-size", "35", "--strategy", "gpu", "--repeat", "1", "--json",
                 "--quiet"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["strategies"]
    assert s["emulated_ms"] == s["replay_ms"]


def test_timeline_prices_the_compiled_program_and_reads_gaps_from_a_trace():
    from coinfer.graph.coexec import timeline
    from coinfer.graph.coexec.executor import Executor
    from coinfer.graph.coexec.strategies import plan_single, sample_input
    from coinfer.graph.costs.dataset import trace_plans
    from coinfer.hw import SoC

    pred = P.fit("codl", _synthetic())
    g = fuse_relu(zoo.build("squeezenet", input_size=35, weights=False))
    view = view_of(g)
    costs = P.PredictedCosts(pred, view)
    cpu = plan_single(g, "cpu", view=view)
    tl = timeline.predict(g, cpu, costs, view=view)
    kernels = sum(costs.kernel_seconds(op, "cpu", (0, op.out_rows, 0, op.out_channels)) for op in view.ops)
    assert tl.compute_s["cpu"] == pytest.approx(kernels) and tl.compute_s["gpu"] == 0.0
    assert tl.total_s > kernels and tl.dispatch_s > 0 and tl.sharing_s == 0.0
    half = trace_plans(g, view)["half"]  # channel-splittable ops half and half
    th = timeline.predict(g, half, costs, view=view)
    assert th.compute_s["gpu"] > 0 and th.sharing_s > 0
    with SoC.host() as soc, Executor(g, half, soc) as ex:
        ex.run(sample_input(g))
        gaps = timeline.trace_gaps(soc.trace)
    assert set(timeline.PATHS) <= set(gaps) and gaps["main_wake"] and gaps["host_in"]
    assert all(v >= -1e-6 for p in timeline.PATHS for v in gaps[p] if p != "submit")


def test_gaps_are_fitted_on_the_runtime_that_runs():
    ds = _synthetic(4)
    for runtime, wake in (("native", 1e-6), ("python", 5e-5)):
        ds.rows += [{"kind": "gap", "mode": "wake", "split": runtime, "bytes": 10, "seconds": wake,
                     "min_seconds": wake, "model": f"alexnet/{runtime}"}]
    assert P.fit_gaps(ds)[0]["wake"] == pytest.approx(1e-6)
    assert P.fit_gaps(ds, runtime="python")[0]["wake"] == pytest.approx(5e-5)
    with pytest.raises(ValueError, match="runtime"):
        P.fit_gaps(ds, runtime="gpu")


def test_native_steps_time_an_op_in_c():
    from coinfer.graph.costs import dataset as D
    from coinfer.hw import SoC

    s = next(iter(S.sample(1, 0, zoo=[])))
    sop = D._Op(s["graph"], s["region"])
    call = sop.native("buffer")
    assert call is not None
    with SoC.host() as soc:
        times = D.native_steps(soc, {"cpu": (call, 4)})["cpu"]
        both = D._native_timing(soc, {"cpu": (call, 6), "gpu": (call, 6)})
    assert times.shape == (4, 2) and (times[:, 1] >= times[:, 0]).all() and (times[1:, 0] >= times[:-1, 1]).all()
    assert set(both) == {"cpu", "gpu"} and all(0 < len(t.samples) <= 5 for t in both.values())


def test_eltwise_kernels_and_concat_lanes():
    d = S._base("concat", c=10, h=8, w=8, oc=10, oh=8, ow=8, inputs=2)
    fam, f = F.codl(d, (0, 8, 0, 10), "image", "avx512")
    # 5 + 5 channels: the first input's last texel holds 1, the second starts at channel 5 (all 5 lane by lane)
    assert fam == "eltwise_concat" and f["lanes"] == 8 * 8 * (1 + 5)
    d4 = S._base("concat", c=16, h=8, w=8, oc=16, oh=8, ow=8, inputs=2)
    assert F.codl(d4, (0, 8, 0, 16), "image", "avx512")[1]["lanes"] == 0
    relu = S._base("relu", c=8, h=4, w=4, oc=8, oh=4, ow=4, inputs=1)
    assert F.codl(relu, (0, 4, 0, 8), "buffer", "avx512")[1]["runs"] == 1  # whole: one run
    assert F.codl(relu, (1, 3, 0, 8), "buffer", "avx512")[1]["runs"] == 8  # a band: one per plane
