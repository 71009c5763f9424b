"""CoDL's plan choice: the GPU's layout per chain from the costs, a candidate pool holding every
plan the other strategies make, prediction when one candidate leads by 15%, measurement
otherwise; and the cost model's price of moving a tensor between layouts."""
import numpy as np
import pytest

from coinfer.graph import interpret, zoo
from coinfer.graph.coexec.costmodel import chain_cost, plan_cost
from coinfer.graph.coexec.executor import Executor
from coinfer.graph.coexec.lower import prepare
from coinfer.graph.coexec.plan import Chain, Plan, merge_unsplit
from coinfer.graph.coexec import strategies
from coinfer.graph.coexec.strategies import (DECIDE_MARGIN, MEASURED_MARGIN, codl_candidates, make_plan, plan_codl,
                                             plan_mulayer, plan_single)
from coinfer.graph.costs.source import TableCosts
from coinfer.graph.ir import fuse_relu
from coinfer.hw import SoC
from tests.graph.test_partition import linear_view
from tests.tolerance import assert_close


class FlopsCosts(TableCosts):
    """Hand-made costs with muLayer's FLOPs-linear throughput (as MeasuredCosts has)."""

    def __init__(self, graph, view, speed, **kw):
        super().__init__({op.name: {k: 1e-5 + op.flops * s for k, s in speed.items()} for op in view.ops}, **kw)
        self.graph = graph

    def throughput(self, key):
        t = sum(v[key] for v in self.full.values())
        return self.graph.total_flops() / t


@pytest.fixture(scope="module")
def squeeze():
    g = fuse_relu(zoo.build("squeezenet", input_size=35))
    x = np.random.default_rng(2).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)
    return g, x, interpret.run(g, x), prepare(g)


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


def test_every_other_strategys_plan_is_a_candidate(squeeze):
    g, _, _, prep = squeeze
    costs = FlopsCosts(g, prep.view, {"cpu": 1e-10, "gpu": 1.2e-10, "gpu_buffer": 0.9e-10}, sync_s=1e-5,
                       transform_per_byte=1e-10)
    pool = [p.chains for _, p in codl_candidates(g, costs, view=prep.view)]
    others = {"cpu": plan_single(g, "cpu", view=prep.view), "gpu": plan_single(g, "gpu", view=prep.view),
              "mulayer": plan_mulayer(g, costs, view=prep.view),
              "codl-nochain": make_plan("codl-nochain", g, costs, prepared=prep)}
    for name, plan in others.items():
        assert merge_unsplit(plan.chains) in pool, f"{name}'s plan is not among codl's candidates"


def test_codl_puts_the_gpu_on_buffers_where_they_are_faster(squeeze, soc):
    g, x, ref, prep = squeeze
    fast_buffers = FlopsCosts(g, prep.view, {"cpu": 1e-10, "gpu": 5e-10, "gpu_buffer": 1e-10}, sync_s=1e-6,
                              transform_per_byte=1e-11)
    plan = plan_codl(g, fast_buffers, prepared=prep)
    convs = [c for c in plan.chains if c.device != "cpu" and any(g.op(n).type == "conv" for n in c.ops)]
    assert convs and all(c.layout == "buffer" for c in convs), plan.describe()
    fast_images = FlopsCosts(g, prep.view, {"cpu": 1e-10, "gpu": 1e-10, "gpu_buffer": 5e-10}, sync_s=1e-6,
                             transform_per_byte=1e-11)
    plan = plan_codl(g, fast_images, prepared=prep)
    convs = [c for c in plan.chains if c.device != "cpu" and any(g.op(n).type == "conv" for n in c.ops)]
    assert convs and all(c.layout == "image" for c in convs), plan.describe()


