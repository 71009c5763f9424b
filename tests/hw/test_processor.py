"""Processor pools: tiles, pinning, failures, dependencies, shutdown."""
import os
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.hw import Processor, SyncTimeout, Task, TaskError, Trace, split_range

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _double_rows(x, out, rows):
    out[rows[0]:rows[1]] = 2 * x[rows[0]:rows[1]]
    return rows, threading.current_thread().name


@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 6), st.sampled_from([1, 4]))
def test_split_range_covers_the_region(a, n, parts, multiple):
    r0, r1 = (a // multiple) * multiple, (a // multiple) * multiple + n
    tiles = split_range(r0, r1, parts, multiple)
    assert len(tiles) <= parts
    if n == 0:
        assert tiles == []
        return
    assert tiles[0][0] == r0 and tiles[-1][1] == r1
    for (a0, a1), (b0, b1) in zip(tiles, tiles[1:]):
        assert a1 == b0
    for t0, t1 in tiles:
        assert t0 < t1 and t0 % multiple == 0


def test_pool_runs_tiles_on_its_threads():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    out = np.zeros_like(x)
    with Processor("cpu", "buffer", None, cores=(0, 1), threads=2) as p:
        task = p.run("double", _double_rows, x, out, rows=(0, 10))
        res = task.result(timeout=10)
        assert [r for r, _ in res] == [(0, 5), (5, 10)]
        assert {name for _, name in res} == {"coinfer-cpu-0", "coinfer-cpu-1"}
        np.testing.assert_array_equal(out, 2 * x)
        recs = p.trace.tasks
        assert sorted(r.thread for r in recs) == [0, 1]
        assert {r.region["rows"] for r in recs} == {(0, 5), (5, 10)}
        assert all(r.kind == "compute" and r.op == "double" for r in recs)
        assert len(task.ids) == 2


def test_image_channel_tiles_are_texel_aligned():
    seen = []
    with Processor("gpu", "image", None, cores=(0,), threads=3) as p:
        p.run("c", lambda channels: seen.append(channels), channels=(0, 20)).result(timeout=10)
        seen.clear()
        p.run("c", lambda channels, rows: seen.append((channels, rows)), channels=(0, 20), rows=(2, 3), split="channels").result(timeout=10)
    assert sorted(seen) == [((0, 4), (2, 3)), ((4, 12), (2, 3)), ((12, 20), (2, 3))]


def test_threads_are_pinned():
    with Processor("cpu", "buffer", None, cores=tuple(ALLOWED) or (0,), threads=max(1, len(ALLOWED))) as p:
        res = p.submit(lambda: os.sched_getaffinity(0), tiles=[{}] * p.threads).result(timeout=10)
        for k, aff in enumerate(res):
            assert aff == {p.cores[k % len(p.cores)]}
            assert p.affinity[k] == {p.cores[k % len(p.cores)]}


def test_unavailable_core_falls_back():
    with Processor("cpu", "buffer", None, cores=(10_000,)) as p:
        assert p.requested_cores == [10_000]
        assert p.cores[0] in ALLOWED
        assert p.submit(lambda: 1).result(timeout=10) == [1]


def test_failure_names_op_and_processor_then_pool_still_works():
    def boom(rows):
        raise ValueError(f"bad rows {rows}")

    with Processor("gpu", "image", None, cores=(0,), threads=2) as p:
        t = p.run("conv3", boom, rows=(0, 8))
        with pytest.raises(TaskError, match=r"gpu: op 'conv3' failed: ValueError: bad rows") as ei:
            t.result(timeout=10)
        assert isinstance(ei.value.__cause__, ValueError)
        assert ei.value.processor == "gpu" and ei.value.op == "conv3"
        assert isinstance(t.exception(timeout=1), TaskError)
        dependent = p.submit(lambda: 1, op="conv4", after=[t])
        with pytest.raises(TaskError, match=r"op 'conv4' not run: it depends on gpu op 'conv3'"):
            dependent.result(timeout=10)
        assert p.submit(lambda: 42).result(timeout=10) == [42]
        assert any(r.error for r in p.trace.tasks)


def test_dependencies_order_work_across_threads():
    order = []
    with Processor("cpu", "buffer", None, cores=(0,), threads=2) as p:
        gate = threading.Event()
        a = p.submit(lambda: (gate.wait(10), order.append("a")), op="a", thread=0)
        b = p.submit(lambda: order.append("b"), op="b", thread=1, after=[a])
        gate.set()
        b.result(timeout=10)
        assert order == ["a", "b"]
        rec_b = [r for r in p.trace.tasks if r.op == "b"][0]
        assert rec_b.deps == a.ids


def test_empty_region_stands_for_its_dependencies():
    with Processor("cpu", "buffer", None, cores=(0,)) as p:
        a = p.submit(lambda: 1, op="a")
        e = p.run("empty", _double_rows, None, None, rows=(4, 4), after=[a])
        assert e.result(timeout=10) == []
        assert e.ids == a.ids
        c = p.submit(lambda: 2, op="c", after=[e])
        c.result(timeout=10)
        assert [r.op for r in p.trace.tasks] == ["a", "c"]
        assert p.trace.tasks[1].deps == a.ids


def test_cross_processor_dependency_must_be_a_sync():
    trace = Trace()
    with Processor("cpu", "buffer", None, cores=(0,), trace=trace) as cpu, \
            Processor("gpu", "image", None, cores=(0,), trace=trace) as gpu:
        g = gpu.submit(lambda: 1, op="g")
        with pytest.raises(ValueError, match="cannot wait on gpu task 'g' directly"):
            cpu.submit(lambda: 2, op="c", after=[g])
        s = cpu.submit(None, op="s", kind="sync", after=[g], timeout=10)
        assert s.result(timeout=10) == [None]
        assert trace.tasks[-1].kind == "sync" and trace.tasks[-1].deps == g.ids
    with Processor("cpu", "buffer", None, cores=(0,)) as cpu, Processor("gpu", "image", None, cores=(0,)) as gpu:
        g = gpu.submit(lambda: 1, op="g")
        with pytest.raises(ValueError, match="must share one Trace"):
            cpu.submit(None, op="s", kind="sync", after=[g])


def test_wait_timeout_fails_the_task_not_the_pool():
    trace = Trace()
    with Processor("cpu", "buffer", None, cores=(0,), trace=trace) as cpu, \
            Processor("gpu", "image", None, cores=(0,), trace=trace) as gpu:
        gate = threading.Event()
        g = gpu.submit(gate.wait, 10, op="slow")
        s = cpu.submit(None, op="s", kind="sync", after=[g], timeout=0.05)
        with pytest.raises(SyncTimeout, match=r"cpu: sync 's' timed out after 0.05 s waiting for gpu compute 'slow'"):
            s.result(timeout=10)
        with pytest.raises(TimeoutError, match="not done within"):
            g.result(timeout=0.01)
        gate.set()
        assert g.result(timeout=10) == [True]
        assert cpu.submit(lambda: 3).result(timeout=10) == [3]


def test_close_ends_threads_and_refuses_work():
    before = threading.active_count()
    p = Processor("cpu", "buffer", None, cores=(0,), threads=3)
    assert threading.active_count() == before + 3
    t = p.submit(lambda: 7)
    p.close()
    assert t.result(timeout=1) == [7]  # queued work finished first
    assert threading.active_count() == before
    with pytest.raises(RuntimeError, match="cpu: processor is closed"):
        p.submit(lambda: 1)
    p.close()
    assert p.closed


def test_dropped_processor_ends_its_threads():
    import gc

    before = threading.active_count()
    p = Processor("tmp", "buffer", None, cores=(0,), threads=2)
    threads = list(p._threads)
    del p
    gc.collect()
    for t in threads:
        t.join(timeout=10)
    assert threading.active_count() == before


@pytest.mark.parametrize(
    "kwargs, exc, needle",
    [
        (dict(layout="nhwc"), ValueError, "layout must be one of"),
        (dict(threads=0), ValueError, "threads must be an int >= 1"),
        (dict(cores=()), ValueError, "cores must be a non-empty"),
        (dict(cores=(-1,)), ValueError, "cores must be a non-empty"),
    ],
)
def test_bad_processor_arguments(kwargs, exc, needle):
    args = dict(name="cpu", layout="buffer", kernels=None, cores=(0,), threads=1)
    args.update(kwargs)
    with pytest.raises(exc, match=needle):
        Processor(**args)


def test_bad_task_arguments():
    with Processor("cpu", "buffer", None, cores=(0,)) as p:
        with pytest.raises(TypeError, match="rows must be a pair"):
            p.run("x", _double_rows, rows=(0,))
        with pytest.raises(ValueError, match="rows must satisfy"):
            p.run("x", _double_rows, rows=(5, 2))
        with pytest.raises(ValueError, match="needs a channels= region"):
            p.run("x", _double_rows, rows=(0, 2), split="channels")
        with pytest.raises(TypeError, match="after must hold Tasks"):
            p.submit(lambda: 1, after=[object()])
        with pytest.raises(ValueError, match="thread must be in"):
            p.submit(lambda: 1, thread=1)
        with pytest.raises(ValueError, match="kind must be one of"):
            p.submit(lambda: 1, kind="nap")
        with pytest.raises(TypeError, match="fn must be callable"):
            p.submit(3)
        assert isinstance(p.submit(lambda: 1), Task)


def test_command_list_records_each_step_and_chains_them():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    out = np.zeros_like(x)
    with Processor("cpu", "buffer", None) as p:
        first = p.run("before", _double_rows, x, out, rows=(0, 2))
        steps = [(f"s{i}", lambda rows, i=i: _double_rows(x, out, rows), {"rows": (2 * i, 2 * i + 2)},
                  {"rows": (2 * i, 2 * i + 2)}, 24) for i in range(1, 5)]
        task = p.run_list(steps, after=[first])
        task.result(timeout=10)
        np.testing.assert_array_equal(out, 2 * x)
        recs = p.trace.tasks
        assert [r.op for r in recs] == ["before", "s1", "s2", "s3", "s4"]
        assert all(r.kind == "compute" and r.bytes == 24 for r in recs[1:])
        assert [r.deps for r in recs[1:]] == [(0,), (1,), (2,), (3,)]
        assert task.op == "s1..s4" and task.ids == (4,)


def test_command_list_failure_names_the_step_and_skips_the_rest():
    ran = []

    def boom(**_):
        raise ValueError("bad step")

    with Processor("gpu", "image", None) as p:
        steps = [("ok", lambda: ran.append(1), {}, {}, 0), ("broken", boom, {}, {}, 0),
                 ("never", lambda: ran.append(2), {}, {}, 0)]
        with pytest.raises(TaskError, match="gpu: op 'broken' failed: ValueError: bad step"):
            p.run_list(steps).result(timeout=10)
        assert ran == [1]
        assert p.run("after", lambda: 7).result(timeout=10) == [7]
        with pytest.raises(TypeError, match="run_list steps"):
            p.run_list([("x", 3, {}, {}, 0)])
        with pytest.raises(ValueError, match="at least one step"):
            p.run_list([])
