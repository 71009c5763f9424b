"""onnxruntime as the test peer: one-thread sessions over models built with onnx.helper.

Each helper skips the calling test when onnx or onnxruntime is missing.
"""
from __future__ import annotations

import numpy as np
import pytest


def _modules():
    return pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")


def run_model(model, feed) -> np.ndarray:
    """First output of ``model`` on ``feed`` (a dict, or one array for the first input)."""
    _, ort = _modules()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    if not isinstance(feed, dict):
        feed = {sess.get_inputs()[0].name: feed}
    return sess.run(None, feed)[0]


def run_node(op: str, inputs: list, *, consts=None, opset: int = 19, **attrs) -> np.ndarray:
    """Run one ONNX node in onnxruntime on float32 ``inputs``.

    ``consts`` (name -> array or None) are further node inputs given as
    initializers, after ``inputs``; None is an omitted optional input.
    """
    onnx, _ = _modules()
    helper, TensorProto, numpy_helper = onnx.helper, onnx.TensorProto, onnx.numpy_helper
    names = [f"i{j}" for j in range(len(inputs))]
    inits = []
    for name, v in (consts or {}).items():
        names.append("" if v is None else name)
        if v is not None:
            inits.append(numpy_helper.from_array(np.asarray(v), name))
    while names and names[-1] == "":
        names.pop()
    g = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)], "one_node",
        [helper.make_tensor_value_info(nm, TensorProto.FLOAT, a.shape) for nm, a in zip(names, inputs)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return run_model(model, {nm: np.asarray(a, np.float32) for nm, a in zip(names, inputs)})


def resize_linear(x: np.ndarray, size) -> np.ndarray:
    """ONNX Resize mode=linear, half_pixel, of NCHW ``x`` to (N, C, *size)."""
    sizes = np.array([x.shape[0], x.shape[1], *size], np.int64)
    return run_node("Resize", [x], consts={"roi": None, "scales": None, "sizes": sizes}, mode="linear",
                    coordinate_transformation_mode="half_pixel")
