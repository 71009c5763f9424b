"""The SoC: explicit data sharing (transform, map, unmap, sync), costs, trace of a real run."""
import json
import threading
import time

import numpy as np
import pytest

from coinfer.hw import Arena, Cost, CostProfile, SoC, SyncTimeout, TaskError
from coinfer.kernels import layout


@pytest.fixture
def soc():
    s = SoC.host()
    yield s
    s.close()


def test_host_soc_shape():
    before = threading.active_count()
    with SoC.host(cpu_threads=2, gpu_threads=1, cpu_cores=(0, 10_000), gpu_cores=(10_001,)) as s:
        assert s.cpu.name == "cpu" and s.cpu.layout == "buffer" and s.cpu.kernels.__name__ == "coinfer.kernels.buffer"
        assert s.gpu.name == "gpu" and s.gpu.layout == "image" and s.gpu.kernels.__name__ == "coinfer.kernels.image"
        assert s.cpu.trace is s.gpu.trace is s.trace
        assert s["cpu"] is s.cpu and s[s.gpu] is s.gpu
        assert threading.active_count() == before + 3
        with pytest.raises(ValueError, match="no processor 'npu'"):
            s["npu"]
    assert threading.active_count() == before
    with SoC.host(gpu_kernels="buffer") as s:
        assert s.gpu.layout == "buffer" and s.gpu.kernels.__name__ == "coinfer.kernels.buffer"


def test_transform_both_ways_records_region_bytes(soc):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6, 8, 5)).astype(np.float32)
    img = np.zeros(layout.image_shape(x.shape), np.float32)
    t1 = soc.transform(x, to="image", out=img, op="conv1", on="gpu")
    buf = np.zeros_like(x)
    t2 = soc.transform(img, to="buffer", out=buf, rows=(2, 6), op="conv1", on="gpu", after=[t1])
    t2.result(timeout=10)
    np.testing.assert_array_equal(img, layout.to_image(x))
    np.testing.assert_array_equal(buf[:, :, 2:6], x[:, :, 2:6])
    assert not buf[:, :, :2].any() and not buf[:, :, 6:].any()
    r1, r2 = soc.trace.tasks
    assert (r1.kind, r1.op, r1.bytes) == ("transform", "conv1", 4 * 6 * 8 * 5)
    assert r2.bytes == 4 * 6 * 4 * 5 and r2.region == {"rows": (2, 6), "channels": (0, 6)}
    assert r2.deps == t1.ids
    with pytest.raises(ValueError, match="out must have shape"):
        soc.transform(x, to="image", out=np.zeros((1, 8, 1, 5, 4), np.float32))
    with pytest.raises(ValueError, match="to must be"):
        soc.transform(x, to="nhwc", out=img)
    with pytest.raises(ValueError, match="rows must satisfy"):
        soc.transform(img, to="buffer", out=buf, rows=(0, 9))


def test_map_unmap_walk_the_region_and_record_bytes(soc):
    x = np.ones((1, 16, 32, 32), np.float32)
    m = soc.map(x[:, :, 8:24], op="conv2", on="gpu")
    u = soc.unmap(x[:, 4:8], op="conv2", on="cpu")
    m.result(timeout=10)
    u.result(timeout=10)
    recs = {r.kind: r for r in soc.trace.tasks}
    # Rows 8..24 of every channel: the walk spans channel 0 row 8 to channel 15 row 23.
    assert recs["map"].bytes == 4 * (15 * 32 * 32 + 16 * 32)
    assert recs["unmap"].bytes == 4 * 4 * 32 * 32
    assert recs["map"].processor == "gpu" and recs["unmap"].processor == "cpu"
    with pytest.raises(TypeError, match="region must be a numpy.ndarray"):
        soc.map([1, 2])


