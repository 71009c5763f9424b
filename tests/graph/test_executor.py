"""Every strategy and every valid plan computes what the cpu computes."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer.graph import interpret, zoo
from coinfer.graph.coexec.chains import RATIOS, valid
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.ir import fuse_relu
from coinfer.graph.coexec.plan import Chain, Plan
from coinfer.graph.coexec.strategies import STRATEGIES, make_plan, plan_codl, plan_mulayer, plan_single
from coinfer.graph.coexec.view import view_of
from coinfer.kernels import LAYOUTS
from coinfer.graph.costs.source import TableCosts
from coinfer.hw import SoC
from tests.tolerance import assert_close

SMALL = {"squeezenet": 35, "alexnet": 67, "mobilenet_v1": 32, "resnet18": 32, "vgg16": 32, "nin": 67,
         "yolov2_tiny": 32}


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


_graphs = {}


def small(name):
    if name not in _graphs:
        g = fuse_relu(zoo.build(name, input_size=SMALL[name], batch=1))
        x = np.random.default_rng(1).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)
        _graphs[name] = (g, x, interpret.run(g, x))
    return _graphs[name]


def equal_costs(graph, sync=0.0):
    """Both processors equally fast and sharing nearly free: the planner splits and chains."""
    view = view_of(graph)
    full = {op.name: {"cpu": 1e-3 + op.flops * 1e-11, "gpu": 1e-3 + op.flops * 1e-11} for op in view.ops}
    return TableCosts(full, sync_s=sync, transform_per_byte=1e-12)


def run_plan(graph, plan, soc, x):
    with Executor(graph, plan, soc) as ex:
        return ex.run(x)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_single_processors_match_reference(name, soc):
    g, x, ref = small(name)
    for dev in ("cpu", "gpu"):
        assert_close(run_plan(g, plan_single(g, dev), soc, x), ref, f"{name} {dev}")


@pytest.mark.parametrize("name", ["squeezenet", "alexnet", "mobilenet_v1", "resnet18", "yolov2_tiny"])
def test_split_strategies_match_cpu(name, soc):
    g, x, ref = small(name)
    y_cpu = run_plan(g, plan_single(g, "cpu"), soc, x)
    costs = equal_costs(g, sync=1e-5)
    for plan in (plan_mulayer(g, ratio=0.5), plan_mulayer(g, ratio=0.3), plan_codl(g, costs, chains=False), plan_codl(g, costs, chains=True)):
        assert plan.n_splits > 0, plan.describe()
        assert_close(run_plan(g, plan, soc, x), y_cpu, f"{name} {plan.strategy}")
    assert plan_codl(g, costs, chains=True).n_chains > 0


def random_plan(graph, data) -> Plan:
    """A random valid plan: chains of random length, dimension and ratio, each with the GPU
    on images or on buffers (all on buffers for a shared-buffer plan)."""
    view = view_of(graph)
    names = [op.name for op in view.ops]
    shared = data.draw(st.sampled_from([None, "buffer"]))
    chains, i = [], 0
    while i < len(names):
        n = data.draw(st.integers(1, min(5, len(names) - i)))
        members = names[i:i + n]
        options = [(d, r, lay) for d in ("H", "OC", "none") for lay in (("buffer",) if shared else LAYOUTS)
                   for r in (RATIOS[1:-1] if d != "none" else (0.0, 1.0)) if valid(view, members, d, r, lay)]
        if not options:  # a long chain no option allows: shorten it
            n, members = 1, names[i:i + 1]
            options = [(d, r, lay) for d in ("H", "OC", "none") for lay in (("buffer",) if shared else LAYOUTS)
                       for r in (RATIOS[1:-1] if d != "none" else (0.0, 1.0)) if valid(view, members, d, r, lay)]
        dim, ratio, lay = data.draw(st.sampled_from(options))
        chains.append(Chain(tuple(members), dim, ratio, lay))
        i += n
    return Plan("random", chains, shared_layout=shared)


@settings(max_examples=30)
@given(data=st.data(), name=st.sampled_from(["squeezenet", "resnet18", "alexnet", "mobilenet_v1"]))
def test_any_valid_plan_matches_reference(soc, data, name):
    """Mixed plans too: chains with the GPU on images next to chains with it on buffers."""
    g, x, ref = small(name)
    plan = random_plan(g, data)
    assert_close(run_plan(g, plan, soc, x), ref, f"{name} {plan.describe()}")


def test_trace_records_every_sharing_kind(soc):
    g, x, _ = small("squeezenet")
    plan = plan_codl(g, equal_costs(g), chains=False)
    run_plan(g, plan, soc, x)
    kinds = {t.kind for t in soc.trace.tasks}
    assert {"compute", "transform", "map", "unmap", "sync"} <= kinds
    for t in soc.trace.tasks:
        assert t.end >= t.start
        if t.kind in ("transform", "map", "unmap"):
            assert t.bytes > 0


def test_plan_must_cover_graph(soc):
    g, _, _ = small("squeezenet")
    names = tuple(op.name for op in g.ops)
    with pytest.raises(ValueError, match="exactly once"):
        Executor(g, Plan("bad", [Chain(names[:-1], "none", 1.0)]), soc)
    with pytest.raises(ValueError, match="topological"):
        Executor(g, Plan("bad", [Chain(names[::-1], "none", 1.0)]), soc)
    with pytest.raises(ValueError, match="one op"):
        Executor(g, Plan("bad", [Chain(names[:2], "H", 0.5), Chain(names[2:], "none", 0.0)],
                         shared_layout="buffer"), soc)


def test_bad_input_is_refused(soc):
    g, x, _ = small("squeezenet")
    with Executor(g, plan_single(g, "gpu"), soc) as ex:
        with pytest.raises(TypeError, match="float32"):
            ex.run(x.astype(np.float64))
        with pytest.raises(ValueError, match="shape"):
            ex.run(x[:, :, :-1])


def test_measured_planner_runs_every_strategy(soc):
    from coinfer.graph.costs.measured import MeasuredCosts
    from coinfer.graph.studies.coexec import run_strategies

    g, x, ref = small("squeezenet")
    costs = MeasuredCosts(g, soc, repeats=1, progress=False)
    results, outputs, _ = run_strategies(g, soc, list(STRATEGIES), x, repeat=1, progress=False, costs=costs)
    assert [r.name for r in results] == list(STRATEGIES)
    for r in results:
        assert r.max_abs_err <= 1e-4 * np.abs(outputs["cpu"]).max() + 1e-6
        assert np.isfinite([r.median_ms, r.replay_ms]).all()


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_soak_no_thread_or_arena_growth(soc, native):
    g, x, _ = small("squeezenet")
    plan = plan_codl(g, equal_costs(g, sync=1e-5), chains=True)
    threads0 = threading.active_count()
    with Executor(g, plan, soc, native=native) as ex:
        assert ex.native == native
        used = ex.arena.used_bytes
        first = ex.run(x)
        for _ in range(300):
            y = ex.run(x)
        assert ex.arena.used_bytes == used
        np.testing.assert_array_equal(y, first)
    assert threading.active_count() == threads0
    assert len(soc.trace) < 1000  # one run's tasks, not 300 runs'


def test_failing_kernel_surfaces_and_soc_stays_usable(soc, monkeypatch):
    from coinfer.graph.coexec import lower as opcall
    from coinfer.hw import TaskError

    g, x, ref = small("squeezenet")
    plan = plan_codl(g, equal_costs(g, sync=1e-5), chains=True)
    victim = next(c for c in plan.chains if c.device == "both").ops[0]
    real = opcall.call

    def broken(graph, op, *a, **k):
        if op.name == victim:
            raise RuntimeError("injected fault")
        return real(graph, op, *a, **k)

    with Executor(g, plan, soc, native=False) as ex:  # the Python path (tests/graph/test_native.py: native)
        monkeypatch.setattr(opcall, "call", broken)
        with pytest.raises(TaskError, match=victim) as info:
            ex.run(x)
        assert "injected fault" in str(info.value.__cause__ or info.value)
        monkeypatch.setattr(opcall, "call", real)
        assert_close(ex.run(x), ref, "after a fault")


def _onnx_model():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)

    def w(*s):
        return numpy_helper.from_array((rng.standard_normal(s) * np.sqrt(2.0 / np.prod(s[1:]))).astype(np.float32))

    inits = []
    for name, arr in [("w1", w(16, 3, 3, 3)), ("b1", w(16)), ("w2", w(8, 16, 1, 1)), ("w3", w(8, 16, 3, 3)),
                      ("w4", w(10, 16 * 8 * 8)), ("b4", w(10))]:
        arr.name = name
        inits.append(arr)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["e1"]),
        helper.make_node("Conv", ["p1", "w3"], ["e3"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["e1", "e3"], ["cat"], axis=1),
        helper.make_node("Relu", ["cat"], ["rc"]),
        helper.make_node("Add", ["rc", "p1"], ["res"]),
        helper.make_node("Flatten", ["res"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_onnx_model_every_strategy_matches_onnxruntime(soc):
    from coinfer.graph import onnx as onnx_import
    from tests.onnx_peer import run_model

    model = _onnx_model()
    x = np.random.default_rng(4).standard_normal((1, 3, 16, 16), dtype=np.float32)
    want = run_model(model, {"x": x})
    g = fuse_relu(onnx_import.load(model))
    costs = equal_costs(g, sync=1e-5)
    for strategy in STRATEGIES:
        plan = plan_mulayer(g, ratio=0.5) if strategy == "mulayer" else make_plan(strategy, g, costs)
        assert_close(run_plan(g, plan, soc, x), want, f"onnx {strategy}")


def test_codl_keeps_the_fastest_measured_candidate(soc):
    g, x, _ = small("squeezenet")

    costs = equal_costs(g, sync=1e-6)
    plan = plan_codl(g, costs, verify_on=soc, x=x)
    notes = plan.notes
    assert notes["chosen_by"] == "measurement"
    times = {k: v["measured_s"] for k, v in notes["candidates"].items() if "measured_s" in v}
    assert "chains delta=0.3" in times and len(times) >= 2
    # the fastest (by the run-off's times when one decided), or a single processor within 3%
    # of a co-executed fastest
    final = {k: v["runoff_s"] for k, v in notes["candidates"].items() if "runoff_s" in v} or times
    assert final[notes["chosen"]] <= min(final.values()) / (1 - 0.03)
    assert "measured" in notes["why"]


def test_codl_stays_on_one_processor_when_the_predicted_gain_is_small(soc):
    g, _, _ = small("squeezenet")
    view = view_of(g)
    # The GPU 20x slower than the CPU: splitting gains at most 5%, under the 10% margin.
    costs = TableCosts({op.name: {"cpu": 1e-3, "gpu": 2e-2} for op in view.ops}, sync_s=1e-6)
    plan = plan_codl(g, costs)
    assert plan.shared_layout == "buffer" and plan.n_splits == 0
    assert plan.notes["chosen_by"] == "prediction"