def test_codl_mixes_layouts_when_ops_differ(squeeze, soc):
    g, x, ref, prep = squeeze
    # 3x3 convs faster on images, everything else faster on buffers.
    full = {}
    for op in prep.view.ops:
        image_wins = op.type == "conv" and op.kernel == 3
        full[op.name] = {"cpu": 1e-4 + op.flops * 1e-10, "gpu": 1e-5 + op.flops * (1e-11 if image_wins else 1e-9),
                         "gpu_buffer": 1e-5 + op.flops * (1e-9 if image_wins else 1e-11)}
    plan = plan_codl(g, TableCosts(full, sync_s=1e-7, transform_per_byte=1e-13), prepared=prep)
    assert plan.layouts == {"image", "buffer"}, plan.describe()
    with Executor(g, plan, soc, prepared=prep) as ex:
        assert_close(ex.run(x), ref, "mixed-layout plan")
        kinds = {t.kind for t in soc.trace.tasks}
    assert "transform" in kinds  # the canonical copy moves between layouts at chain boundaries


def test_choice_by_prediction_names_the_lead(squeeze):
    g, _, _, prep = squeeze
    # The CPU far faster than the GPU on either layout: the cpu-only plan leads by far.
    costs = TableCosts({op.name: {"cpu": 1e-4, "gpu": 1e-2, "gpu_buffer": 1e-2} for op in prep.view.ops},
                       sync_s=1e-5)
    plan = plan_codl(g, costs, prepared=prep)
    n = plan.notes
    assert n["chosen_by"] == "prediction" and n["chosen"] == "cpu only" and plan.shared_layout == "buffer"
    assert "faster than the next candidate" in n["why"]
    lead = sorted(v["predicted_s"] for v in n["candidates"].values())
    assert lead[1] / lead[0] - 1 >= DECIDE_MARGIN


def test_choice_by_measurement_keeps_the_fastest(squeeze, soc):
    g, x, _, prep = squeeze
    same = {op.name: {"cpu": 1e-3, "gpu": 1e-3, "gpu_buffer": 1e-3} for op in prep.view.ops}
    plan = plan_codl(g, TableCosts(same, sync_s=1e-3), prepared=prep, verify_on=soc, x=x, rounds=1)
    n = plan.notes
    assert n["chosen_by"] == "measurement" and "measured" in n["why"]
    measured = {k: v["measured_s"] for k, v in n["candidates"].items() if "measured_s" in v}
    assert {"cpu only", "gpu only", "gpu only on buffers"} <= set(measured)  # always measured
    # A run-off, when there was one, decides among the candidates it ran (the others were 4% behind).
    ran_off = {k: v["runoff_s"] for k, v in n["candidates"].items() if "runoff_s" in v}
    final = ran_off or measured
    assert final[n["chosen"]] <= min(final.values()) / (1 - MEASURED_MARGIN)


@pytest.mark.parametrize("co_s, chosen", [(0.90, "co-executed"), (0.99, "cpu only")])
def test_co_execution_must_beat_the_single_processors_by_the_margin(squeeze, monkeypatch, co_s, chosen):
    g, x, _, prep = squeeze
    same = {op.name: {"cpu": 1e-3, "gpu": 1e-3, "gpu_buffer": 1e-3} for op in prep.view.ops}

    def fake_measure(graph, soc, plans, x, **kw):  # single processors 1.0 s, co-executed co_s
        return [co_s + 1e-3 * i if any(c.split for c in p.chains) else 1.0 + 1e-2 * i for i, p in enumerate(plans)]

    monkeypatch.setattr(strategies, "measure_plans", fake_measure)
    plan = plan_codl(g, TableCosts(same, sync_s=1e-3), prepared=prep, verify_on=object(), x=x)
    n = plan.notes
    measured = {k: v["measured_s"] for k, v in n["candidates"].items() if "measured_s" in v}
    fastest = min(measured, key=measured.get)
    assert n["chosen"] == (fastest if chosen == "co-executed" else chosen)
    if chosen == "cpu only":
        assert "by less than 3%" in n["why"]