def test_sync_timeout_raises_and_soc_still_works(soc):
    gate = threading.Event()
    g = soc.gpu.submit(gate.wait, 10, op="conv5")
    s = soc.sync([g], on="cpu", op="conv5", timeout=0.05)
    c = soc.cpu.submit(lambda: 1, op="conv5-cpu", after=[s])
    with pytest.raises(SyncTimeout, match=r"cpu: sync 'conv5' timed out after 0.05 s waiting for gpu compute 'conv5'"):
        s.result(timeout=10)
    with pytest.raises(TaskError, match="not run"):
        c.result(timeout=10)
    gate.set()
    g.result(timeout=10)
    s2 = soc.sync(g, on="cpu", op="again")
    assert soc.cpu.submit(lambda: 2, after=[s2]).result(timeout=10) == [2]
    with pytest.raises(ValueError, match="nothing to wait for"):
        soc.sync([], on="cpu")


def test_compute_cannot_skip_the_sync(soc):
    g = soc.gpu.submit(lambda: 1, op="g")
    with pytest.raises(ValueError, match="waiting across processors is a sync"):
        soc.cpu.run("c", lambda: 1, after=[g])


def test_profile_costs_are_realised_and_recorded():
    prof = CostProfile("test", costs={"sync": Cost(0.004), "map": Cost(0.0, 1e-8), "transform": Cost(0.001)})
    with SoC.host(profile=prof) as s:
        assert s.cpu.profile is prof and s.gpu.profile is prof
        x = np.zeros((1, 4, 4, 4), np.float32)
        m = s.map(x, op="m")
        y = s.sync(m, on="cpu", op="s")
        y.result(timeout=10)
        rm, rs = s.trace.tasks
        assert rm.modelled == pytest.approx(1e-8 * 256)
        assert rs.modelled == pytest.approx(0.004)
        # Replay under host strips the realised waits; under the same profile it keeps them.
        assert s.trace.replay("host") < s.trace.replay(prof)
        s.profile = "host"
        s.trace.clear()
        s.sync(s.map(x, op="m"), on="cpu", op="s").result(timeout=10)
        assert all(r.modelled == 0.0 for r in s.trace.tasks)


def _rows_kernel(x, w, out, rows):
    """A small row-wise matmul: real work on a region, written in place."""
    r0, r1 = rows
    np.matmul(x[r0:r1], w, out=out[r0:r1])


def test_real_co_execution_replays_to_its_makespan(tmp_path):
    rng = np.random.default_rng(1)
    h, k = 96, 64
    x = rng.standard_normal((h, k)).astype(np.float32)
    w = rng.standard_normal((k, k)).astype(np.float32)
    y_gpu, y_cpu = np.zeros((h, k), np.float32), np.zeros((h, k), np.float32)
    with Arena([(4 * h * k, 0, 1)]) as arena, SoC.host(arena=arena) as s:
        share = arena.view(0, (h, k))
        r = h // 2
        t0 = time.perf_counter()
        prev = None
        for i in range(6):
            op = f"op{i}"
            cp = s.gpu.submit(np.copyto, share, x, op=op, kind="transform", nbytes=x.nbytes,
                              after=[prev] if prev else [])
            m = s.map(share[r:], op=op, after=[cp])
            g = s.gpu.run(op, _rows_kernel, x, w, y_gpu, rows=(0, r), after=[m])
            sc = s.sync(m, on="cpu", op=op)
            c = s.cpu.run(op, _rows_kernel, share, w, y_cpu, rows=(r, h), after=[sc])
            sg = s.sync(c, on="gpu", op=op)
            prev = s.unmap(y_cpu[r:], op=op, after=[sg, g])
        prev.result(timeout=30)
        wall = time.perf_counter() - t0
        np.testing.assert_allclose(y_gpu[:r], x[:r] @ w, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(y_cpu[r:], x[r:] @ w, rtol=1e-4, atol=1e-4)
        tr = s.trace
        assert len(tr) == 6 * 7
        assert tr.replay("host") == pytest.approx(tr.makespan(), rel=1e-9)
        assert 0 < tr.makespan() <= wall
        assert tr.replay("host", gaps=False) <= tr.replay("host") + 1e-12
        summ = tr.summary()
        assert 0 < summ["sharing_share"] < 1 and summ["count"]["sync"] == 12
        doc = json.loads(json.dumps(tr.to_chrome(tmp_path / "run.json")))
        assert len([e for e in doc["traceEvents"] if e["ph"] == "X"]) == len(tr)
        json.loads((tmp_path / "run.json").read_text())
