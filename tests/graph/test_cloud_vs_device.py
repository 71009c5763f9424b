"""The cloud-vs-device study (Guo 2018) on small inputs: ONNX export, model files and cold loads,
photo groups, the Guo profiles and power model, upload shaping, and one whole run of a tiny model
through every mode (the cloud modes through an edge-server process)."""
import json
import os
import socket
import sys
import threading

import numpy as np
import pytest

from coinfer.graph import onnx as onnx_import
from coinfer.graph import zoo
from coinfer.graph.edge import frames as fr
from coinfer.graph.edge.catalog import graph_digest
from coinfer.graph.edge.shaping import ShapedSocket, TokenBucket
from coinfer.graph.ir import GraphBuilder, fuse_relu
from coinfer.graph.onnx_export import save
from coinfer.graph.studies import cloud_vs_device as cvd
from coinfer.graph.studies import model_files, photos
from coinfer.graph.studies.cli import main as cli_main
from coinfer.hw import Link
from coinfer.hw import power as pw
from coinfer.hw.profile import (GUO_MODEL_FLOPS, GUO_MODEL_MIB, GUO_TABLE_III, HOST_GFLOPS, fit_guo_profile,
                                get_profile, guo_convert_cost)
from coinfer.kernels import reference
from tests.graph.test_edge_shaping import Clock  # a fake clock whose sleeps advance it
from tests.tolerance import assert_close

LINUX = sys.platform.startswith("linux")


