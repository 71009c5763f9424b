"""Halo formula, region propagation and CoDL's chain search on hand-made cost tables."""
import pytest
from hypothesis import given, strategies as st

from coinfer.graph.coexec.chains import best_single, search, valid
from coinfer.graph.coexec.costmodel import chain_cost
from coinfer.graph.coexec.plan import Chain, Plan
from coinfer.graph.coexec.regions import band, chain_regions, gpu_channels, halo_padding, input_rows
from coinfer.graph.coexec.view import GraphView, OpView
from coinfer.graph.costs.source import TableCosts


def conv(name, x, y, c_in, c_out, h_in, h_out, *, k=3, s=1, p=1):
    return OpView(name, "conv", (x,), y, ((1, c_in, h_in, h_in),), (1, c_out, h_out, h_out),
                  stride=s, pad_top=p, kernel=k, splits=frozenset({"H", "OC"}))


def linear_view(n=4, h=32, c=16):
    ops, t = [], "in"
    for i in range(n):
        ops.append(conv(f"c{i}", t, f"t{i}", c, c, h, h))
        t = f"t{i}"
    shapes = {"in": (1, c, h, h), **{op.output: op.out_shape for op in ops}}
    return GraphView(ops, ("in",), (t,), shapes)


# -- halo ---------------------------------------------------------------------

@given(h_out=st.integers(1, 64), k=st.integers(1, 7), s=st.integers(1, 3))
def test_halo_padding_matches_same_padding(h_out, k, s):
    # An input just large enough for h_out outputs with no padding needs P = 0,
    # and every row less of input is one row of padding more.
    h_in = s * (h_out - 1) + k
    assert halo_padding(s, h_out, h_in, k) == 0
    assert halo_padding(s, h_out, h_in - 1, k) == 1


def test_halo_padding_codl_example():
    # 3x3 stride-1 conv keeping 112 rows: two rows of padding (one top, one bottom).
    assert halo_padding(1, 112, 112, 3) == 2


@given(h=st.integers(4, 40), k=st.integers(1, 5), s=st.integers(1, 3), data=st.data())
def test_input_rows_cover_every_window(h, k, s, data):
    p = data.draw(st.integers(0, k - 1))
    h_out = (h + 2 * p - k) // s + 1
    if h_out < 1:
        return
    r0 = data.draw(st.integers(0, h_out - 1))
    r1 = data.draw(st.integers(r0 + 1, h_out))
    lo, hi = input_rows((r0, r1), stride=s, pad_top=p, kernel=k, dilation=1, h_in=h)
    for r in range(r0, r1):
        for j in range(k):
            src = r * s - p + j
            if 0 <= src < h:
                assert lo <= src < hi
    assert 0 <= lo <= hi <= h


def test_chain_rows_grow_backwards():
    # Three 3x3 convs over 32 rows; the CPU's band of the last output is rows 16..31.
    reg = chain_regions(linear_view(3), Chain(("c0", "c1", "c2"), "H", 0.5))
    need = [reg.cpu.compute[n][:2] for n in ("c0", "c1", "c2")]
    assert need == [(14, 32), (15, 32), (16, 32)]


# -- regions --------------------------------------------------------------------

def test_h_chain_regions_have_halo_on_both_sides():
    view = linear_view(3)
    reg = chain_regions(view, Chain(("c0", "c1", "c2"), "H", 0.5))
    assert reg.gpu.compute == {"c0": (0, 18, 0, 16), "c1": (0, 17, 0, 16), "c2": (0, 16, 0, 16)}
    assert reg.cpu.compute == {"c0": (14, 32, 0, 16), "c1": (15, 32, 0, 16), "c2": (16, 32, 0, 16)}
    assert reg.cpu.needs == {"in": (13, 32, 0, 16)}
    assert reg.cpu.shares == {"t2": (16, 32, 0, 16)}


