"""Placement: every op instance runs on every processor and layout that can hold it, and every
strategy places an instance the GPU's image kernels decline on a processor that has it.

One small graph per op instance (each op type, and the variants the image kernels once
lacked: grouped conv, depthwise with a channel multiplier, softmax and concat off the
channel axis), with the op between two convs.  The op is then placed every way a chain
may hold it (cpu, gpu on images, gpu on buffers, split by height or channels on either
layout) while its neighbours run on the GPU's images, and every strategy plans the graph;
each run must match the float64 reference.  Today the image kernels support every
instance; the fallback path is exercised by making the op table's image predicate
decline the op (:func:`declined`), with an image call that fails if anyone makes it.
"""
import contextlib
import dataclasses

import numpy as np
import pytest

from coinfer.graph import interpret, ops
from coinfer.graph.coexec.chains import RATIOS, valid
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.lower import prepare
from coinfer.graph.coexec.plan import Chain, Plan
from coinfer.graph.coexec.strategies import STRATEGIES, make_plan, plan_mulayer, plan_single
from coinfer.graph.costs.measured import MeasuredCosts
from coinfer.graph.costs.source import TableCosts
from coinfer.graph.ir import OP_TYPES, GraphBuilder
from coinfer.hw import SoC
from coinfer.kernels import LAYOUTS
from tests.tolerance import assert_close

C, H = 8, 10


