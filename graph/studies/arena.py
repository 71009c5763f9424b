"""Activation lifetime sets for studying the arena planner.

Each workload is a list of ``(nbytes, first_use, last_use)`` in the form
:func:`coinfer.hw.arena.plan_offsets` takes.  The networks are the zoo's
(:func:`coinfer.graph.zoo.build`, batch 1, default input size, ReLU fused into
the op before it): op ``k`` produces one float32 tensor, alive from ``k`` to
its last reader, the graph input from 0, and the output one step past the last
op (the fetch) -- :meth:`coinfer.graph.ir.Graph.lifetimes`.  The random sets
cover lifetimes without any network shape and CNN-like chains with skip
connections and branches.
"""
from __future__ import annotations

import random

__all__ = ["network", "alexnet", "squeezenet", "vgg16", "networks", "random_lifetimes", "cnn_like"]

F32 = 4
#: The zoo models :func:`networks` returns.
NETWORKS = ("alexnet", "squeezenet", "vgg16")


def network(name: str, **build) -> list[tuple[int, int, int]]:
    """The activation lifetimes of zoo model ``name`` (``build`` goes to ``zoo.build``)."""
    from ..ir import fuse_relu
    from ..zoo import build as zoo_build

    g = fuse_relu(zoo_build(name, weights=False, **build))
    return [(g.tensors[t].nbytes, first, last) for t, (first, last) in g.lifetimes().items()]


def alexnet():
    """AlexNet (Caffe, 227x227 input) from the zoo."""
    return network("alexnet")


def vgg16():
    """VGG-16 (224x224 input) from the zoo."""
    return network("vgg16")


def squeezenet():
    """SqueezeNet v1.0 (227x227 input) from the zoo."""
    return network("squeezenet")


def networks() -> dict:
    """The zoo networks of :data:`NETWORKS`, by name."""
    return {name: network(name) for name in NETWORKS}


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
