"""A cost source's host seconds as an emulated SoC's: compute scaled, sharing priced by the profile.

:class:`EmulatedCosts` wraps any :class:`~.source.CostSource` that answers for
*this host* (measured or predicted) and answers for the SoC a
:class:`~coinfer.hw.profile.CostProfile` describes, the same way
:meth:`coinfer.hw.trace.Trace.replay` re-times a run: a compute region's
seconds times ``profile.scale(processor, layout, op class)`` (the GPU on
buffers, ``gpu_buffer``, pays the profile's layout factor), a transform's
times the GPU's scale for transforms, and every sharing operation plus the
profile's modelled cost (a Snapdragon sync costs about 0.46 ms more than on
the host).  So the planners choose plans for that SoC: a plan that is best on
the host may not be best there.
"""
from __future__ import annotations

from ...hw.profile import get_profile
from ..ops import FAMILY_CONV
from .sampling import describe, family


def op_class(op) -> str:
    """The op class of a planner's op (:data:`coinfer.hw.calibration.CLASSES`): its cost family
    (:func:`coinfer.graph.ops.cost_family`)."""
    return family(describe(op))


class EmulatedCosts:
    """``EmulatedCosts(costs, profile)``: ``costs`` (host seconds) under ``profile``."""

    def __init__(self, costs, profile):
        self.costs = costs
        self.profile = get_profile(profile)
        self._cls: dict = {}

    def _class(self, op) -> str:
        c = self._cls.get(op.name)
        if c is None:
            c = self._cls[op.name] = op_class(op)
        return c

    def compute(self, op, proc, region, concurrent: bool = False) -> float:
        t = self.costs.compute(op, proc, region, concurrent)
        if t == 0.0 or t == float("inf"):
            return t
        name, lay = {"cpu": ("cpu", "buffer"), "gpu": ("gpu", "image"), "gpu_buffer": ("gpu", "buffer")}[proc]
        return t * self.profile.scale(name, lay, self._class(op))

    def transform(self, nbytes: int) -> float:
        if not nbytes:
            return 0.0
        return self.costs.transform(nbytes) * self.profile.scale("gpu", None, "transform") + \
            self.profile.cost("transform", nbytes)

    def map(self, nbytes: int) -> float:
        return self.costs.map(nbytes) + self.profile.cost("map", nbytes) if nbytes else 0.0

    def unmap(self, nbytes: int) -> float:
        return self.costs.unmap(nbytes) + self.profile.cost("unmap", nbytes) if nbytes else 0.0

    def sync(self) -> float:
        return self.costs.sync() + self.profile.cost("sync")

    def throughput(self, key: str) -> float:
        """The wrapped source's FLOPs/s of ``key`` (cpu, gpu, gpu_buffer) on the emulated SoC."""
        name, lay = {"cpu": ("cpu", "buffer"), "gpu": ("gpu", "image"), "gpu_buffer": ("gpu", "buffer")}[key]
        return self.costs.throughput(key) / self.profile.scale(name, lay, FAMILY_CONV)

    def __getattr__(self, name):  # the wrapped source's reports (fits, full, ...) stay reachable
        if name == "costs":
            raise AttributeError(name)
        return getattr(self.costs, name)
