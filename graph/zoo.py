"""Model zoo: classic CNNs as :class:`~coinfer.graph.ir.Graph` s with seeded random weights.

``build(name, *, batch=1, input_size=None, seed=0, weights=True)`` returns the
model for a (batch, 3, H, W) input.  Weights are He-initialised float32 (normal,
std sqrt(2 / fan_in)) and biases are small (normal, std 0.01), so activations
stay finite and non-trivial through the whole depth.  With ``weights=False``
every parameter is a read-only zero view of the right shape that takes no
memory: enough for shapes, FLOPs, bytes and parameter counts.

Modelling choices, per model:

- ``alexnet``: BVLC AlexNet with groups=1 (one device), so conv2/4/5 have
  twice the published weights: 62,378,344 parameters against 60,965,224 for
  the two-tower original (:func:`bvlc_alexnet` builds that one, groups=2 on
  conv2/4/5).  LRN before each of the first two pools.
- ``nin``: Network-in-Network for ImageNet (Caffe model zoo), 224 input.
- ``squeezenet``: SqueezeNet 1.0; max pools 3/2 in ceil mode as in Caffe.
- ``vgg16``: VGG-16 (configuration D).
- ``resnet18``: batch norm folded into the convs (which gain a bias), so the
  count is torchvision's 11,689,512 minus one parameter per BN channel.  The
  last conv of each residual branch is drawn with half the He std: with full
  He the branch-plus-shortcut sum doubles the variance at every block and the
  softmax saturates to one class.
- ``mobilenet_v1``: MobileNet v1 1.0; ReLU6 is a separate ``clip`` op
  (min 0, max 6) after each conv; stride-2 convs use symmetric padding 1
  (Caffe style; same output sizes as TensorFlow's SAME at even inputs).
- ``yolov2_tiny``: darknet tiny-yolo-voc; its leaky ReLU is modelled as ReLU,
  its 2/2 max pools are ceil-mode (darknet's padding rule) and the 2/1 pool
  pads one cell at the bottom and right; the last 1x1 conv (125 channels) is
  linear, and there is no region/decoding layer.

Caffe-derived models (alexnet, nin, squeezenet) use ceil-mode pools.
Classifiers end in ``softmax`` over (N, 1000); the output tensor is ``prob``.

The branchy models with early exits (:data:`BRANCHY`: Edgent's B-AlexNet and
BranchyNet's B-LeNet, see :func:`branchy_alexnet`) are defined here too, with
He-initialised weights and zero biases; :mod:`coinfer.graph.edgent.models`
loads their trained weights, exit thresholds and accuracies.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .ir import Graph, GraphBuilder

#: Default (H, W) per model, as the original networks were trained.
DEFAULT_SIZE = {
    "alexnet": 227,
    "nin": 224,
    "squeezenet": 227,
    "vgg16": 224,
    "resnet18": 224,
    "mobilenet_v1": 224,
    "yolov2_tiny": 416,
}

#: Smallest input side per model that keeps every feature map at least 1x1.
MIN_SIZE = {
    "alexnet": 55,
    "nin": 55,
    "squeezenet": 29,
    "vgg16": 32,
    "resnet18": 1,
    "mobilenet_v1": 1,
    "yolov2_tiny": 17,
}


class _Net:
    """Layer helpers over a GraphBuilder that draw He-initialised weights in build order."""

    def __init__(self, name: str, batch: int, hw: tuple[int, int], seed: int, weights: bool, *,
                 in_channels: int = 3, zero_bias: bool = False):
        self.b = GraphBuilder(name, {"data": (batch, in_channels, *hw)})
        self.rng = np.random.default_rng(seed)
        self.weights = weights
        self.zero_bias = zero_bias  # biases all zero (none drawn) instead of normal, std 0.01

    def _bias(self, m: int) -> np.ndarray:
        return np.zeros(m, np.float32) if self.zero_bias else self._normal((m,), 0.01)

    def _normal(self, shape: tuple, std: float) -> np.ndarray:
        if not self.weights:
            return np.broadcast_to(np.float32(0.0), shape)
        a = self.rng.standard_normal(shape, dtype=np.float32)
        a *= np.float32(std)
        return a

    def channels(self, x: str) -> int:
        return self.b.shape(x)[1]

    def conv(self, name: str, x: str, oc: int, k: int, *, stride: int = 1, pad=0,
             groups: int = 1, relu: bool = True, gain: float = 1.0) -> str:
        cg = self.channels(x) // groups
        w = self._normal((oc, cg, k, k), gain * np.sqrt(2.0 / (cg * k * k)))
        b = self._bias(oc)
        return self.b.add("conv", name, [x], params={"w": w, "b": b}, stride=stride,
                          padding=pad, groups=groups, relu=relu)

    def fc(self, name: str, x: str, m: int, *, relu: bool = True) -> str:
        k = self.b.shape(x)[1]
        w = self._normal((m, k), np.sqrt(2.0 / k))
        b = self._bias(m)
        return self.b.add("fc", name, [x], params={"w": w, "b": b}, relu=relu)

    def maxpool(self, name: str, x: str, k: int, s: int, *, pad=0, ceil: bool = False) -> str:
        return self.b.add("maxpool", name, [x], kernel=k, stride=s, padding=pad, ceil_mode=ceil)

    def op(self, type: str, name: str, inputs: list[str], **attrs) -> str:
        return self.b.add(type, name, inputs, **attrs)

    def classifier(self, x: str, hidden: tuple[int, int], classes: int) -> str:
        """AlexNet's and VGG's classifier: flatten, fc6 and fc7 (``hidden`` widths, ReLU, each
        followed by dropout), fc8 to ``classes``, softmax ``prob``."""
        x = self.op("flatten", "flatten", [x])
        x = self.fc("fc6", x, hidden[0])
        x = self.op("dropout", "drop6", [x])
        x = self.fc("fc7", x, hidden[1])
        x = self.op("dropout", "drop7", [x])
        x = self.fc("fc8", x, classes, relu=False)
        return self.op("softmax", "prob", [x], axis=1)

    def classifier_head(self, x: str) -> str:
        """Global average pool, flatten, softmax (for nets whose last conv gives class maps)."""
        x = self.op("globalavgpool", "pool_global", [x])
        x = self.op("flatten", "flatten", [x])
        return self.op("softmax", "prob", [x], axis=1)


def _alexnet(n: _Net, towers: int = 1) -> str:
    x = n.conv("conv1", "data", 96, 11, stride=4)
    x = n.op("lrn", "norm1", [x], size=5, alpha=1e-4, beta=0.75, k=1.0)
    x = n.maxpool("pool1", x, 3, 2, ceil=True)
    x = n.conv("conv2", x, 256, 5, pad=2, groups=towers)
    x = n.op("lrn", "norm2", [x], size=5, alpha=1e-4, beta=0.75, k=1.0)
    x = n.maxpool("pool2", x, 3, 2, ceil=True)
    x = n.conv("conv3", x, 384, 3, pad=1)
    x = n.conv("conv4", x, 384, 3, pad=1, groups=towers)
    x = n.conv("conv5", x, 256, 3, pad=1, groups=towers)
    x = n.maxpool("pool5", x, 3, 2, ceil=True)
    return n.classifier(x, (4096, 4096), 1000)


def _nin(n: _Net) -> str:
    x = n.conv("conv1", "data", 96, 11, stride=4)
    x = n.conv("cccp1", x, 96, 1)
    x = n.conv("cccp2", x, 96, 1)
    x = n.maxpool("pool1", x, 3, 2, ceil=True)
    x = n.conv("conv2", x, 256, 5, pad=2)
    x = n.conv("cccp3", x, 256, 1)
    x = n.conv("cccp4", x, 256, 1)
    x = n.maxpool("pool2", x, 3, 2, ceil=True)
    x = n.conv("conv3", x, 384, 3, pad=1)
    x = n.conv("cccp5", x, 384, 1)
    x = n.conv("cccp6", x, 384, 1)
    x = n.maxpool("pool3", x, 3, 2, ceil=True)
    x = n.op("dropout", "drop", [x])
    x = n.conv("conv4", x, 1024, 3, pad=1)
    x = n.conv("cccp7", x, 1024, 1)
    x = n.conv("cccp8", x, 1000, 1)
    return n.classifier_head(x)


def _fire(n: _Net, name: str, x: str, squeeze: int, expand: int) -> str:
    s = n.conv(f"{name}_squeeze1x1", x, squeeze, 1)
    e1 = n.conv(f"{name}_expand1x1", s, expand, 1)
    e3 = n.conv(f"{name}_expand3x3", s, expand, 3, pad=1)
    return n.op("concat", f"{name}_concat", [e1, e3], axis=1)


def _squeezenet(n: _Net) -> str:
    x = n.conv("conv1", "data", 96, 7, stride=2)
    x = n.maxpool("pool1", x, 3, 2, ceil=True)
    x = _fire(n, "fire2", x, 16, 64)
    x = _fire(n, "fire3", x, 16, 64)
    x = _fire(n, "fire4", x, 32, 128)
    x = n.maxpool("pool4", x, 3, 2, ceil=True)
    x = _fire(n, "fire5", x, 32, 128)
    x = _fire(n, "fire6", x, 48, 192)
    x = _fire(n, "fire7", x, 48, 192)
    x = _fire(n, "fire8", x, 64, 256)
    x = n.maxpool("pool8", x, 3, 2, ceil=True)
    x = _fire(n, "fire9", x, 64, 256)
    x = n.op("dropout", "drop9", [x])
    x = n.conv("conv10", x, 1000, 1)
    return n.classifier_head(x)


def _vgg16(n: _Net) -> str:
    x = "data"
    for block, (width, reps) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, reps + 1):
            x = n.conv(f"conv{block}_{i}", x, width, 3, pad=1)
        x = n.maxpool(f"pool{block}", x, 2, 2)
    return n.classifier(x, (4096, 4096), 1000)


def _resnet18(n: _Net) -> str:
    x = n.conv("conv1", "data", 64, 7, stride=2, pad=3)
    x = n.maxpool("pool1", x, 3, 2, pad=1)
    for stage, width in enumerate([64, 128, 256, 512], 1):
        for blk in range(2):
            name = f"layer{stage}_{blk}"
            stride = 2 if stage > 1 and blk == 0 else 1
            y = n.conv(f"{name}_conv1", x, width, 3, stride=stride, pad=1)
            y = n.conv(f"{name}_conv2", y, width, 3, pad=1, relu=False, gain=0.5)
            if stride != 1 or n.channels(x) != width:
                x = n.conv(f"{name}_downsample", x, width, 1, stride=stride, relu=False)
            x = n.op("add", f"{name}_add", [y, x], relu=True)
    x = n.op("globalavgpool", "pool_global", [x])
    x = n.op("flatten", "flatten", [x])
    x = n.fc("fc", x, 1000, relu=False)
    return n.op("softmax", "prob", [x], axis=1)


def _mobilenet_v1(n: _Net) -> str:
    def relu6(name: str, x: str) -> str:
        return n.op("clip", f"{name}_relu6", [x], min=0.0, max=6.0)

    x = relu6("conv1", n.conv("conv1", "data", 32, 3, stride=2, pad=1, relu=False))
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
        (1024, 2), (1024, 1)]
    for i, (oc, s) in enumerate(plan, 2):
        c = n.channels(x)
        x = relu6(f"conv{i}_dw", n.conv(f"conv{i}_dw", x, c, 3, stride=s, pad=1, groups=c,
                                         relu=False))
        x = relu6(f"conv{i}_pw", n.conv(f"conv{i}_pw", x, oc, 1, relu=False))
    x = n.op("globalavgpool", "pool_global", [x])
    x = n.op("flatten", "flatten", [x])
    x = n.fc("fc", x, 1000, relu=False)
    return n.op("softmax", "prob", [x], axis=1)


def _yolov2_tiny(n: _Net) -> str:
    x = "data"
    for i, width in enumerate([16, 32, 64, 128, 256], 1):
        x = n.conv(f"conv{i}", x, width, 3, pad=1)
        x = n.maxpool(f"pool{i}", x, 2, 2, ceil=True)
    x = n.conv("conv6", x, 512, 3, pad=1)
    x = n.maxpool("pool6", x, 2, 1, pad=(0, 0, 1, 1))
    x = n.conv("conv7", x, 1024, 3, pad=1)
    x = n.conv("conv8", x, 1024, 3, pad=1)
    return n.conv("conv9", x, 125, 1, relu=False)


_BUILDERS: dict[str, Callable[[_Net], str]] = {
    "alexnet": _alexnet,
    "nin": _nin,
    "squeezenet": _squeezenet,
    "vgg16": _vgg16,
    "resnet18": _resnet18,
    "mobilenet_v1": _mobilenet_v1,
    "yolov2_tiny": _yolov2_tiny,
}


def names() -> list[str]:
    """The model names :func:`build` knows."""
    return list(_BUILDERS)


def _size(name: str, input_size) -> tuple[int, int]:
    if input_size is None:
        return DEFAULT_SIZE[name], DEFAULT_SIZE[name]
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
        hw = (int(input_size), int(input_size))
    elif (isinstance(input_size, (tuple, list)) and len(input_size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                  for v in input_size)):
        hw = (int(input_size[0]), int(input_size[1]))
    else:
        raise TypeError(
            f"zoo.build({name!r}): input_size must be an int or (H, W), got {input_size!r}"
        )
    if min(hw) < MIN_SIZE[name]:
        raise ValueError(
            f"zoo.build({name!r}): input_size must be >= {MIN_SIZE[name]} on each side "
            f"(smaller inputs shrink a feature map to nothing), got {input_size!r}"
        )
    return hw


def build(name: str, *, batch: int = 1, input_size=None, seed: int = 0,
          weights: bool = True) -> Graph:
    """Build zoo model ``name`` for input (batch, 3, H, W); ``input_size`` is H=W or (H, W)."""
    if name not in _BUILDERS:
        raise ValueError(f"zoo.build: unknown model {name!r}; known: {', '.join(_BUILDERS)}")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"zoo.build({name!r}): batch must be a positive int, got {batch!r}")
    net = _Net(name, int(batch), _size(name, input_size), seed, weights)
    out = _BUILDERS[name](net)
    return net.b.build([out])


def bvlc_alexnet(*, batch: int = 1, input_size=None, seed: int = 0, weights: bool = True) -> Graph:
    """BVLC's two-tower AlexNet (conv2, conv4 and conv5 with groups=2, as trained on two GPUs):
    60,965,224 parameters, the 233 MiB of the Caffe model file; otherwise as ``build("alexnet")``."""
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"zoo.bvlc_alexnet: batch must be a positive int, got {batch!r}")
    net = _Net("bvlc_alexnet", int(batch), _size("alexnet", input_size), seed, weights)
    return net.b.build([_alexnet(net, towers=2)])


# ---------------------------------------------------------------------------
# Branchy models: early exits (BranchyNet, Teerapittayanon et al. 2016; Edgent, Li et al. 2018)

#: Classes every exit of a branchy model scores (CIFAR-10 / MNIST digits).
NUM_CLASSES = 10


def _side_exit(n: _Net, prefix: str, x: str, exits: list, name: str, conv: int | None = None,
               pool=(3, 2)) -> str:
    """A side branch from ``x``: [conv 3x3 (``conv`` maps), max pool ``pool`` (ceil mode),]
    flatten, fc to :data:`NUM_CLASSES`, softmax; its :class:`~coinfer.graph.edgent.exits.Exit`
    (rooted at ``x``) is appended to ``exits``."""
    from .edgent.exits import Exit

    first = len(n.b.ops)
    y = x
    if conv:
        y = n.conv(f"{prefix}_conv", y, conv, 3, pad=1)
        y = n.maxpool(f"{prefix}_pool", y, *pool, ceil=True)
    y = n.op("flatten", f"{prefix}_flatten", [y])
    y = n.fc(f"{prefix}_fc", y, NUM_CLASSES, relu=False)
    y = n.op("softmax", f"{prefix}_prob", [y], axis=1)
    exits.append(Exit(name, x, tuple(o.name for o in n.b.ops[first:]), y))
    return y


def _main_exit(n: _Net, root: str, first: int, exits: list, name: str, y: str) -> None:
    """The last exit: every op built since op number ``first``, from ``root`` to ``y``."""
    from .edgent.exits import Exit

    exits.append(Exit(name, root, tuple(o.name for o in n.b.ops[first:]), y))


def _branchy_alexnet(batch: int, seed: int) -> Graph:
    """B-AlexNet (Edgent, MECOMM 2018): BranchyNet's AlexNet for 32x32x3 input with five
    exits, side branches after norm1, norm2, conv3 and conv4 and the main classifier.
    Trunk: conv 5x5/32, pool 3/2, LRN, conv 5x5/64, pool 3/2, LRN, conv 3x3/96, 3x3/96,
    3x3/64, pool 3/2, fc 256, fc 128, fc 10, softmax; each side branch a 3x3 conv (32 maps),
    a 3/2 max pool, a flatten, an fc to 10 classes and a softmax."""
    n = _Net("branchy_alexnet", batch, (32, 32), seed, True, zero_bias=True)
    exits: list = []
    x = n.conv("conv1", "data", 32, 5, pad=2)
    x = n.maxpool("pool1", x, 3, 2, ceil=True)
    x = n.op("lrn", "norm1", [x], size=5, alpha=1e-4, beta=0.75, k=1.0)
    _side_exit(n, "b1", x, exits, "exit1", conv=32)
    x = n.conv("conv2", x, 64, 5, pad=2)
    x = n.maxpool("pool2", x, 3, 2, ceil=True)
    x = n.op("lrn", "norm2", [x], size=5, alpha=1e-4, beta=0.75, k=1.0)
    _side_exit(n, "b2", x, exits, "exit2", conv=32)
    x = n.conv("conv3", x, 96, 3, pad=1)
    _side_exit(n, "b3", x, exits, "exit3", conv=32)
    x = n.conv("conv4", x, 96, 3, pad=1)
    _side_exit(n, "b4", x, exits, "exit4", conv=32)
    root, first = x, len(n.b.ops)
    x = n.conv("conv5", x, 64, 3, pad=1)
    x = n.maxpool("pool5", x, 3, 2, ceil=True)
    x = n.classifier(x, (256, 128), NUM_CLASSES)
    _main_exit(n, root, first, exits, "exit5", x)
    return n.b.build([e.output for e in exits], exits=exits)


def _branchy_lenet(batch: int, seed: int) -> Graph:
    """B-LeNet (BranchyNet) for 28x28x1 input, three exits: after pool1 (conv 3x3/8, pool 2/2,
    fc 10), after pool2 (fc 10), and LeNet-5's classifier (conv 5x5/6, pool, conv 5x5/16,
    pool, fc 120, fc 84, fc 10)."""
    n = _Net("branchy_lenet", batch, (28, 28), seed, True, in_channels=1, zero_bias=True)
    exits: list = []
    x = n.conv("conv1", "data", 6, 5, pad=2)
    x = n.maxpool("pool1", x, 2, 2)
    _side_exit(n, "b1", x, exits, "exit1", conv=8, pool=(2, 2))
    x = n.conv("conv2", x, 16, 5)
    x = n.maxpool("pool2", x, 2, 2)
    _side_exit(n, "b2", x, exits, "exit2")
    root, first = x, len(n.b.ops)
    x = n.op("flatten", "flatten", [x])
    x = n.fc("fc3", x, 120)
    x = n.fc("fc4", x, 84)
    x = n.fc("fc5", x, NUM_CLASSES, relu=False)
    x = n.op("softmax", "prob", [x], axis=1)
    _main_exit(n, root, first, exits, "exit3", x)
    return n.b.build([e.output for e in exits], exits=exits)


#: The branchy models by name: ``BRANCHY[name](batch, seed)`` builds one with He-initialised
#: weights drawn with ``seed`` (no thresholds or accuracies; see :func:`branchy_alexnet` for the
#: trained ones).
BRANCHY: dict[str, Callable[[int, int], Graph]] = {
    "branchy_alexnet": _branchy_alexnet,
    "branchy_lenet": _branchy_lenet,
}


def branchy_alexnet(*, batch: int = 1, trained: bool = True, seed: int = 0) -> Graph:
    """Edgent's B-AlexNet: (batch, 3, 32, 32) input, 5 exits, trained weights
    (see :mod:`coinfer.graph.edgent.models`)."""
    from .edgent.models import branchy_alexnet

    return branchy_alexnet(batch=batch, trained=trained, seed=seed)


def branchy_lenet(*, batch: int = 1, trained: bool = True, seed: int = 0) -> Graph:
    """BranchyNet's B-LeNet: (batch, 1, 28, 28) input, 3 exits, trained weights
    (see :mod:`coinfer.graph.edgent.models`)."""
    from .edgent.models import branchy_lenet

    return branchy_lenet(batch=batch, trained=trained, seed=seed)