def test_a_run_off_decides_between_close_candidates(squeeze, monkeypatch):
    g, x, _, prep = squeeze
    same = {op.name: {"cpu": 1e-3, "gpu": 1e-3, "gpu_buffer": 1e-3} for op in prep.view.ops}
    calls = []

    def fake_measure(graph, soc, plans, x, rounds=5, **kw):
        # First pass: every candidate within 1% (0.800, 0.801, ...); in the run-off (twice the
        # rounds) single processors take 1.0 s and the co-executed plans reverse their order.
        calls.append((len(plans), rounds))
        if len(calls) == 1:
            return [0.80 + 1e-3 * i for i in range(len(plans))]
        co = [i for i, p in enumerate(plans) if any(c.split for c in p.chains)]
        out = [1.0] * len(plans)
        for r, i in enumerate(co):
            out[i] = 0.80 - 1e-3 * r
        return out

    monkeypatch.setattr(strategies, "measure_plans", fake_measure)
    plan = plan_codl(g, TableCosts(same, sync_s=1e-3), prepared=prep, verify_on=object(), x=x, rounds=3)
    n = plan.notes
    ran_off = {k: v["runoff_s"] for k, v in n["candidates"].items() if "runoff_s" in v}
    assert len(calls) == 2 and calls[1][1] == 6 and calls[1][0] == len(ran_off) > 1
    assert n["chosen"] == min(ran_off, key=ran_off.get) and "run-off" in n["why"]


# -- the cost model across layouts ------------------------------------------------------

def _table(view, **kw):
    return TableCosts({op.name: {"cpu": 1.0, "gpu": 1.0, "gpu_buffer": 1.0} for op in view.ops}, **kw)


def test_a_layout_change_costs_a_transform():
    view = linear_view(2)
    costs = _table(view, transform_fixed=0.25)
    on_buffer = Chain(("c1",), "none", 1.0, "buffer")
    # c1's input t0 made on images: the GPU on buffers first transforms it.
    assert chain_cost(view, on_buffer, costs, {"t0": "image"}).total == pytest.approx(1.25)
    assert chain_cost(view, on_buffer, costs, {"t0": "gpu"}).total == pytest.approx(1.0)
    on_image = Chain(("c1",), "none", 1.0, "image")
    assert chain_cost(view, on_image, costs, {"t0": "image"}).total == pytest.approx(1.0)
    assert chain_cost(view, on_image, costs, {"t0": "gpu"}).total == pytest.approx(1.25)


def test_plan_cost_follows_where_each_chain_left_its_outputs():
    view = linear_view(3)
    costs = _table(view, transform_fixed=0.25, sync_s=0.5)
    same = [Chain(("c0",), "none", 1.0, "buffer"), Chain(("c1",), "none", 1.0, "buffer"),
            Chain(("c2",), "none", 1.0, "buffer")]
    assert plan_cost(view, same, costs) == pytest.approx(3.0)  # nothing moves, nobody waits
    mixed = [Chain(("c0",), "none", 1.0, "buffer"), Chain(("c1",), "none", 1.0, "image"),
             Chain(("c2",), "none", 1.0, "buffer")]
    assert plan_cost(view, mixed, costs) == pytest.approx(3.5)  # two layout changes
    cpu_then_gpu = [Chain(("c0", "c1"), "none", 0.0, "buffer"), Chain(("c2",), "none", 1.0, "buffer")]
    assert plan_cost(view, cpu_then_gpu, costs) == pytest.approx(3.5)  # the GPU syncs on the CPU's output


def test_buffer_height_chains_hold_one_op(soc):
    g = fuse_relu(zoo.build("squeezenet", input_size=35))
    names = [op.name for op in g.ops]
    plan = Plan("bad", [Chain(tuple(names[:2]), "H", 0.5, "buffer"), Chain(tuple(names[2:]), "none", 0.0)])
    with pytest.raises(ValueError, match="height-split chain on shared buffers"):
        Executor(g, plan, soc)