def test_oc_split_rounds_to_texels_and_reads_whole_input():
    view = linear_view(1, c=40)
    reg = chain_regions(view, Chain(("c0",), "OC", 0.5))
    g = gpu_channels(0.5, 40)
    assert g % 4 == 0
    assert reg.gpu.compute["c0"] == (0, 32, 0, g)
    assert reg.cpu.compute["c0"] == (0, 32, g, 40)
    assert reg.cpu.needs == {"in": (0, 32, 0, 40)}


def test_bands_partition_the_tensor():
    for r in (0.0, 0.3, 0.5, 1.0):
        for dim in ("H", "OC"):
            g, c = band((1, 30, 17, 5), dim, r, "gpu"), band((1, 30, 17, 5), dim, r, "cpu")
            if dim == "H":
                assert g[1] == c[0] and g[0] == 0 and c[1] == 17
            else:
                assert g[3] == c[2] and g[2] == 0 and c[3] == 30


# -- chain search on hand-made costs --------------------------------------------

def costs_for(view, cpu, gpu, **kw):
    return TableCosts({op.name: {"cpu": cpu, "gpu": gpu} for op in view.ops}, **kw)


def test_equal_processors_free_sharing_split_in_half():
    view = linear_view(1)
    cost, ch = best_single(view, "c0", costs_for(view, 1.0, 1.0))
    assert ch.split and ch.ratio == 0.5
    assert cost == pytest.approx(0.5)  # one op: each side computes only its band


def test_expensive_sharing_keeps_one_processor():
    view = linear_view(3)
    costs = costs_for(view, 2.0, 1.0, sync_s=5.0)
    chains = search(view, costs)
    assert all(c.device == "gpu" for c in chains)


def test_chains_amortise_sharing():
    view = linear_view(4)
    costs = costs_for(view, 1.0, 1.0, sync_s=0.2, transform_per_byte=1e-6)
    per_op = search(view, costs, chains=False)
    chained = search(view, costs, chains=True)
    t_per_op = sum(chain_cost(view, c, costs).total for c in per_op)
    t_chain = sum(chain_cost(view, c, costs).total for c in chained)
    assert len(per_op) == 4
    assert len(chained) < 4
    assert t_chain < t_per_op
    assert [n for c in chained for n in c.ops] == ["c0", "c1", "c2", "c3"]


def test_refine_never_raises_predicted_cost():
    from coinfer.graph.coexec.chains import refine

    view = linear_view(5)
    costs = costs_for(view, 1.0, 3.0, sync_s=0.05)
    for r in (0.1, 0.4, 0.9):
        ch = Chain(tuple(op.name for op in view.ops), "H", r)
        better = refine(view, ch, costs)
        assert chain_cost(view, better, costs).total <= chain_cost(view, ch, costs).total + 1e-12
    # cpu 1 s, gpu 3 s per op: the balanced height split gives the GPU about a quarter
    best = refine(view, Chain(tuple(op.name for op in view.ops), "H", 0.9), costs)
    assert best.dim == "H" and 0.2 <= best.ratio <= 0.3


def test_oc_chain_validity():
    ops = [conv("c0", "in", "t0", 8, 16, 8, 8),
           OpView("p0", "maxpool", ("t0",), "t1", ((1, 16, 8, 8),), (1, 16, 4, 4), stride=2, kernel=2,
                  splits=frozenset({"H", "OC"}), channel_local=True),
           conv("c1", "t1", "t2", 16, 16, 4, 4)]
    view = GraphView(ops, ("in",), ("t2",), {"in": (1, 8, 8, 8), "t0": (1, 16, 8, 8),
                                             "t1": (1, 16, 4, 4), "t2": (1, 16, 4, 4)})
    assert valid(view, ["c0", "p0"], "OC")
    assert not valid(view, ["c0", "p0", "c1"], "OC")
    assert valid(view, ["c0", "p0", "c1"], "H")


def test_chain_and_plan_validation():
    with pytest.raises(ValueError, match="dim"):
        Chain(("a",), "W", 0.5)
    with pytest.raises(ValueError, match="ratio"):
        Chain(("a",), "none", 0.5)
    p = Plan("codl", [Chain(("a", "b"), "H", 0.5), Chain(("c",), "none", 1.0)])
    assert p.n_chains == 1 and p.n_splits == 2
