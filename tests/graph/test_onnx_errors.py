"""Every ONNX import error path: a ValueError that names the node, its op type, the attribute
or input, and what was expected versus given; ``coinfer run`` turns each into one line on
stderr and exit status 2.  And the import rules that are not errors: Clip with min > max
(every element becomes max), Dropout with training_mode False."""
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from coinfer.graph import interpret  # noqa: E402
from coinfer.graph import onnx as gonnx  # noqa: E402
from coinfer.graph.studies.cli import main  # noqa: E402
from tests.onnx_peer import run_model  # noqa: E402
from tests.tolerance import assert_close  # noqa: E402

X = [1, 4, 6, 6]


def _w(*shape, dtype=np.float32):
    return (np.random.default_rng(len(shape)).standard_normal(shape) * 0.3).astype(dtype)


def model(nodes, inits=None, *, inputs=None, outputs=("y",), opset=13):
    """A model over input x (1, 4, 6, 6); ``inits`` name -> array; ``inputs`` extra value infos."""
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, X)] + list(inputs or [])
    g = helper.make_graph(nodes, "errors", ins, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                 for o in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def node(op, ins, outs=("y",), name="bad", **attrs):
    return helper.make_node(op, list(ins), list(outs), name=name, **attrs)


def conv_then(nd, inits=None, **kw):
    """A Conv ('c', 8 channels) then node ``nd``."""
    return model([node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), nd],
                 {"w": _w(8, 4, 3, 3), **(inits or {})}, **kw)


def _scalar_input(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [])


