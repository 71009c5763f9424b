"""The op table: every consumer reads one spec per op type; both kernel sets support every
instance, the ones the image kernels once lacked included (the fallback path for an
instance a layout declines is tested in test_placement.py)."""
import numpy as np
import pytest

from coinfer.graph import interpret, ops
from coinfer.graph.coexec import lower
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.strategies import STRATEGIES, plan_single
from coinfer.graph.coexec.view import view_of
from coinfer.graph.costs.source import TableCosts
from coinfer.graph.ir import OP_TYPES, GraphBuilder
from coinfer.hw import SoC
from coinfer.kernels import LAYOUTS, layout
from tests.tolerance import assert_close


def _w(rng, *shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def awkward_graph():
    """Ops the image kernels once lacked (grouped conv, depthwise multiplier 2, softmax over
    H, concat on H) between ops they always had."""
    rng = np.random.default_rng(5)
    b = GraphBuilder("awkward", {"x": (1, 8, 12, 12)})
    c1 = b.add("conv", "c1", ["x"], params={"w": _w(rng, 16, 8, 3, 3)}, padding=1, relu=True)
    g = b.add("conv", "grouped", [c1], params={"w": _w(rng, 16, 8, 3, 3)}, padding=1, groups=2)
    dm = b.add("conv", "dw_mult2", [g], params={"w": _w(rng, 32, 1, 3, 3)}, padding=1, groups=16)
    sm = b.add("softmax", "soft_h", [dm], axis=2)
    cat = b.add("concat", "cat_h", [sm, dm], axis=2)
    c2 = b.add("conv", "c2", [cat], params={"w": _w(rng, 16, 32, 1, 1)}, relu=True)
    p = b.add("globalavgpool", "gap", [c2])
    f = b.add("flatten", "flat", [p])
    b.add("softmax", "prob", [f], axis=1)
    return b.build()


def test_every_op_type_has_one_spec_with_both_layouts():
    assert OP_TYPES == tuple(ops.SPECS)
    for t, spec in ops.SPECS.items():
        assert spec.type == t and set(spec.kernels) == set(LAYOUTS)


def test_both_layouts_support_every_instance():
    g = awkward_graph()
    for op in g.ops:
        assert ops.layouts_of(g, op) == frozenset(LAYOUTS), op.name
    assert all(op.on_image for op in view_of(g).ops)


def test_image_calls_match_the_reference():
    g = awkward_graph()
    prep = lower.prepare(g)
    x = np.random.default_rng(7).standard_normal((1, 8, 12, 12), dtype=np.float32)
    ref = interpret.run(g, x, all_tensors=True)
    for name in ("grouped", "dw_mult2", "soft_h", "cat_h"):
        op = g.op(name)
        ins = [layout.to_image(ops.as4d(ref[t].astype(np.float32))) for t in op.inputs]
        out = np.zeros(ops.image_shape(g.shape(op.output)), np.float32)
        lower.call(g, op, "image", prep.weights[name]["image"], ins, out)
        assert_close(layout.to_buffer(out, g.shape(op.output)[1]), ref[op.output], name)


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


def test_every_strategy_runs_the_awkward_graph(soc):
    from coinfer.graph.costs.measured import MeasuredCosts
    from coinfer.graph.studies.coexec import run_strategies

    g = awkward_graph()
    x = np.random.default_rng(6).standard_normal((1, 8, 12, 12), dtype=np.float32)
    ref = interpret.run(g, x)
    prep = lower.prepare(g)
    gpu = plan_single(g, "gpu", view=prep.view)
    assert {c.device for c in gpu.chains} == {"gpu"} and gpu.notes["fallback"] == []
    with Executor(g, gpu, soc, prepared=prep) as ex:
        assert_close(ex.run(x), ref, "gpu plan")
    costs = MeasuredCosts(g, soc, prepared=prep, repeats=1, progress=False)
    for name in ("grouped", "dw_mult2", "soft_h", "cat_h"):
        assert np.isfinite(costs.full[name]["gpu"])
    results, outputs, _ = run_strategies(g, soc, list(STRATEGIES), x, repeat=1, progress=False, costs=costs)
    for r in results:
        assert_close(outputs[r.name], ref, r.name)
    # Cheap sharing and equal processors tempt the planner to split everything it may.
    eq = TableCosts({op.name: {"cpu": 1e-3, "gpu": 1e-3} for op in g.ops}, sync_s=1e-6)
    _, outputs, _ = run_strategies(g, soc, ["codl-nochain", "codl"], x, repeat=1, progress=False, costs=eq,
                                   verify=False)
    for name, y in outputs.items():
        assert_close(y, ref, f"{name} on equal costs")
