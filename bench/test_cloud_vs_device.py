"""Cloud-based vs on-device inference (Guo 2018): the Table III study and the uplink check.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 -m pytest bench/test_cloud_vs_device.py --benchmark-only -s

The first test runs ``coinfer cloud-vs-device`` as it is by default (AlexNet,
NIN and SqueezeNet; 5 photos in each of Guo's three groups; the four modes;
the default uplink), writing the model files (about 270 MB) into the cache
directory the first time, and prints the table, the findings and the stacked
bar figure's path (``bench/out/cloud_vs_device.png``).  The second uploads
SqueezeNet's inputs to the cloud GPU at the default uplink and at half of it
and prints how much longer the upload took.
"""
import os

import numpy as np

from coinfer.graph.studies import cloud_vs_device as cvd

OUT = os.path.join(os.path.dirname(__file__), "out")
LINES: dict = {}


def test_table_iii(benchmark, study_table):
    study_table("Cloud vs device (Guo 2018, Table III)", lambda: LINES.get("table", []))
    res = {}

    def run():
        res["r"] = cvd.run(cvd.Config(progress=False))

    benchmark.pedantic(run, rounds=1, iterations=1)
    r = res["r"]
    LINES["table"] = cvd.format_table(r).splitlines() + [f"plot: {cvd.plot(r, OUT)}"]
    benchmark.extra_info.update(r.as_json())
    assert len(r.rows) == 3 * 3 * 4
    f = r.findings
    for m in ("alexnet", "nin"):
        for dm in ("device-cpu", "device-gpu"):
            assert f["per_model"][m][f"{dm}_over_cloud_gpu_with_load"] >= 10
    for v in f["compute_vs_table_iii"].values():
        assert abs(v["ratio"] - 1) <= 0.2
    assert r.loads[("alexnet", "buffer")]["cold"].total > r.loads[("squeezenet", "buffer")]["cold"].total


def test_half_uplink(benchmark, study_table):
    study_table("Cloud vs device: upload at the default uplink and at half of it",
                lambda: LINES.get("uplink", []))
    up = {}

    def run():
        for bps in (cvd.DEFAULT_UPLINK_BPS, cvd.DEFAULT_UPLINK_BPS / 2):
            r = cvd.run(cvd.Config(models=("squeezenet",), modes=("cloud-gpu",), uplink_bps=bps,
                                   load_repeats=1, progress=False))
            up[bps] = float(np.mean([row.upload_ms for row in r.rows]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    full, half = up[cvd.DEFAULT_UPLINK_BPS], up[cvd.DEFAULT_UPLINK_BPS / 2]
    LINES["uplink"] = [f"uplink {cvd.DEFAULT_UPLINK_BPS / 1e6:.1f} Mbit/s: upload {full:.2f} ms; "
                       f"{cvd.DEFAULT_UPLINK_BPS / 2e6:.1f} Mbit/s: {half:.2f} ms; ratio {half / full:.3f} "
                       f"(ideal {8 * cvd.UPLOAD_BYTES / cvd.DEFAULT_UPLINK_BPS * 1e3:.2f} and "
                       f"{16 * cvd.UPLOAD_BYTES / cvd.DEFAULT_UPLINK_BPS * 1e3:.2f} ms)"]
    benchmark.extra_info.update({"upload_ms": full, "upload_half_ms": half, "ratio": half / full})
    assert 1.8 <= half / full <= 2.2
