"""The native dispatch loop against the Python path: the same outputs bit for bit, the same task
graph in the trace, failures as exceptions naming the op and processor (the 300-run soak of both
paths is in test_executor)."""
import numpy as np
import pytest
from numba import njit

from coinfer.graph.coexec import lower
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.strategies import plan_codl, plan_single
from coinfer.hw import SoC, SyncTimeout, TaskError
from coinfer.hw.dispatch import Program
from coinfer.kernels.entry.generic import bind
from tests.graph.test_executor import equal_costs, small
from tests.tolerance import assert_close


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


def task_graph(trace) -> set:
    """Each task as (processor, kind, op, region) with the same of its dependencies."""
    tasks = trace.tasks
    node = {t.id: (t.processor, t.kind, t.op, repr(sorted((t.region or {}).items()))) for t in tasks}
    return {(node[t.id], frozenset(node[d] for d in t.deps), t.bytes) for t in tasks}


def outputs_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


@pytest.mark.parametrize("name", ["squeezenet", "mobilenet_v1", "resnet18", "alexnet"])
def test_native_matches_python_path(name, soc):
    g, x, ref = small(name)
    for plan in (plan_single(g, "cpu"), plan_single(g, "gpu"), plan_codl(g, equal_costs(g), chains=True),
                 plan_codl(g, equal_costs(g), chains=False)):
        with Executor(g, plan, soc, native=False) as ex:
            assert not ex.native
            want = ex.run(x)
            want_graph = task_graph(soc.trace)
        with Executor(g, plan, soc, native=True) as ex:
            assert ex.native and ex.native_reason is None
            got = ex.run(x)
            got_graph = task_graph(soc.trace)
            again = ex.run(x)
        assert outputs_equal(got, want), f"{name} {plan.strategy}: native output differs"
        assert outputs_equal(again, want), f"{name} {plan.strategy}: second native run differs"
        assert got_graph == want_graph, f"{name} {plan.strategy}: task graphs differ"
        assert_close(got, ref, f"{name} {plan.strategy} native")


def test_native_default_and_refusal(soc):
    g, x, _ = small("squeezenet")
    with Executor(g, plan_single(g, "gpu"), soc) as ex:
        assert ex.native
    with pytest.raises(TypeError, match="native"):
        Executor(g, plan_single(g, "gpu"), soc, native="yes")


@njit(nogil=True, cache=True)
def _fails(x):
    if x.size > 0:
        raise ValueError("injected fault")


@njit(nogil=True, cache=True)
def _spins(x, n):
    s = np.float32(0.0)
    for i in range(n):
        s += x[i & 1023]
    x[0] = s


def test_native_kernel_failure_names_op_and_processor(soc, monkeypatch):
    g, x, ref = small("squeezenet")
    plan = plan_codl(g, equal_costs(g, sync=1e-5), chains=True)
    victim = next(c for c in plan.chains if c.device == "both").ops[0]
    real = lower.bind

    def broken(graph, op, *a, **k):
        call = real(graph, op, *a, **k)
        return bind("injected", _fails, np.ones(4, np.float32)) if op.name == victim else call

    monkeypatch.setattr(lower, "bind", broken)
    with Executor(g, plan, soc, native=True) as ex:
        with pytest.raises(TaskError, match=victim) as info:
            ex.run(x)
        assert info.value.op == victim and info.value.processor in ("cpu", "gpu")
        assert "kernel raised" in str(info.value)
    monkeypatch.setattr(lower, "bind", real)
    with Executor(g, plan, soc, native=True) as ex:  # the SoC stays usable
        assert_close(ex.run(x), ref, "after a native fault")


def test_native_sync_timeout_names_sync_and_processor(soc):
    a = np.ones(1024, np.float32)
    prog = Program(soc, sync_timeout=0.05)
    slow = prog.compute("gpu", "slow op", bind("spin", _spins, a, 200_000_000))
    prog.sync([slow], on="cpu", op="wait for slow op")
    prog.compute("cpu", "after", bind("spin", _spins, np.ones(4, np.float32), 10))
    with pytest.raises(SyncTimeout, match="wait for slow op") as info:
        prog.run(timeout=60.0)
    assert info.value.processor == "cpu" and "slow op" in str(info.value)
