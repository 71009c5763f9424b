"""The planner's view of a graph: per op, what can be split, how rows flow, where it can run.

:class:`OpView` holds what partitioning needs about one op: its input and
output tensors and shapes, the dimensions it may be split on, the sliding
window that maps output rows to input rows, whether it is channel-local, and
the layouts whose kernels support it.  :class:`GraphView` adds the consumers
of every tensor.  :func:`view_of` builds it from a
:class:`coinfer.graph.ir.Graph` by reading the op table
(:mod:`coinfer.graph.ops`), once per graph: planners, the cost sources and the
executor take the view (:func:`coinfer.graph.coexec.lower.prepare` bundles it
with the prepared weights).  Tests build views by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...kernels import LAYOUTS
from .. import ops


@dataclass(frozen=True)
class OpView:
    """One op as the planner sees it.

    ``splits`` is a subset of {"H", "OC"}; ``stride``/``pad_top``/``kernel``/``dilation``
    give the input rows an output row reads (:class:`coinfer.graph.ops.Window`);
    ``channel_local``: output channel c reads input channel c only; ``layouts``: the
    kernel sets that support this op (the GPU side of a co-executed plan needs "image").
    """

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
    flops: float = 0.0
    splits: frozenset = frozenset()
    channel_local: bool = False
    layouts: frozenset = frozenset(LAYOUTS)
    #: The op's normalised attributes (``stride``, ``padding``, ``groups``, ...) and, for
    #: ops with weights, ``weight_shape``: what a latency predictor reads off the op.
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def out_channels(self) -> int:
        return self.out_shape[1]

    @property
    def out_rows(self) -> int:
        return self.out_shape[2] if len(self.out_shape) == 4 else 1

    @property
    def on_image(self) -> bool:
        """Whether the image kernels (the GPU's in a co-executed plan) support this op."""
        return "image" in self.layouts


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


def _attrs(op) -> dict:
    a = dict(op.attrs)
    w = op.params.get("w")
    if w is not None:
        a["weight_shape"] = tuple(int(d) for d in w.shape)
    return a


def view_of(graph) -> GraphView:
    """The planner's view of a :class:`coinfer.graph.ir.Graph`, read off the op table."""
    out = []
    for op in graph.ops:
        spec = ops.SPECS[op.type]
        win = spec.window(graph, op)
        out.append(OpView(
            op.name, op.type, tuple(op.inputs), op.output,
            tuple(graph.shape(t) for t in op.inputs), graph.shape(op.output),
            stride=win.stride, pad_top=win.pad_top, kernel=win.kernel, dilation=win.dilation,
            flops=float(graph.flops(op)), splits=spec.split_dims(graph, op),
            channel_local=spec.channel_local and len(op.inputs) == 1,
            layouts=ops.layouts_of(graph, op), attrs=_attrs(op)))
    shapes = {name: t.shape for name, t in graph.tensors.items()}
    return GraphView(out, tuple(graph.inputs), tuple(graph.outputs), shapes)
