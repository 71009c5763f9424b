"""The models that once crashed ``coinfer run`` (default: every strategy) with a traceback.

Each is an ONNX file built with the ``onnx`` package: Softmax at opset 13 on a 4-D
tensor with its default axis (-1), Concat along H and W, depthwise convs with a channel
multiplier of 2 and 3, grouped convs with groups other than 1 and C.  ``coinfer run
FILE.onnx`` exits 0 with every strategy in its JSON, and every strategy's output matches
onnxruntime within the project tolerance.
"""
import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from coinfer.graph import ops  # noqa: E402
from coinfer.graph.coexec.strategies import STRATEGIES  # noqa: E402
from coinfer.graph.costs.measured import MeasuredCosts  # noqa: E402
from coinfer.graph.coexec.lower import prepare  # noqa: E402
from coinfer.graph.studies.cli import main  # noqa: E402
from coinfer.graph.studies.coexec import load_model, run_strategies  # noqa: E402
from coinfer.hw import SoC  # noqa: E402
from tests.onnx_peer import run_model  # noqa: E402
from tests.tolerance import assert_close  # noqa: E402


def _model(nodes, inits, in_shape, opset=13):
    g = helper.make_graph(nodes, "issue", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _w(*shape):
    return (np.random.default_rng(sum(shape)).standard_normal(shape) * 0.3).astype(np.float32)


def softmax_default_axis():
    return _model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                   helper.make_node("Softmax", ["c"], ["y"], name="softmax")], {"w": _w(8, 4, 3, 3)}, [1, 4, 10, 10])


def concat(axis):
    return lambda: _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                           helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                           helper.make_node("Concat", ["c", "r"], ["cat"], axis=axis, name="concat"),
                           helper.make_node("Conv", ["cat", "w2"], ["y"], name="after")],
                          {"w": _w(4, 4, 3, 3), "w2": _w(8, 4, 1, 1)}, [1, 4, 10, 10])


def grouped(c, groups, oc):
    return lambda: _model([helper.make_node("Conv", ["x", "w"], ["g"], pads=[1, 1, 1, 1], group=groups, name="grouped"),
                           helper.make_node("Relu", ["g"], ["y"], name="relu")],
                          {"w": _w(oc, c // groups, 3, 3)}, [1, c, 10, 10])


CASES = {
    "softmax opset 13 default axis": softmax_default_axis,
    "concat axis 2": concat(2),
    "concat axis 3": concat(3),
    "depthwise multiplier 2": grouped(4, 4, 8),
    "depthwise multiplier 3": grouped(4, 4, 12),
    "grouped conv groups 2": grouped(8, 2, 8),
    "grouped conv groups 4 of 8": grouped(8, 4, 16),
}


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


@pytest.mark.parametrize("name", sorted(CASES))
def test_coinfer_run_all_strategies(name, tmp_path, capsys, soc):
    model = CASES[name]()
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["run", str(path), "--repeat", "1", "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["strategies"]] == list(STRATEGIES)
    x = np.random.default_rng(0).standard_normal((1, model.graph.input[0].type.tensor_type.shape.dim[1].dim_value,
                                                  10, 10), dtype=np.float32)
    want = run_model(model, x)
    g = load_model(str(path))
    costs = MeasuredCosts(g, soc, prepared=prepare(g), repeats=1, progress=False)
    results, outputs, _ = run_strategies(g, soc, list(STRATEGIES), x, repeat=1, progress=False, costs=costs)
    for r in results:
        assert_close(outputs[r.name], want, f"{name}: {r.name}")
    gpu = next(r for r in results if r.name == "gpu")
    assert gpu.fallback == [op.name for op in g.ops if not ops.supports(g, op, "image")]
    assert next(s for s in doc["strategies"] if s["name"] == "gpu")["fallback_ops"] == len(gpu.fallback)
