"""Plans: which processor computes which part of every op.

A plan is a list of :class:`Chain` in execution order.  A chain is a run of
consecutive ops (in topological order) split on one dimension with one ratio:

- ``dim="none"``, ratio 1.0: the GPU runs the ops on images, nothing shared;
- ``dim="none"``, ratio 0.0: the CPU runs the ops on buffers; inputs are shared
  in at the chain's start, escaping outputs shared back at its end;
- ``dim="H"``: the GPU computes the top ``ratio`` of every output's rows, the CPU
  the rest, each with the halo rows later ops of the chain need;
- ``dim="OC"``: the GPU computes the first ``ratio`` of output channels (rounded
  to a texel, 4 channels), the CPU the rest.

A chain's ``layout`` is the one its GPU share works in: ``image`` (MACE's
texels, CoDL's GPU) or ``buffer`` (NCHW, muLayer's GPU; both processors then
share one buffer).  It is also the layout of the canonical copy of what the
chain makes (see :mod:`.executor`).  On buffers a height-split chain holds one
op (both processors would write its halo rows).

A chain of one op is CoDL's per-op co-execution with sharing at every op
("codl-nochain"); longer chains share only at their ends ("codl").
Strategies that keep buffers on both processors throughout (``cpu``,
``mulayer``) pass ``shared_layout="buffer"``, which sets every chain's layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...kernels import LAYOUTS


@dataclass(frozen=True)
class Chain:
    ops: tuple[str, ...]
    dim: str = "none"  # "none" | "H" | "OC"
    ratio: float = 1.0  # GPU share
    layout: str = "image"  # the GPU's layout in this chain

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"Chain: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.dim not in ("none", "H", "OC"):
            raise ValueError(f"Chain: dim must be 'none', 'H' or 'OC', got {self.dim!r}")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"Chain: ratio must be in [0, 1], got {self.ratio!r}")
        if self.dim == "none" and self.ratio not in (0.0, 1.0):
            raise ValueError(f"Chain: dim 'none' needs ratio 0 or 1, got {self.ratio!r}")
        if not self.ops:
            raise ValueError("Chain: ops must not be empty")

    @property
    def split(self) -> bool:
        return self.dim != "none"

    @property
    def device(self) -> str:
        """'gpu', 'cpu' or 'both'."""
        if self.dim == "none":
            return "gpu" if self.ratio == 1.0 else "cpu"
        return "both"


def merge_unsplit(chains) -> list:
    """``chains`` with each run of adjacent unsplit chains on one processor and layout made
    one chain: the same placement, shared only at the run's ends."""
    out: list = []
    for c in chains:
        p = out[-1] if out else None
        if p is not None and not p.split and not c.split and (p.ratio, p.layout) == (c.ratio, c.layout):
            out[-1] = Chain(p.ops + c.ops, "none", p.ratio, p.layout)
        else:
            out.append(c)
    return out


@dataclass
class Plan:
    strategy: str
    chains: list[Chain]
    shared_layout: str | None = None  # "buffer": every chain on buffers (cpu-only, mulayer)
    predicted_s: float | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.shared_layout not in (None, "buffer"):
            raise ValueError(f"Plan: shared_layout must be None or 'buffer', got {self.shared_layout!r}")
        if self.shared_layout == "buffer":
            self.chains = [c if c.layout == "buffer" else replace(c, layout="buffer") for c in self.chains]
        elif self.chains and all(c.layout == "buffer" for c in self.chains):
            self.shared_layout = "buffer"

    @property
    def layouts(self) -> frozenset:
        """The layouts the plan's GPU shares work in."""
        return frozenset(c.layout for c in self.chains)

    @property
    def n_chains(self) -> int:
        """Operator chains: runs of two or more ops co-executed on one dimension."""
        return sum(1 for c in self.chains if len(c.ops) > 1 and c.split)

    @property
    def n_splits(self) -> int:
        """Ops whose work is divided between the two processors."""
        return sum(len(c.ops) for c in self.chains if c.split)

    def describe(self) -> str:
        lines = [f"plan {self.strategy}: {len(self.chains)} chains, {self.n_splits} split ops"]
        for c in self.chains:
            lines.append(f"  {c.device:>4} {c.dim:>4} {c.ratio:.2f} {c.layout:<6}  " + " -> ".join(c.ops))
        return "\n".join(lines)
