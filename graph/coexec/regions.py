"""What each processor computes and shares for one chain of a plan.

Both the cost model and the executor use :func:`chain_regions`, so the plan
that is priced is exactly the plan that runs.

A region is ``(r0, r1, c0, c1)``: output rows [r0, r1) and channels [c0, c1)
(a 2-D (N, K) tensor has rows (0, 1)).  Bands: for a height split the GPU
takes rows [0, round(ratio*H)) of every tensor and the CPU the rest; for a
channel split the GPU takes channels [0, 4*round(ratio*C/4)) (whole texels).

Halos.  A height split hands each processor a band of output rows.  To compute rows
[r0, r1) of a conv or pool output, a processor reads input rows
[r0*S - pad_top, (r1-1)*S - pad_top + D*(F-1) + 1), clipped to the input.  The
rows that two bands both read form the halo; inside an operator chain the
required ranges are propagated backwards from the chain's end, so every op of
the chain computes its band plus the rows later ops need (CoDL, MobiSys 2022,
Sec. 4: "the halo accumulates backwards along the chain").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .plan import Chain
from .view import GraphView, OpView

Region = tuple[int, int, int, int]


def halo_padding(stride: int, h_out: int, h_in: int, kernel: int) -> int:
    """CoDL's halo size P = S*(H_out - 1) - H_in + F: the extra input rows beyond
    H_in that an op with output height H_out reads in total (padding plus overlap)."""
    return stride * (h_out - 1) - h_in + kernel


def input_rows(out_rows: tuple[int, int], *, stride: int, pad_top: int, kernel: int,
               dilation: int, h_in: int) -> tuple[int, int]:
    """Input rows [lo, hi) that output rows ``out_rows`` of a sliding-window op read."""
    r0, r1 = out_rows
    if r1 <= r0:
        return (0, 0)
    lo = r0 * stride - pad_top
    hi = (r1 - 1) * stride - pad_top + dilation * (kernel - 1) + 1
    return (max(0, min(lo, h_in)), max(0, min(hi, h_in)))


def _dims(shape) -> tuple[int, int]:
    """(rows, channels) of a tensor shape."""
    return (shape[2], shape[1]) if len(shape) == 4 else (1, shape[1])


def full(shape) -> Region:
    h, c = _dims(shape)
    return (0, h, 0, c)


def empty(region: Region) -> bool:
    return region[1] <= region[0] or region[3] <= region[2]


def gpu_rows(ratio: float, h: int) -> int:
    return int(round(ratio * h))


def gpu_channels(ratio: float, c: int) -> int:
    """GPU channel share rounded to whole texels; all channels when it rounds past the end."""
    g = 4 * int(round(ratio * c / 4.0))
    return c if g >= c else g


def band(shape, dim: str, ratio: float, side: str) -> Region:
    """The share of a tensor that ``side`` ('gpu' or 'cpu') owns under a split."""
    h, c = _dims(shape)
    if dim == "H":
        g = gpu_rows(ratio, h)
        return (0, g, 0, c) if side == "gpu" else (g, h, 0, c)
    if dim == "OC":
        g = gpu_channels(ratio, c)
        return (0, h, 0, g) if side == "gpu" else (0, h, g, c)
    if (side == "gpu") == (ratio == 1.0):
        return (0, h, 0, c)
    return (0, 0, 0, 0)


def _hull(a: Region | None, b: Region) -> Region:
    if a is None or empty(a):
        return b
    if empty(b):
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


@dataclass
class SideWork:
    """One processor's part of a chain."""
    compute: dict[str, Region] = field(default_factory=dict)  # op -> output region to compute
    needs: dict[str, Region] = field(default_factory=dict)  # external input tensor -> region read
    shares: dict[str, Region] = field(default_factory=dict)  # escaping tensor -> band handed back

    def active(self) -> bool:
        return any(not empty(r) for r in self.compute.values())


@dataclass
class ChainRegions:
    chain: Chain
    gpu: SideWork
    cpu: SideWork


def _input_region(view: GraphView, op, out_region: Region, in_shape, dim: str) -> Region:
    """Region of one input that ``op`` reads to produce ``out_region``."""
    if empty(out_region):
        return (0, 0, 0, 0)
    h_in, c_in = _dims(in_shape)
    if dim == "H" and len(in_shape) == 4:
        r = input_rows((out_region[0], out_region[1]), stride=op.stride, pad_top=op.pad_top,
                       kernel=op.kernel, dilation=op.dilation, h_in=h_in)
        return (r[0], r[1], 0, c_in)
    if dim == "OC" and op.channel_local:
        # A channel-local op reads the same channels (rows: all, windows handle the rest).
        return (0, h_in, out_region[2], min(out_region[3], c_in))
    return (0, h_in, 0, c_in)


def chain_regions(view: GraphView, chain: Chain) -> ChainRegions:
    """Per side: output regions to compute, external input regions, escaping bands.

    Required regions are propagated backwards through the chain: a tensor made
    inside the chain is computed over the hull of its escaping band (if it
    escapes) and of every in-chain consumer's input region.  For a height split
    this is where the halo comes from.
    """
    members = set(chain.ops)
    ops = [view.op(n) for n in chain.ops]
    produced = {op.output: op for op in ops}
    sides = {}
    for side in ("gpu", "cpu"):
        work = SideWork()
        need: dict[str, Region] = {}
        for op in reversed(ops):
            t = op.output
            if view.escapes(t, members):
                b = band(op.out_shape, chain.dim, chain.ratio, side)
                work.shares[t] = b
                need[t] = _hull(need.get(t), b)
            region = need.get(t, (0, 0, 0, 0))
            work.compute[op.name] = region
            for t_in, shp in zip(op.inputs, op.in_shapes):
                r_in = _input_region(view, op, region, shp, chain.dim)
                if not empty(r_in):
                    need[t_in] = _hull(need.get(t_in), r_in)
        work.compute = {op.name: work.compute[op.name] for op in ops}
        work.needs = {t: r for t, r in need.items() if t not in produced}
        sides[side] = work
    return ChainRegions(chain, sides["gpu"], sides["cpu"])


def region_fraction(op: OpView, region: Region) -> float:
    """Share of ``op``'s output that ``region`` covers."""
    if empty(region):
        return 0.0
    h, c = op.out_rows, op.out_channels
    return ((region[1] - region[0]) / h) * ((region[3] - region[2]) / c)
