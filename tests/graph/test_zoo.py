"""Model zoo: every model builds, parameter and MAC counts match the published ones,
minimum input sizes hold, and small inputs run through the interpreter to finite,
non-degenerate outputs."""
from __future__ import annotations

import numpy as np
import pytest

from coinfer.graph import interpret, zoo
from tests.tolerance import assert_close

# name: (our parameter count, published count, relative tolerance, output shape at default size)
PARAMS = {
    # groups=1 (one device): conv2/4/5 have twice the weights of the two-tower original.
    "alexnet": (62_378_344, 60_965_224, 0.03, (1, 1000)),
    # Caffe model zoo NIN; Guo (IC2E 2018) lists its file as 29 MB (= 7.6M float32 in MiB).
    "nin": (7_595_176, 7_595_176, 0.0, (1, 1000)),
    "squeezenet": (1_248_424, 1_248_424, 0.0, (1, 1000)),
    "vgg16": (138_357_544, 138_357_544, 0.0, (1, 1000)),
    # BN folded: torchvision's count minus one parameter per BN channel (4,800).
    "resnet18": (11_684_712, 11_689_512, 0.001, (1, 1000)),
    # BN folded; the paper gives 4.2M.
    "mobilenet_v1": (4_221_032, 4_200_000, 0.01, (1, 1000)),
    # darknet tiny-yolo-voc (conv7, conv8 both 1024 wide); its weights file is ~63.5 MB.
    "yolov2_tiny": (15_858_717, 15_858_717, 0.0, (1, 125, 13, 13)),
}

# Published multiply-accumulates at the default input size (2 FLOPs each).
MACS = {
    "vgg16": 15.47e9,
    "resnet18": 1.81e9,
    "mobilenet_v1": 569e6,
    "squeezenet": 0.837e9,
    "alexnet": 1.14e9,  # groups=1; 0.72e9 for the two-tower original
}

# Small inputs that keep the reference kernels fast.
SMALL = {"alexnet": 67, "nin": 67, "squeezenet": 35, "vgg16": 32, "resnet18": 32,
         "mobilenet_v1": 32, "yolov2_tiny": 32}


def test_names():
    assert zoo.names() == list(PARAMS)


@pytest.mark.parametrize("name", list(PARAMS))
def test_builds_with_published_parameter_count(name):
    g = zoo.build(name, weights=False)
    ours, published, rel, out_shape = PARAMS[name]
    assert g.num_params() == ours
    assert abs(ours - published) <= rel * published
    assert g.shape(g.outputs[0]) == out_shape
    assert g.shape("data") == (1, 3, zoo.DEFAULT_SIZE[name], zoo.DEFAULT_SIZE[name])
    assert all(min(t.shape) >= 1 for t in g.tensors.values())
    if name in MACS:
        macs = sum(g.flops(op) for op in g.ops if op.type in ("conv", "fc")) / 2
        assert abs(macs - MACS[name]) <= 0.02 * MACS[name]


def test_known_layer_shapes():
    g = zoo.build("alexnet", weights=False)
    assert g.shape("conv1") == (1, 96, 55, 55)
    assert g.shape("pool5") == (1, 256, 6, 6) and g.shape("flatten") == (1, 9216)
    g = zoo.build("squeezenet", weights=False)
    assert g.shape("conv1") == (1, 96, 111, 111) and g.shape("pool1") == (1, 96, 55, 55)
    assert g.shape("fire9_concat") == (1, 512, 13, 13)
    g = zoo.build("nin", weights=False)
    assert g.shape("pool1") == (1, 96, 27, 27) and g.shape("cccp8") == (1, 1000, 6, 6)
    g = zoo.build("resnet18", weights=False)
    assert g.shape("layer4_1_add") == (1, 512, 7, 7)
    assert g.op("layer2_0_downsample").attrs["stride"] == (2, 2)
    g = zoo.build("mobilenet_v1", weights=False)
    assert g.op("conv13_dw").attrs["groups"] == 512 and g.shape("conv13_dw") == (1, 512, 7, 7)
    assert g.op("conv14_dw").attrs["groups"] == 1024 and g.shape("conv14_pw") == (1, 1024, 7, 7)
    assert g.op("conv14_pw_relu6").type == "clip"
    g = zoo.build("yolov2_tiny", weights=False)
    assert g.shape("pool5") == (1, 256, 13, 13) and g.shape("pool6") == (1, 512, 13, 13)


@pytest.mark.parametrize("name", list(PARAMS))
def test_minimum_input_size(name):
    m = zoo.MIN_SIZE[name]
    g = zoo.build(name, input_size=m, batch=3, weights=False)
    assert g.shape("data") == (3, 3, m, m)
    assert all(min(t.shape) >= 1 for t in g.tensors.values())
    if m > 1:
        with pytest.raises(ValueError, match=f">= {m}"):
            zoo.build(name, input_size=(m, m - 1), weights=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown model 'lenet'"):
        zoo.build("lenet")
    with pytest.raises(TypeError, match="input_size"):
        zoo.build("nin", input_size=64.0)
    with pytest.raises(ValueError, match="batch"):
        zoo.build("nin", batch=0)


def test_seeded_he_weights():
    a = zoo.build("squeezenet", input_size=35, seed=1)
    b = zoo.build("squeezenet", input_size=35, seed=1)
    c = zoo.build("squeezenet", input_size=35, seed=2)
    wa, wb, wc = (g.op("fire9_expand3x3").params["w"] for g in (a, b, c))
    assert wa.dtype == np.float32 and np.array_equal(wa, wb) and not np.array_equal(wa, wc)
    fan_in = 64 * 3 * 3
    assert abs(wa.std() / np.sqrt(2 / fan_in) - 1) < 0.02
    assert np.abs(a.op("fire9_expand3x3").params["b"]).max() < 0.1


@pytest.mark.parametrize("name", list(PARAMS))
def test_small_input_runs_finite_and_non_degenerate(name):
    g = zoo.build(name, input_size=SMALL[name], batch=2)
    x = np.random.default_rng(0).standard_normal(g.shape("data")).astype(np.float32)
    y = interpret.run(g, x)
    assert y.shape == g.shape(g.outputs[0])
    assert np.isfinite(y).all()
    flat = y.reshape(2, -1)
    assert (flat.std(axis=1) > 0).all()  # not constant per image, so not all-zero either
    if g.op(g.outputs[0]).type == "softmax":
        assert_close(flat.sum(axis=1), np.ones(2), "softmax rows")
        assert flat.max() < 0.999  # not collapsed to one class


def test_buffer_kernels_match_reference_on_a_zoo_model():
    from coinfer.kernels import buffer

    if not hasattr(buffer, "conv2d"):
        pytest.skip("coinfer.kernels.buffer has no conv2d yet")
    g = zoo.build("squeezenet", input_size=35, batch=1)
    x = np.random.default_rng(1).standard_normal(g.shape("data")).astype(np.float32)
    got = interpret.run(g, x, buffer, all_tensors=True)
    want = interpret.run(g, x, all_tensors=True)
    for op in g.ops:
        assert_close(got[op.output], want[op.output], op.name)
