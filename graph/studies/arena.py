"""Activation lifetime sets for studying the arena planner.

Each workload is a list of ``(nbytes, first_use, last_use)`` in the form
:func:`coinfer.hw.arena.plan_offsets` takes.  The three networks list the
batch-1 float32 activations of their conv / pool / FC chains, written out by
hand: op ``k`` produces one tensor, alive from ``k`` to its last reader (the
final output is read by one more step, the fetch).  ReLU is fused into the conv
or FC before it.  The random sets cover lifetimes without any network shape
and CNN-like chains with skip connections and branches.
"""
from __future__ import annotations

import random

__all__ = ["alexnet", "squeezenet", "vgg16", "networks", "random_lifetimes", "cnn_like"]

F32 = 4


def _chain(shapes):
    """Lifetimes of a plain chain: tensor k (k=0 is the input) lives from op k-1 to op k."""
    out = []
    for k, shape in enumerate(shapes):
        n = F32
        for d in shape:
            n *= d
        out.append((n, max(k - 1, 0), k))
    return out


def alexnet():
    """AlexNet (Caffe, 227x227 input): conv1..conv5, three max pools, fc6..fc8."""
    return _chain([
        (3, 227, 227),
        (96, 55, 55),    # conv1 11x11/4
        (96, 27, 27),    # pool1 3x3/2
        (256, 27, 27),   # conv2 5x5 pad 2
        (256, 13, 13),   # pool2
        (384, 13, 13),   # conv3
        (384, 13, 13),   # conv4
        (256, 13, 13),   # conv5
        (256, 6, 6),     # pool5
        (4096,),         # fc6
        (4096,),         # fc7
        (1000,),         # fc8
    ])


def vgg16():
    """VGG-16 (224x224 input): 13 3x3 convs in five blocks, five max pools, three FCs."""
    shapes = [(3, 224, 224)]
    hw = 224
    for ch, reps in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        shapes += [(ch, hw, hw)] * reps
        hw //= 2
        shapes.append((ch, hw, hw))
    shapes += [(4096,), (4096,), (1000,)]
    return _chain(shapes)


class _Builder:
    """Ops in execution order; a tensor lives from its producer to its last reader."""

    def __init__(self):
        self.tensors: list[list[int]] = []  # [nbytes, first, last]
        self.op = -1

    def add(self, shape, *inputs) -> int:
        self.op += 1
        for t in inputs:
            self.tensors[t][2] = max(self.tensors[t][2], self.op)
        n = F32
        for d in shape:
            n *= d
        self.tensors.append([n, max(self.op, 0), max(self.op, 0)])
        return len(self.tensors) - 1

    def finish(self):
        self.tensors[-1][2] = self.op + 1  # read by the fetch
        return [tuple(t) for t in self.tensors]


def squeezenet():
    """SqueezeNet v1.0 (227x227 input).

    A fire module is squeeze (1x1) -> expand1x1 and expand3x3, both reading the
    squeeze output -> concat of the two expands.
    """
    b = _Builder()
    x = b.add((3, 227, 227))
    b.op = -1  # the input exists before op 0
    x = b.add((96, 111, 111), x)  # conv1 7x7/2
    x = b.add((96, 55, 55), x)    # pool1 3x3/2
    hw = 55

    def fire(x, s, e, hw):
        sq = b.add((s, hw, hw), x)
        e1 = b.add((e, hw, hw), sq)
        e3 = b.add((e, hw, hw), sq)
        return b.add((2 * e, hw, hw), e1, e3)

    for s, e in ((16, 64), (16, 64), (32, 128)):
        x = fire(x, s, e, hw)
    x = b.add((256, 27, 27), x)   # pool4
    hw = 27
    for s, e in ((32, 128), (48, 192), (48, 192), (64, 256)):
        x = fire(x, s, e, hw)
    x = b.add((512, 13, 13), x)   # pool8
    x = fire(x, 64, 256, 13)
    x = b.add((1000, 13, 13), x)  # conv10 1x1
    b.add((1000,), x)             # global average pool
    return b.finish()


def networks() -> dict:
    """The three hand-written networks, by name."""
    return {"alexnet": alexnet(), "squeezenet": squeezenet(), "vgg16": vgg16()}


def random_lifetimes(seed: int, n: int = 120, ops: int = 40, mean_life: float = 8.0):
    """``n`` tensors born uniformly over ``ops`` ops, living an exponential number of
    ops (mean ``mean_life``), with log-uniform sizes (256 B .. 4 MiB)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        f = rng.randrange(ops)
        last = min(ops - 1, f + int(rng.expovariate(1 / mean_life)))
        out.append((int(2 ** rng.uniform(8, 22)), f, last))
    return out


def cnn_like(seed: int, ops: int = 40):
    """A CNN-like chain: feature maps shrink by stages; some outputs feed a later op
    (skip connections) and some ops fork into two branches joined by a concat."""
    rng = random.Random(seed)
    b = _Builder()
    ch, hw = rng.choice((16, 32, 64)), rng.choice((56, 112, 224))
    x = b.add((3, hw, hw))
    b.op = -1
    skips: list[int] = []
    while b.op < ops:
        r = rng.random()
        if r < 0.15 and hw > 7:
            hw //= 2
            ch = min(ch * 2, 1024)
            x = b.add((ch, hw, hw), x)
        elif r < 0.3:
            y1 = b.add((ch // 2, hw, hw), x)
            y2 = b.add((ch // 2, hw, hw), x)
            x = b.add((ch, hw, hw), y1, y2)
        elif r < 0.45 and skips:
            s = skips.pop()
            if b.tensors[s][0] == F32 * ch * hw * hw:
                x = b.add((ch, hw, hw), x, s)  # residual add
            else:
                x = b.add((ch, hw, hw), x)
        else:
            x = b.add((ch, hw, hw), x)
            if rng.random() < 0.3:
                skips.append(x)
    return b.finish()