def _w(rng, *shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def _conv(b, rng, name, x, c_in, c_out):
    return b.add("conv", name, [x], params={"w": _w(rng, c_out, c_in, 3, 3), "b": _w(rng, c_out)}, padding=1)


def _graph(label: str, make):
    """conv -> the op (``make(b, rng, x) -> (tensor, channels or None)``) -> conv when 4-D."""
    rng = np.random.default_rng(abs(hash(label)) % 2**32)
    b = GraphBuilder(label, {"x": (1, 4, H, H)})
    x = _conv(b, rng, "pre", "x", 4, C)
    y, c = make(b, rng, x)
    if c is not None:
        _conv(b, rng, "post", y, c, 4)
    return b.build()


def _add_op(kind, **attrs):
    def make(b, rng, x):
        if kind == "fc":
            f = b.add("flatten", "flat", [x])
            return b.add("fc", "op", [f], params={"w": _w(rng, 10, C * H * H), "b": _w(rng, 10)}, **attrs), None
        if kind in ("flatten", "reshape"):
            return b.add(kind, "op", [x], **attrs), None
        if kind == "add":
            r = b.add("relu", "side", [x])
            return b.add("add", "op", [x, r], **attrs), C
        if kind == "concat":
            r = b.add("relu", "side", [x])
            y = b.add("concat", "op", [x, r], **attrs)
            cat = b.add("maxpool", "fit", [y], kernel=(1 + (attrs["axis"] == 2), 1 + (attrs["axis"] == 3)))
            return cat, 2 * C if attrs["axis"] == 1 else C
        if kind == "conv":
            rest = {k: v for k, v in attrs.items() if k not in ("groups", "oc")}
            groups, oc = attrs["groups"], attrs["oc"]
            return b.add("conv", "op", [x], params={"w": _w(rng, oc, C // groups, 3, 3)}, padding=1,
                         groups=groups, **rest), oc
        if kind == "globalavgpool":
            return b.add(kind, "op", [x]), C
        return b.add(kind, "op", [x], **attrs), C
    return make


INSTANCES = {
    "conv": _add_op("conv", groups=1, oc=C, relu=True),
    "conv depthwise": _add_op("conv", groups=C, oc=C),
    "conv depthwise x2": _add_op("conv", groups=C, oc=2 * C),
    "conv depthwise x3": _add_op("conv", groups=C, oc=3 * C),
    "conv groups 2": _add_op("conv", groups=2, oc=C),
    "conv groups 4 strided": _add_op("conv", groups=4, oc=2 * C, stride=2),
    "maxpool": _add_op("maxpool", kernel=3, stride=1, padding=1),
    "avgpool": _add_op("avgpool", kernel=2, stride=2, ceil_mode=True),
    "globalavgpool": _add_op("globalavgpool"),
    "fc": _add_op("fc", relu=True),
    "relu": _add_op("relu"),
    "clip": _add_op("clip", min=-0.5, max=0.5),
    "clip min > max": _add_op("clip", min=1.0, max=-1.0),
    "lrn": _add_op("lrn", size=3, alpha=1e-2),
    "softmax channels": _add_op("softmax", axis=1),
    "softmax H": _add_op("softmax", axis=2),
    "softmax W": _add_op("softmax", axis=3),
    "concat channels": _add_op("concat", axis=1),
    "concat H": _add_op("concat", axis=2),
    "concat W": _add_op("concat", axis=3),
    "add": _add_op("add", relu=True),
    "flatten": _add_op("flatten"),
    "dropout": _add_op("dropout"),
    "reshape": _add_op("reshape", shape=(0, -1)),
}
#: Instances whose image kernels the tests decline, to exercise the fallback path.
DECLINED = ("conv depthwise x2", "conv groups 4 strided", "softmax H", "concat W", "lrn")


@contextlib.contextmanager
def declined(op_type: str):
    """The op table's image kernels of ``op_type`` decline the op named "op" (and fail if called)."""
    spec = ops.SPECS[op_type]
    image = spec.kernels["image"]

    def call(graph, op, *a, **k):
        if op.name == "op":
            raise AssertionError("an image kernel the op table declines was called")
        return image.call(graph, op, *a, **k)

    patched = dataclasses.replace(image, call=call,
                                  supports=lambda graph, op: op.name != "op" and image.supports(graph, op))
    ops.SPECS[op_type] = dataclasses.replace(spec, kernels={**spec.kernels, "image": patched})
    try:
        yield
    finally:
        ops.SPECS[op_type] = spec


def test_every_op_type_has_an_instance():
    assert {_graph(k, m).op("op").type for k, m in INSTANCES.items()} == set(OP_TYPES)


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


def _case(label):
    g = _graph(label, INSTANCES[label])
    x = np.random.default_rng(1).standard_normal((1, 4, H, H), dtype=np.float32)
    return g, x, interpret.run(g, x), prepare(g)


def _placements(view, name):
    """Every (dim, ratio, layout) a one-op chain of ``name`` may take."""
    out = []
    for lay in LAYOUTS:
        for dim, ratio in [("none", 0.0), ("none", 1.0), ("H", 0.5), ("OC", 0.5), ("H", RATIOS[3])]:
            if valid(view, [name], dim, ratio, lay):
                out.append((dim, ratio, lay))
    return out


def _check_placements(soc, label, on_image: bool):
    g, x, ref, prep = _case(label)
    view = prep.view
    assert view.op("op").on_image == on_image == ops.supports(g, g.op("op"), "image")
    places = _placements(view, "op")
    assert ("none", 1.0, "buffer") in places and ("none", 0.0, "buffer") in places
    assert (("none", 1.0, "image") in places) == on_image
    for dim, ratio, lay in places:
        chains = []
        for op in g.ops:
            if op.name == "op":
                chains.append(Chain(("op",), dim, ratio, lay))
            else:  # the neighbours on the GPU's images when they can be, else on the cpu
                chains.append(Chain((op.name,), "none", 1.0 if view.op(op.name).on_image else 0.0))
        with Executor(g, Plan("placed", chains), soc, prepared=prep) as ex:
            assert_close(ex.run(x), ref, f"{label}: op as {dim} {ratio} on {lay}")
    if not on_image:
        image_gpu = [Chain((n.name,), "none", 1.0) for n in g.ops]
        with pytest.raises(ValueError, match="'op'.*has no image kernel"):
            Executor(g, Plan("bad", image_gpu), soc, prepared=prep)


@pytest.mark.parametrize("label", sorted(INSTANCES))
def test_op_runs_on_every_processor_and_layout(soc, label):
    _check_placements(soc, label, on_image=True)


@pytest.mark.parametrize("label", DECLINED)
def test_declined_op_runs_on_every_processor_that_has_it(soc, label):
    with declined(_graph(label, INSTANCES[label]).op("op").type):
        _check_placements(soc, label, on_image=False)


def _equal_costs(g, prep):
    """Both processors and both GPU layouts equally fast, sharing nearly free: plans split."""
    full = {op.name: {k: 1e-4 + op.flops * 1e-11 for k in ("cpu", "gpu", "gpu_buffer")} for op in prep.view.ops}
    return TableCosts(full, sync_s=1e-6, transform_per_byte=1e-12)


def _check_strategies(soc, label):
    g, x, ref, prep = _case(label)
    costs = _equal_costs(g, prep)
    for s in STRATEGIES:
        plan = plan_mulayer(g, ratio=0.5, view=prep.view) if s == "mulayer" else make_plan(s, g, costs,
                                                                                           prepared=prep)
        with Executor(g, plan, soc, prepared=prep) as ex:
            assert_close(ex.run(x), ref, f"{label} under {s}: {plan.describe()}")
    return g, prep


@pytest.mark.parametrize("label", sorted(INSTANCES))
def test_every_strategy_places_the_op(soc, label):
    g, prep = _check_strategies(soc, label)
    assert plan_single(g, "gpu", view=prep.view).notes["fallback"] == []


@pytest.mark.parametrize("label", DECLINED)
def test_every_strategy_places_a_declined_op_off_the_images(soc, label):
    with declined(_graph(label, INSTANCES[label]).op("op").type):
        g, prep = _check_strategies(soc, label)
        plan = plan_single(g, "gpu", view=prep.view)
        assert plan.notes["fallback"] == ["op"]
        assert [n for c in plan.chains if c.device == "cpu" for n in c.ops] == ["op"]
        costs = MeasuredCosts(g, soc, prepared=prep, repeats=1, progress=False)  # the profiler skips it
        assert costs.full["op"]["gpu"] == float("inf") and np.isfinite(costs.full["op"]["gpu_buffer"])


def test_concat_along_h_is_never_height_split():
    # Output rows of a concat along H come from different inputs: no row-local split.
    g, _, _, prep = _case("concat H")
    assert "H" not in prep.view.op("op").splits
    assert "H" in _case("concat W")[3].view.op("op").splits


def test_gpu_rows_that_read_only_padding(soc):
    # The GPU's rows of the conv read only its top padding, so the GPU computes nothing of
    # the maxpool before it; the conv's kernel still takes the maxpool's image.
    rng = np.random.default_rng(3)
    b = GraphBuilder("pad_only", {"x": (1, 3, 3, 6)})
    p = b.add("maxpool", "pool", ["x"], kernel=1)
    b.add("conv", "conv", [p], params={"w": _w(rng, 2, 3, 2, 2)}, padding=(2, 0, 0, 0))
    g = b.build()
    x = rng.standard_normal((1, 3, 3, 6), dtype=np.float32)
    plan = Plan("pad", [Chain(("pool", "conv"), "H", 0.3, "image")])
    with Executor(g, plan, soc) as ex:
        assert_close(ex.run(x), interpret.run(g, x), "gpu rows of padding only")