ERRORS = {
    # Dropout
    "dropout training mode": (model([node("Dropout", ["x", "r", "t"])], {"r": np.float32(0.5), "t": np.bool_(True)}),
                              r"'bad' \(Dropout\): input 2 \(training_mode\) is True.*random"),
    "dropout mask read": (model([node("Dropout", ["x"], ["d", "m"]), node("Cast", ["m"], ["y"], name="user", to=1)]),
                          r"'bad' \(Dropout\): output 1 \(mask\) 'm' is read by node 'user'"),
    "dropout mask output": (model([node("Dropout", ["x"], ["y", "m"])], outputs=("y", "m")),
                            r"'bad' \(Dropout\): output 1 \(mask\) 'm' is a graph output"),
    "dropout training mode not constant": (
        model([node("Dropout", ["x", "r", "t"])], {"r": np.float32(0.5)},
              inputs=[helper.make_tensor_value_info("t", TensorProto.BOOL, [])]),
        r"'bad' \(Dropout\): input 2 \(training_mode\) 't' must be a constant.*graph input"),
    # Clip
    "clip bound not constant (rank 0)": (model([node("Clip", ["x", "lo"])], inputs=[_scalar_input("lo")]),
                                          r"'bad' \(Clip\): input 1 \(min\) 'lo' must be a constant.*graph input"
                                          r".*shape \(\) \(rank 0\)"),
    "clip bound computed": (model([node("Relu", ["x"], ["r"], name="r"), node("Clip", ["x", "", "r"])]),
                            r"'bad' \(Clip\): input 2 \(max\) 'r' must be a constant.*computed by a node"),
    "clip bound not scalar": (model([node("Clip", ["x", "lo"])], {"lo": np.zeros(2, np.float32)}),
                              r"'bad' \(Clip\): input 1 \(min\) must be a scalar, got shape \(2,\)"),
    "clip bound nan": (model([node("Clip", ["x", "lo"])], {"lo": np.float32(np.nan)}),
                       r"'bad' \(Clip\): min must be a number, got NaN"),
    "clip bound float64": (model([node("Clip", ["x", "lo"])], {"lo": np.float64(0)}),
                           r"'bad' \(Clip\): input 1 \(min\) 'lo' must be float32, got float64"),
    # Conv and BatchNormalization
    "conv weights not constant": (model([node("Conv", ["x", "w"])], inputs=[
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [8, 4, 3, 3])]),
        r"'bad' \(Conv\): input 1 \(weights\) 'w' must be a constant.*graph input"),
    "conv weights missing": (model([node("Conv", ["x", "w"])]),
                             r"'bad' \(Conv\): input 1 \(weights\) 'w' must be a constant.*no tensor of that name"),
    "conv weights float64": (model([node("Conv", ["x", "w"])], {"w": _w(8, 4, 3, 3, dtype=np.float64)}),
                             r"'bad' \(Conv\): input 1 \(weights\) 'w' must be float32, got float64"),
    "conv weights 3-D": (model([node("Conv", ["x", "w"])], {"w": _w(8, 4, 3)}),
                         r"'bad' \(Conv\): only 2-D convolution.*got input \(1, 4, 6, 6\) and weights \(8, 4, 3\)"),
    "conv groups misfit": (model([node("Conv", ["x", "w"], group=3)], {"w": _w(6, 1, 3, 3)}),
                           r"'bad' \(Conv\).*input channels 4 and weight shape \(6, 1, 3, 3\) do not fit groups=3"),
    "conv bias shape": (model([node("Conv", ["x", "w", "b"])], {"w": _w(8, 4, 3, 3), "b": _w(3)}),
                        r"'bad' \(Conv\): input 2 \(bias\) must have shape \(8,\).*got \(3,\)"),
    "conv kernel_shape": (model([node("Conv", ["x", "w"], kernel_shape=[2, 2])], {"w": _w(8, 4, 3, 3)}),
                          r"'bad' \(Conv\): attribute kernel_shape must match the weights' \[3, 3\], got \[2, 2\]"),
    "conv pads count": (model([node("Conv", ["x", "w"], pads=[1, 1])], {"w": _w(8, 4, 3, 3)}),
                        r"'bad' \(Conv\): attribute pads must have 4 values, got \[1, 1\]"),
    "conv auto_pad": (model([node("Conv", ["x", "w"], auto_pad="FULL")], {"w": _w(8, 4, 3, 3)}),
                      r"'bad' \(Conv\): attribute auto_pad must be NOTSET.*got 'FULL'"),
    "conv window too large": (model([node("Conv", ["x", "w"])], {"w": _w(8, 4, 7, 7)}),
                              r"'bad' \(Conv\).*window 7 is larger than the padded input"),
    "bn alone": (model([node("BatchNormalization", ["x", "s", "b", "m", "v"])],
                       {k: np.ones(4, np.float32) for k in "sbmv"}),
                 r"'bad' \(BatchNormalization\): expected right after a Conv.*got input 0 'x'"),
    "bn training mode": (conv_then(node("BatchNormalization", ["c", "s", "b", "m", "v"], training_mode=1),
                                   {k: np.ones(8, np.float32) for k in "sbmv"}, opset=15),
                         r"'bad' \(BatchNormalization\): attribute training_mode must be 0.*got 1"),
    "bn channels": (conv_then(node("BatchNormalization", ["c", "s", "b", "m", "v"]),
                              {k: np.ones(3, np.float32) for k in "sbmv"}),
                    r"'bad' \(BatchNormalization\): input scale must have 8 values.*got 3"),
    # pools
    "pool 3-D": (model([node("Flatten", ["x"], ["f"], name="f"), node("MaxPool", ["f"], kernel_shape=[2])]),
                 r"'bad' \(MaxPool\): only 2-D pooling.*expected a 4-D input, got shape \(1, 144\)"),
    "pool indices": (model([node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])]),
                     r"'bad' \(MaxPool\): output 1 \(Indices\) is not supported"),
    "pool kernel missing": (model([node("AveragePool", ["x"])]), r"'bad' \(AveragePool\): missing attribute kernel_shape"),
    "pool dilations": (model([node("MaxPool", ["x"], kernel_shape=[2, 2], dilations=[2, 2])]),
                       r"'bad' \(MaxPool\): dilated pooling.*expected dilations \[1, 1\], got \[2, 2\]"),
    "pool pad >= kernel": (model([node("MaxPool", ["x"], kernel_shape=[2, 2], pads=[2, 0, 0, 0])]),
                           r"'bad' \(MaxPool\).*padding \(2, 0, 0, 0\) must be smaller than kernel \(2, 2\)"),
    # Gemm, MatMul, Add
    "gemm transA": (model([node("Flatten", ["x"], ["f"], name="f"), node("Gemm", ["f", "B"], transA=1)],
                          {"B": _w(144, 3)}), r"'bad' \(Gemm\): attribute transA must be 0.*got 1"),
    "gemm B 3-D": (model([node("Flatten", ["x"], ["f"], name="f"), node("Gemm", ["f", "B"])], {"B": _w(144, 3, 1)}),
                   r"'bad' \(Gemm\): input 1 \(B\) must be 2-D, got shape \(144, 3, 1\)"),
    "gemm B rows": (model([node("Flatten", ["x"], ["f"], name="f"), node("Gemm", ["f", "B"])], {"B": _w(140, 3)}),
                    r"'bad' \(Gemm\).*weight 'w' must have shape \(M, 144\), got \(3, 140\)"),
    "gemm bias": (model([node("Flatten", ["x"], ["f"], name="f"), node("Gemm", ["f", "B", "C"])],
                        {"B": _w(144, 3), "C": _w(2)}),
                  r"'bad' \(Gemm\): bias shape \(2,\) is not \(M,\), \(1, M\) or a scalar, with M = 3"),
    "matmul 4-D input": (model([node("MatMul", ["x", "B"])], {"B": _w(6, 3)}),
                         r"'bad' \(MatMul\).*input \(flatten it first\) must be 2-D, got shape \(1, 4, 6, 6\)"),
    "add constant": (model([node("Add", ["x", "k"])], {"k": _w(1, 4, 1, 1)}),
                     r"'bad' \(Add\): an Add with a constant operand is only supported right after a MatMul"),
    "add shapes": (model([node("MaxPool", ["x"], ["p"], name="p", kernel_shape=[2, 2]), node("Add", ["x", "p"])]),
                   r"'bad' \(Add\).*input shapes must be equal.*\(1, 4, 6, 6\) and \(1, 4, 5, 5\)"),
    # axes
    "softmax axis range": (model([node("Softmax", ["x"], axis=4)]),
                           r"'bad' \(Softmax\): attribute axis must be in \[-4, 3\] for a rank-4 input, got 4"),
    "softmax old opset": (model([node("Softmax", ["x"], axis=1)], opset=11),
                          r"'bad' \(Softmax\): opset 11 Softmax normalises over all axes >= 1"),
    "concat axis range": (model([node("Concat", ["x", "x"], axis=-5)]),
                          r"'bad' \(Concat\): attribute axis must be in \[-4, 3\].*got -5"),
    "concat axis missing": (model([node("Concat", ["x", "x"])]), r"'bad' \(Concat\): missing attribute axis"),
    "flatten axis range": (model([node("Flatten", ["x"], axis=5)]),
                           r"'bad' \(Flatten\): attribute axis must be in \[-4, 4\].*got 5"),
    "flatten axis 2": (model([node("Flatten", ["x"], axis=2)]),
                       r"'bad' \(Flatten\): only axis 1.*got axis 2 on a rank-4 input"),
    # reshape, LRN, constants, nodes, inputs, outputs
    "reshape 3-D": (model([node("Reshape", ["x", "s"])], {"s": np.array([1, 4, 36], np.int64)}),
                    r"'bad' \(Reshape\): only reshapes to 2-D are supported, got shape \[1, 4, 36\]"),
    "reshape shape float": (model([node("Reshape", ["x", "s"])], {"s": np.array([1, -1], np.float32)}),
                            r"'bad' \(Reshape\): input 1 \(shape\) 's' must be int64, got float32"),
    "reshape size": (model([node("Reshape", ["x", "s"])], {"s": np.array([1, 100], np.int64)}),
                     r"'bad' \(Reshape\).*cannot reshape \(1, 4, 6, 6\) \(144 elements\) to \(1, 100\)"),
    "lrn size missing": (model([node("LRN", ["x"])]), r"'bad' \(LRN\): missing attribute size"),
    "constant kind": (model([node("Constant", [], ["k"], value_string="s"), node("Relu", ["x"], name="r")]),
                      r"'bad' \(Constant\): expected attribute value.*got \['value_string'\]"),
    "unsupported op": (model([node("Sigmoid", ["x"])]), r"'bad' \(Sigmoid\): unsupported op type; supported: Conv"),
    "unsupported domain": (model([helper.make_node("Relu", ["x"], ["y"], name="bad", domain="com.example")]),
                           r"'bad' \(Relu\): unsupported op type in domain 'com.example'"),
    "activation expected": (model([node("Relu", ["k"])], {"k": _w(2)}),
                            r"'bad' \(Relu\): input 0 'k' is a constant; an activation is expected there"),
    "unknown input": (model([node("Relu", ["nowhere"])]),
                      r"'bad' \(Relu\): input 0 'nowhere' is not produced by any earlier node nor a graph input"),
    "input int": (model([node("Add", ["x", "i"])], inputs=[helper.make_tensor_value_info("i", TensorProto.INT64, X)]),
                  r"onnx input 'i': expected a float32 tensor, got element type INT64; it is read by node 'bad' "
                  r"\(Add\) input 1"),
    "input dim not fixed": (model([node("Add", ["x", "i"])],
                                  inputs=[helper.make_tensor_value_info("i", TensorProto.FLOAT, [1, "C", 6, 6])]),
                            r"onnx input 'i': dimension 1 must be a fixed size >= 1, got 'C'; it is read by node "
                            r"'bad' \(Add\)"),
    "output is input": (model([node("Identity", ["x"])]),
                        r"onnx output 'y' is the graph input 'x' itself"),
    "output unknown": (model([node("Relu", ["x"], ["r"])]), r"onnx output 'y' is not computed by any supported node"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_import_error_names_node_input_and_expectation(case, tmp_path, capsys):
    m, pattern = ERRORS[case]
    with pytest.raises(ValueError, match=pattern):
        gonnx.load(m)
    path = tmp_path / "bad.onnx"
    path.write_bytes(m.SerializeToString())
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coinfer run: ") and "Traceback" not in err
    assert "'bad'" in err or "onnx input" in err or "onnx output" in err


def test_cli_debug_shows_the_traceback(tmp_path):
    m, _ = ERRORS["dropout training mode"]
    path = tmp_path / "bad.onnx"
    path.write_bytes(m.SerializeToString())
    with pytest.raises(ValueError, match="training_mode"):
        main(["run", str(path), "--quiet", "--debug"])
    with pytest.raises(ValueError, match="training_mode"):
        main(["--debug", "run", str(path), "--quiet"])


@pytest.mark.parametrize("lo, hi", [(1.0, -1.0), (0.5, 0.5), (2.0, np.inf)])
def test_clip_min_above_max_follows_the_spec(lo, hi):
    inits = {"lo": np.float32(lo)} | ({} if np.isinf(hi) else {"hi": np.float32(hi)})
    m = model([node("Clip", ["x", "lo"] + (["hi"] if "hi" in inits else []))], inits)
    x = np.random.default_rng(0).standard_normal(X).astype(np.float32)
    x[0, 0, 0, :2] = np.nan
    g = gonnx.load(m)
    want = run_model(m, x)
    got = interpret.run(g, x)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert_close(np.nan_to_num(got), np.nan_to_num(want), "clip")


def test_dropout_inference_mode_is_the_identity():
    m = model([node("Dropout", ["x", "r", "t"], ["y", "mask"])], {"r": np.float32(0.5), "t": np.bool_(False)},
              opset=13)
    x = np.random.default_rng(1).standard_normal(X).astype(np.float32)
    assert_close(interpret.run(gonnx.load(m), x), run_model(m, x), "dropout")