def tiny_net():
    """A small 224x224 classifier with the study's op kinds: conv (one grouped), LRN, pools, FC, softmax."""
    rng = np.random.default_rng(7)

    def he(*shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    b = GraphBuilder("tiny_guo", {"data": (1, 3, 224, 224)})
    x = b.add("conv", "conv1", ["data"], params={"w": he(8, 3, 7, 7), "b": np.zeros(8, np.float32)},
              stride=4, padding=3, relu=True)
    x = b.add("lrn", "norm1", [x], size=5, alpha=1e-4, beta=0.75, k=1.0)
    x = b.add("maxpool", "pool1", [x], kernel=3, stride=2, ceil_mode=True)
    x = b.add("conv", "conv2", [x], params={"w": he(16, 4, 3, 3), "b": np.zeros(16, np.float32)},
              padding=1, groups=2, relu=True)
    x = b.add("globalavgpool", "gap", [x])
    x = b.add("flatten", "flatten", [x])
    x = b.add("fc", "fc", [x], params={"w": he(10, 16), "b": np.zeros(10, np.float32)})
    x = b.add("softmax", "prob", [x], axis=1)
    return b.build([x])


def on_tmpfs(path) -> bool:
    try:
        best, fs = "", ""
        with open("/proc/mounts", encoding="ascii") as f:
            for line in f:
                dev, mnt, typ = line.split()[:3]
                if os.path.realpath(path).startswith(mnt) and len(mnt) > len(best):
                    best, fs = mnt, typ
        return fs in ("tmpfs", "ramfs")
    except OSError:
        return True


# -- export, zoo, model files --------------------------------------------------------------------

def test_export_round_trip(tmp_path):
    g = fuse_relu(zoo.build("squeezenet", input_size=29))
    n = save(g, tmp_path / "sq.onnx")
    assert n == os.path.getsize(tmp_path / "sq.onnx")
    assert graph_digest(onnx_import.load(str(tmp_path / "sq.onnx"))) == graph_digest(g)
    t = tiny_net()  # LRN and grouped conv too; ONNX keeps float attributes as float32
    save(t, tmp_path / "t.onnx")
    back = onnx_import.load(str(tmp_path / "t.onnx"))
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    from coinfer.graph import interpret

    assert_close(interpret.run(back, x), interpret.run(t, x, reference))


def test_bvlc_alexnet_and_flops():
    a = zoo.bvlc_alexnet(weights=False, input_size=224)
    assert a.num_params() == 60_965_224
    assert [op.attrs["groups"] for op in a.ops if op.type == "conv"] == [1, 2, 1, 2, 2]
    assert a.total_flops() == GUO_MODEL_FLOPS["alexnet"]
    for m in ("nin", "squeezenet"):
        assert zoo.build(m, input_size=224, weights=False).total_flops() == GUO_MODEL_FLOPS[m]


def test_model_file_written_once_reused_and_rewritten_when_corrupt(tmp_path):
    build = tiny_net
    f = model_files.ensure("tiny", str(tmp_path), build=build, stem="tiny-guo")
    assert f.written and f.nbytes == os.path.getsize(f.path) and f.path.startswith(str(tmp_path))
    again = model_files.ensure("tiny", str(tmp_path), build=build, stem="tiny-guo")
    assert not again.written and again.sha256 == f.sha256
    with open(f.path, "r+b") as fh:  # flip one byte: same size, other content
        fh.seek(f.nbytes // 2)
        b = fh.read(1)
        fh.seek(f.nbytes // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    fixed = model_files.ensure("tiny", str(tmp_path), build=build, stem="tiny-guo")
    assert fixed.written and fixed.sha256 == f.sha256
    with open(f.path, "ab") as fh:  # a longer file
        fh.write(b"x")
    assert model_files.ensure("tiny", str(tmp_path), build=build, stem="tiny-guo").written
    os.remove(f.path + ".json")  # no sidecar: never trusted
    assert model_files.ensure("tiny", str(tmp_path), build=build, stem="tiny-guo").written
    with pytest.raises(ValueError, match="unknown model"):
        model_files.ensure("vgg", str(tmp_path))


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("COINFER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert model_files.default_cache_dir() == os.path.join("/x/cache", "coinfer")
    monkeypatch.setenv("COINFER_CACHE_DIR", "/y")
    assert model_files.default_cache_dir() == "/y"


@pytest.mark.skipif(not LINUX or not hasattr(os, "posix_fadvise"), reason="posix_fadvise and /proc/self/io")
def test_cold_load_reads_the_file_warm_load_does_not(tmp_path):
    if on_tmpfs(tmp_path) or model_files.storage_read_bytes() is None:
        pytest.skip("no storage under the test folder, or no /proc/self/io")
    g = zoo.build("squeezenet", input_size=29)  # 5 MB of weights
    path = str(tmp_path / "sq.onnx")
    n = save(g, path)
    graph, cold = model_files.load(path, "buffer", cold=True)
    assert cold.cold and cold.nbytes == n and cold.storage_bytes >= n
    _, warm = model_files.load(path, "buffer")
    assert warm.storage_bytes < n // 10
    _, img = model_files.load(path, "image", cold=True)
    assert img.storage_bytes >= n and img.layout == "image"
    assert graph_digest(graph) == graph_digest(fuse_relu(g))
    for t in (cold, warm, img):
        assert min(t.read, t.parse, t.prepare) >= 0 and t.total == t.read + t.parse + t.prepare
    with pytest.raises(ValueError, match="layout"):
        model_files.load(path, "texture")


def test_prepare_weights_per_layout():
    t = tiny_net()
    w = model_files.prepare_weights(t, "image")
    assert w["conv2"]["w"] is not None  # the grouped conv gets its buffer weights
    assert set(w) == {op.name for op in t.ops}


# -- photos ------------------------------------------------------------------------------------------

def test_photo_groups_have_the_right_sizes():
    if len(photos.available()) < 1:
        pytest.skip("no photo package installed")
    ps = photos.prepare(1)
    assert [(p.group, p.height, p.width) for p in ps] == [(1, 2160, 3840), (2, 1080, 1920), (3, 540, 960)]
    for p in ps:
        rgb = photos.decode(p.jpeg)
        assert rgb.shape == (p.height, p.width, 3) and rgb.dtype == np.uint8 and p.upscaled
        assert p.jpeg[:2] == b"\xff\xd8"  # a JPEG
    x = photos.to_input(photos.decode(ps[2].jpeg))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    rgb = photos.decode(ps[2].jpeg)
    ref = reference.resize(rgb.transpose(2, 0, 1)[None].astype(np.float64) / 255.0, (224, 224), mode="area")
    assert_close(x, ref)
    with pytest.raises(ValueError, match="n must be"):
        photos.prepare(0)
    with pytest.raises(ValueError, match="uint8"):
        photos.to_input(np.zeros((4, 4, 3), np.float32))


# -- profiles, power, shaping ---------------------------------------------------------------------------

def test_guo_profiles_reproduce_table_iii_through_scale_and_cost():
    mean_bytes = np.mean(list(GUO_MODEL_MIB.values())) * 2**20
    for name, row in GUO_TABLE_III.items():
        p = get_profile(name)
        for proc in ("cpu", "gpu", "edge"):  # device time of each model = its host time x scale
            ms = np.mean([f / (HOST_GFLOPS * 1e9) * p.scale(proc) for f in GUO_MODEL_FLOPS.values()]) * 1e3
            assert ms == pytest.approx(row["compute"])
        assert 1e3 * p.cost("load", int(mean_bytes)) == pytest.approx(row["load"], rel=1e-6)
        assert p.calibrated(2 * HOST_GFLOPS).scale("cpu") == pytest.approx(2 * p.scale("cpu"))
    conv = 1e3 * guo_convert_cost(int(mean_bytes))
    assert conv == pytest.approx(GUO_TABLE_III["nexus5_gpu"]["load"] - GUO_TABLE_III["nexus5_cpu"]["load"], rel=1e-6)
    assert get_profile("cloud_gpu").scale("x") < get_profile("cloud_cpu").scale("x")
    with pytest.raises(ValueError, match="unknown Guo mode"):
        fit_guo_profile("pixel")
    # CNNDroid's load also meets Guo's "up to 88 s" at the largest file (AlexNet's 233 MiB).
    top = int(max(GUO_MODEL_MIB.values()) * 2**20)
    assert 1e3 * get_profile("nexus5_gpu").cost("load", top) == pytest.approx(88000.0, rel=1e-6)
    with pytest.raises(ValueError, match="largest load must exceed"):
        fit_guo_profile("nexus5_gpu", max_load={"nexus5_gpu": 1000.0})


def test_power_model():
    wifi = pw.RADIOS["wifi"]
    assert wifi.transfer_power(10e6) == pytest.approx(10 * 0.28317 + 0.13286)
    # energy = alpha_up x Mbit sent + (beta + base) x seconds, whatever the rate
    e = pw.upload_energy(1_000_000, 0.5, wifi)
    assert e == pytest.approx(0.28317 * 8 + (0.13286 + pw.NEXUS5.base_w) * 0.5)
    assert pw.upload_energy(0, 0.0, wifi) == 0.0
    n5 = pw.NEXUS5
    assert pw.stage_power("compute", "device-cpu", wifi) == pytest.approx(n5.base_w + n5.cores * n5.core_w)
    assert pw.stage_power("compute", "cloud-gpu", wifi) == pytest.approx(n5.base_w + wifi.beta)
    assert pw.stage_power("compute", "device-gpu", wifi) > pw.stage_power("rescale", "device-gpu", wifi)
    with pytest.raises(ValueError):
        pw.stage_power("upload", "cloud-cpu", wifi)
    with pytest.raises(ValueError):
        pw.stage_power("compute", "edge", wifi)


@pytest.mark.parametrize("bps", [cvd.DEFAULT_UPLINK_BPS, cvd.DEFAULT_UPLINK_BPS / 2, 20e6])
def test_upload_time_follows_the_uplink(bps):
    """The study's upload (a RUN frame, then the input TENSOR frame) through the client's shaped
    socket, on a fake clock: it takes 8 x UPLOAD_BYTES / uplink, so halving the uplink doubles it;
    the default uplink gives Guo's 36.83 ms."""
    c = Clock()
    a, b = socket.socketpair()
    got = []

    def drain():
        while True:
            k = b.recv(1 << 16)
            if not k:
                return
            got.append(len(k))

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    try:
        up = TokenBucket(Link(bps), clock=c, sleep=c.sleep, origin=c.t)
        s = ShapedSocket(a, up, None)
        t0 = c.t
        up.begin()
        fr.write_frame(s, fr.Kind.RUN, 1, None, (0, 0, 5))
        up.propagate()
        fr.write_frame(s, fr.Kind.TENSOR, 1, np.zeros((1, 3, 224, 224), np.float32), (0,))
        up.end()
        assert s.sent == cvd.UPLOAD_BYTES
        assert c.t - t0 == pytest.approx(8 * cvd.UPLOAD_BYTES / bps, abs=1e-5)  # +1 us per zero-length fake sleep
        if bps == cvd.DEFAULT_UPLINK_BPS:
            assert (c.t - t0) * 1e3 == pytest.approx(36.83, abs=1e-2)
    finally:
        a.close()
        th.join(5)
        b.close()
    assert sum(got) == cvd.UPLOAD_BYTES


# -- the study end to end --------------------------------------------------------------------------------

@pytest.mark.skipif(not LINUX, reason="posix_fadvise, the edge server subprocess")
def test_study_on_a_tiny_model(tmp_path):
    if len(photos.available()) < 1:
        pytest.skip("no photo package installed")
    bps = 80e6
    cfg = cvd.Config(models=("tiny",), photos=1, groups=(3, 2), uplink_bps=bps, cache_dir=str(tmp_path),
                     load_repeats=1, progress=False, model_specs={"tiny": ("tiny-guo", tiny_net)})
    res = cvd.run(cfg)
    assert [(r.photo_group, r.mode) for r in res.rows] == [(g, m) for g in (3, 2) for m in cvd.MODES]
    for r in res.rows:
        j = r.as_json()
        assert {"model", "photo_group", "mode", "load_ms", "load_cold_ms", "rescale_ms", "decode_ms", "upload_ms",
                "compute_ms", "total_ms", "energy_j"} <= set(j)
        # stage accounting: the four stages sum to the total
        assert j["total_ms"] == pytest.approx(j["load_cold_ms"] + j["rescale_ms"] + j["upload_ms"] + j["compute_ms"])
        assert 0 < j["decode_ms"] < j["rescale_ms"] and j["compute_ms"] > 0 and j["energy_j"] > 0
        if r.mode.startswith("cloud"):
            assert j["load_ms"] == j["load_cold_ms"] == 0
            assert j["upload_ms"] >= 0.999 * 8e3 * cvd.UPLOAD_BYTES / bps  # the shaper never sends faster
        else:
            assert j["upload_ms"] == 0
            size = res.meta["files"]["tiny"]["bytes"]
            assert j["load_cold_ms"] >= 1e3 * get_profile(cvd.MODE_PROFILE[r.mode]).cost("load", size)
    gpu = [r for r in res.rows if r.mode == "device-gpu"][0]
    assert gpu.convert_ms == pytest.approx(1e3 * guo_convert_cost(res.meta["files"]["tiny"]["bytes"]))
    # the server's answers (cloud modes) and the device runs equal the local single-process run
    assert res.meta["max_abs_err_vs_local"] <= 1e-5
    doc = json.loads(json.dumps(res.as_json()))
    assert len(doc["rows"]) == 8 and "compute_vs_table_iii" in doc["findings"]
    assert doc["meta"]["photos_upscaled"] is True
    text = cvd.format_table(res)
    assert "UPSCALED" in text and "Findings" in text
    pytest.importorskip("matplotlib")
    assert os.path.getsize(cvd.plot(res, str(tmp_path / "plot"))) > 0


def test_cli_rejects_bad_arguments(capsys):
    assert cli_main(["cloud-vs-device", "--modes", "cloud-tpu", "--quiet"]) == 2
    assert "--modes" in capsys.readouterr().err
    assert cli_main(["cloud-vs-device", "--models", "vgg16", "--quiet"]) == 2
    assert cli_main(["cloud-vs-device", "--uplink", "fast", "--quiet"]) == 2
