"""The planner's view of a graph: per op, what can be split and how rows flow.

:class:`OpView` holds what partitioning needs about one op: its input and
output tensors and shapes, the dimensions it can be split on, and the sliding
window that maps output rows to input rows.  :class:`GraphView` adds the
consumers of every tensor.  It is built from a :class:`coinfer.graph.ir.Graph`
by :func:`view_of`, or by hand in tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Ops that are row-local (output rows need a band of input rows) and can be height-split.
H_SPLIT = {"conv", "maxpool", "avgpool", "relu", "lrn", "add", "concat", "clip"}
# Ops whose output channels can be divided (each side reads the whole input).
OC_SPLIT = {"conv", "fc", "maxpool", "avgpool", "relu", "lrn", "add", "globalavgpool", "clip"}
# Ops that may follow the head of an OC chain: output channel c needs only input channel c.
CHANNEL_LOCAL = {"relu", "maxpool", "avgpool", "globalavgpool", "clip"}


@dataclass(frozen=True)
class OpView:
    name: str
    type: str
    inputs: tuple[str, ...]
    output: str
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    stride: int = 1
    pad_top: int = 0
    kernel: int = 1
    dilation: int = 1
    depthwise: bool = False
    flops: float = 0.0

    @property
    def splits(self) -> frozenset:
        s = set()
        four_d = len(self.out_shape) == 4
        if self.type in H_SPLIT and four_d:
            s.add("H")
        if self.type in OC_SPLIT and self.out_channels >= 8:
            s.add("OC")
        if self.depthwise:
            s.discard("OC")
        return frozenset(s)

    @property
    def out_channels(self) -> int:
        return self.out_shape[1]

    @property
    def out_rows(self) -> int:
        return self.out_shape[2] if len(self.out_shape) == 4 else 1

    @property
    def channel_local(self) -> bool:
        return self.type in CHANNEL_LOCAL and len(self.inputs) == 1

    def window(self, h_in: int) -> dict:
        return dict(stride=self.stride, pad_top=self.pad_top, kernel=self.kernel,
                    dilation=self.dilation, h_in=h_in)


@dataclass
class GraphView:
    ops: list[OpView]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]
    consumers: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {op.name: i for i, op in enumerate(self.ops)}
        if not self.consumers:
            cons: dict[str, list[str]] = {}
            for op in self.ops:
                for t in op.inputs:
                    cons.setdefault(t, []).append(op.name)
            self.consumers = cons

    def op(self, name: str) -> OpView:
        return self.ops[self.index[name]]

    def escapes(self, tensor: str, members: set[str]) -> bool:
        """True if ``tensor`` is a graph output or read by an op outside ``members``."""
        if tensor in self.outputs:
            return True
        return any(c not in members for c in self.consumers.get(tensor, ()))

    @staticmethod
    def nbytes(shape, rows=None, channels=None) -> int:
        """float32 bytes of a region of an (N, C, H, W) or (N, K) tensor."""
        n = 1
        for d in shape:
            n *= d
        if len(shape) == 4:
            if rows is not None:
                n = n // shape[2] * max(0, rows[1] - rows[0])
            if channels is not None:
                n = n // shape[1] * max(0, channels[1] - channels[0])
        elif channels is not None and len(shape) == 2:
            n = n // shape[1] * max(0, channels[1] - channels[0])
        return 4 * n


def view_of(graph) -> GraphView:
    """The planner's view of a :class:`coinfer.graph.ir.Graph`."""
    ops = []
    for op in graph.ops:
        in_shapes = tuple(graph.shape(t) for t in op.inputs)
        out_shape = graph.shape(op.output)
        kw = {}
        a = op.attrs
        if op.type == "conv":
            w = op.params["w"]
            kw = dict(stride=a["stride"][0], pad_top=a["padding"][0], kernel=w.shape[2],
                      dilation=a["dilation"][0],
                      depthwise=a["groups"] > 1 and a["groups"] == in_shapes[0][1] == out_shape[1])
        elif op.type in ("maxpool", "avgpool"):
            kw = dict(stride=a["stride"][0], pad_top=a["padding"][0], kernel=a["kernel"][0])
        ops.append(OpView(op.name, op.type, tuple(op.inputs), op.output, in_shapes, out_shape,
                          flops=float(graph.flops(op)), **kw))
    shapes = {name: t.shape for name, t in graph.tensors.items()}
    return GraphView(ops, tuple(graph.inputs), tuple(graph.outputs), shapes)
