"""Graph IR: shape inference, FLOPs and bytes, topological order, validation, relu fusion."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from coinfer.graph import interpret
from coinfer.graph.ir import Graph, GraphBuilder, Op, fuse_relu
from coinfer.kernels import reference as ref
from tests.tolerance import assert_close


def zeros(*shape):
    return np.zeros(shape, np.float32)


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def test_alexnet_conv1_shape_flops_bytes():
    b = GraphBuilder("c1", {"data": (1, 3, 227, 227)})
    b.add("conv", "conv1", ["data"], params={"w": zeros(96, 3, 11, 11), "b": zeros(96)},
          stride=4, relu=True)
    g = b.build()
    assert g.shape("conv1") == (1, 96, 55, 55)
    assert g.flops("conv1") == 2 * 96 * 3 * 11 * 11 * 55 * 55
    weights = 96 * 3 * 11 * 11 + 96
    assert g.bytes("conv1") == 4 * (3 * 227 * 227 + 96 * 55 * 55 + weights)
    assert g.num_params() == weights
    assert g.op("conv1").attrs == {"stride": (4, 4), "padding": (0, 0, 0, 0),
                                   "dilation": (1, 1), "groups": 1, "relu": True}


def test_shapes_of_each_op_type():
    b = GraphBuilder("all", {"x": (2, 8, 13, 13)})
    c = b.add("conv", "dw", ["x"], params={"w": zeros(8, 1, 3, 3)}, padding=(1, 1), groups=8)
    p = b.add("maxpool", "pool", [c], kernel=3, stride=2, ceil_mode=True)
    a = b.add("avgpool", "apool", [c], kernel=3, stride=2, padding=(1, 1, 0, 0))
    q = b.add("concat", "cat", [p, a], axis=-3)
    n = b.add("lrn", "norm", [q], size=3)
    s = b.add("add", "sum", [n, q], relu=True)
    cl = b.add("clip", "relu6", [s], min=0.0, max=6.0)
    gp = b.add("globalavgpool", "gap", [cl])
    f = b.add("flatten", "flat", [gp])
    r = b.add("reshape", "rs", [cl], shape=(0, -1))
    r2 = b.add("reshape", "rs2", [cl], shape=(-1, 36))
    d = b.add("dropout", "drop", [f])
    fc = b.add("fc", "fc", [d], params={"w": zeros(5, 16), "b": zeros(5)})
    sm = b.add("softmax", "prob", [fc], axis=-1)
    g = b.build([sm, r, r2])
    s = g.shape
    assert s("dw") == (2, 8, 13, 13)
    assert s("pool") == (2, 8, 6, 6)  # ceil((13-3)/2)+1
    assert s("apool") == (2, 8, 6, 6)  # (13+1-3)//2+1
    assert s("cat") == (2, 16, 6, 6) and g.op("cat").attrs["axis"] == 1
    assert s("norm") == s("sum") == s("relu6") == (2, 16, 6, 6)
    assert s("gap") == (2, 16, 1, 1) and s("flat") == s("drop") == (2, 16)
    assert s("rs") == (2, 16 * 36) and s("rs2") == (32, 36)
    assert s("fc") == s("prob") == (2, 5)
    assert g.op("prob").attrs["axis"] == 1
    assert g.op("relu6").attrs == {"min": 0.0, "max": 6.0}
    assert g.op("apool").attrs["count_include_pad"] is False
    assert g.op("pool").attrs["stride"] == (2, 2) and g.op("pool").attrs["padding"] == (0,) * 4
    assert g.outputs == ["prob", "rs", "rs2"]


def test_pool_ceil_mode_drops_a_window_starting_in_padding():
    b = GraphBuilder("p", {"x": (1, 1, 5, 5)})
    b.add("maxpool", "p", ["x"], kernel=2, stride=2, padding=1, ceil_mode=True)
    # ceil((5+2-2)/2)+1 = 4, but window 3 would start at 6 >= 5+1, so 3.
    assert b.build().shape("p") == (1, 1, 3, 3)


def test_flops_rules():
    b = GraphBuilder("f", {"x": (2, 4, 6, 6)})
    b.add("maxpool", "p", ["x"], kernel=(2, 3), stride=1)
    b.add("lrn", "n", ["x"], size=5)
    b.add("globalavgpool", "g", ["x"])
    b.add("flatten", "fl", ["g"])
    b.add("fc", "fc", ["fl"], params={"w": zeros(7, 4)})
    b.add("softmax", "s", ["fc"])
    b.add("relu", "r", ["x"])
    b.add("concat", "c", ["x", "r"])
    g = b.build()
    assert g.flops("p") == 2 * 4 * 5 * 4 * 6
    assert g.flops("n") == 2 * 4 * 36 * (2 * 5 + 3)
    assert g.flops("g") == 2 * 4 * 36
    assert g.flops("fc") == 2 * 2 * 7 * 4
    assert g.flops("s") == 3 * 2 * 7
    assert g.flops("r") == 2 * 4 * 36
    assert g.flops("c") == 0 and g.flops("fl") == 0
    assert g.total_flops() == sum(g.flops(op) for op in g.ops)


@given(
    c=st.integers(1, 4), h=st.integers(1, 12), w=st.integers(1, 12), oc=st.integers(1, 4),
    k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 2),
    pads=st.tuples(*[st.integers(0, 2)] * 4), groups=st.sampled_from([1, 2]),
)
def test_conv_shape_matches_reference(c, h, w, oc, k, s, d, pads, groups):
    c, oc = c * groups, oc * groups
    x = np.ones((1, c, h, w), np.float32)
    wt = np.ones((oc, c // groups, k, k), np.float32)
    b = GraphBuilder("c", {"x": x.shape})
    if h + pads[0] + pads[2] < d * (k - 1) + 1 or w + pads[1] + pads[3] < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="'conv'"):
            b.add("conv", "conv", ["x"], params={"w": wt}, stride=s, padding=pads,
                  dilation=d, groups=groups)
        return
    b.add("conv", "conv", ["x"], params={"w": wt}, stride=s, padding=pads, dilation=d,
          groups=groups)
    y = ref.conv2d(x, wt, stride=s, padding=pads, dilation=d, groups=groups)
    assert b.build().shape("conv") == y.shape


@given(
    h=st.integers(1, 12), w=st.integers(1, 12), kh=st.integers(1, 4), kw=st.integers(1, 4),
    s=st.integers(1, 3), pads=st.tuples(*[st.integers(0, 3)] * 4), ceil=st.booleans(),
    kind=st.sampled_from(["maxpool", "avgpool"]),
)
def test_pool_shape_matches_reference(h, w, kh, kw, s, pads, ceil, kind):
    x = np.ones((1, 2, h, w), np.float32)
    b = GraphBuilder("p", {"x": x.shape})
    t, l, bo, r = pads
    ok = max(t, bo) < kh and max(l, r) < kw and h + t + bo >= kh and w + l + r >= kw
    if not ok:
        with pytest.raises(ValueError, match="'pool'"):
            b.add(kind, "pool", ["x"], kernel=(kh, kw), stride=s, padding=pads, ceil_mode=ceil)
        return
    b.add(kind, "pool", ["x"], kernel=(kh, kw), stride=s, padding=pads, ceil_mode=ceil)
    f = ref.max_pool2d if kind == "maxpool" else ref.avg_pool2d
    y = f(x, (kh, kw), stride=s, padding=pads, ceil_mode=ceil)
    assert b.build().shape("pool") == y.shape


def diamond_ops():
    """x -> a (relu) -> {b (relu), c (relu)} -> d (add), listed out of order."""
    return [
        Op("d", "add", ["b", "c"], ["d"]),
        Op("c", "relu", ["a"], ["c"]),
        Op("a", "relu", ["x"], ["a"]),
        Op("b", "relu", ["a"], ["b"]),
    ]


def test_topological_order_is_stable_and_valid():
    g = Graph("diamond", {"x": (1, 2, 3, 3)}, diamond_ops())
    names = [op.name for op in g.topo_order()]
    assert names == ["a", "c", "b", "d"]  # the given order wherever dependencies allow
    assert g.outputs == ["d"]
    t = g.tensors["a"]
    assert t.producer == "a" and sorted(t.consumers) == ["b", "c"]
    assert g.tensors["x"].producer is None
    assert [op.name for op in g.consumers("a")] == t.consumers
    assert g.producer("d").name == "d" and g.exits == []


def test_unknown_input_tensor_names_the_op():
    ops = [Op("a", "relu", ["x"], ["a"]), Op("b", "relu", ["nope"], ["b"])]
    with pytest.raises(ValueError, match=r"'b'.*unknown input tensor 'nope'"):
        Graph("g", {"x": (1, 1, 2, 2)}, ops)


def test_cycle_names_the_ops():
    ops = [Op("a", "relu", ["x"], ["a"]), Op("b", "add", ["a", "c"], ["b"]),
           Op("c", "relu", ["b"], ["c"])]
    with pytest.raises(ValueError, match=r"cycle.*'b'.*'c'"):
        Graph("g", {"x": (1, 1, 2, 2)}, ops)


@pytest.mark.parametrize("ops, match", [
    ([Op("conv", "conv", ["x"], ["y"], params={"w": zeros(4, 2, 3, 3)})],
     r"'conv' \(conv\).*input channels 3"),
    ([Op("r", "relu", ["x"], ["r"]), Op("p", "maxpool", ["x"], ["p"], {"kernel": 2}),
      Op("s", "add", ["r", "p"], ["s"])], r"'s' \(add\).*must be equal"),
    ([Op("p", "maxpool", ["x"], ["p"], {"kernel": 2}),
      Op("c", "concat", ["x", "p"], ["c"])], r"'c' \(concat\).*differ"),
    ([Op("fc", "fc", ["x"], ["y"], params={"w": zeros(4, 48)})], r"'fc' \(fc\).*2-D"),
    ([Op("p", "maxpool", ["x"], ["p"], {"kernel": 5})], r"'p' \(maxpool\).*larger"),
    ([Op("conv", "conv", ["x"], ["y"])], r"'conv' \(conv\).*missing parameter 'w'"),
    ([Op("conv", "conv", ["x"], ["y"], params={"w": zeros(4, 3, 1, 1), "b": zeros(3)})],
     r"'conv' \(conv\).*'b'.*\(4,\)"),
    ([Op("z", "sigmoid", ["x"], ["z"])], r"'z' \(sigmoid\).*unknown op type"),
    ([Op("a", "relu", ["x"], ["y"]), Op("a", "relu", ["y"], ["z"])], r"'a'.*duplicate op name"),
    ([Op("a", "relu", ["x"], ["y"]), Op("b", "relu", ["x"], ["y"])], r"'b'.*already defined"),
    ([Op("r", "reshape", ["x"], ["r"], {"shape": (5, -1)})], r"'r' \(reshape\).*cannot reshape"),
    ([Op("a", "add", ["x"], ["a"])], r"'a' \(add\).*expects 2 input"),
])
def test_validation_errors_name_the_op(ops, match):
    with pytest.raises(ValueError, match=match):
        Graph("g", {"x": (1, 3, 4, 4)}, ops)


def test_bad_input_shape_and_output():
    with pytest.raises(ValueError, match="graph input 'x'"):
        Graph("g", {"x": (1, 0, 4, 4)}, [Op("a", "relu", ["x"], ["a"])])
    with pytest.raises(ValueError, match="unknown output tensor 'q'"):
        Graph("g", {"x": (1, 1, 4, 4)}, [Op("a", "relu", ["x"], ["a"])], outputs=["q"])


def small_net(rng, batch=2):
    """conv, relu, maxpool, {conv, relu, conv}, add, relu, gap, flatten, fc, relu;
    plus a second consumer of the last conv."""
    b = GraphBuilder("small", {"x": (batch, 3, 9, 9)})
    b.add("conv", "c1", ["x"], params={"w": rand(rng, 6, 3, 3, 3), "b": rand(rng, 6)}, padding=1)
    b.add("relu", "r1", ["c1"])
    b.add("maxpool", "p1", ["r1"], kernel=2, stride=2, ceil_mode=True)
    b.add("conv", "c2", ["p1"], params={"w": rand(rng, 6, 6, 3, 3)}, padding=1)
    b.add("relu", "r2", ["c2"])
    b.add("conv", "c3", ["r2"], params={"w": rand(rng, 6, 3, 1, 1), "b": rand(rng, 6)}, groups=2)
    b.add("add", "s", ["c3", "p1"])
    b.add("relu", "rs", ["s"])
    b.add("relu", "side", ["c3"])  # c3 has two consumers: nothing to fuse there
    b.add("globalavgpool", "g", ["rs"])
    b.add("flatten", "f", ["g"])
    b.add("fc", "fc", ["f"], params={"w": rand(rng, 4, 6), "b": rand(rng, 4)})
    b.add("relu", "out", ["fc"])
    return b.build(["out", "side"])


def test_fuse_relu_folds_only_sole_consumers_and_keeps_numbers():
    rng = np.random.default_rng(0)
    g = small_net(rng)
    f = fuse_relu(g)
    types = {op.name: (op.type, op.attrs.get("relu")) for op in f.ops}
    assert "r1" not in types and "r2" not in types and "rs" not in types and "out" not in types
    assert types["c1"] == ("conv", True) and types["s"] == ("add", True)
    assert types["fc"] == ("fc", True)
    assert types["c3"] == ("conv", False) and "side" in types
    assert f.outputs == g.outputs and f.op("c1").output == "r1"
    assert f.total_flops() < g.total_flops()
    x = rand(rng, 2, 3, 9, 9)
    y0, y1 = interpret.run(g, x), interpret.run(f, x)
    for t in g.outputs:
        assert_close(y1[t], y0[t], t)
    assert g.op("c1").attrs["relu"] is False  # the original graph is untouched


def test_with_batch_shares_weights():
    g = small_net(np.random.default_rng(1))
    g4 = g.with_batch(4)
    assert g4.shape("x") == (4, 3, 9, 9) and g4.shape("out") == (4, 4)
    assert g4.op("c1").params["w"] is g.op("c1").params["w"]
    assert g4.total_flops() == 2 * g.total_flops()


def test_summary_lists_ops_and_totals():
    g = small_net(np.random.default_rng(2))
    text = g.summary()
    assert "c1" in text and "conv" in text and "2x6x9x9" in text
    assert f"{g.num_params():,}" in text.splitlines()[-1]


def test_interpret_all_tensors_and_input_checks():
    rng = np.random.default_rng(3)
    g = small_net(rng)
    x = rand(rng, 2, 3, 9, 9)
    env = interpret.run(g, x, all_tensors=True)
    assert set(env) == set(g.tensors)
    assert_close(env["c1"], ref.conv2d(x, g.op("c1").params["w"], g.op("c1").params["b"],
                                       padding=1), "c1")
    with pytest.raises(ValueError, match="must have shape"):
        interpret.run(g, x[:1])
    with pytest.raises(ValueError, match="needs inputs"):
        interpret.run(g, {"y": x})
