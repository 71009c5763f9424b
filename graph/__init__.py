"""coinfer.graph: models, plans and their drivers.

- :mod:`.ir` (``Graph``, ``GraphBuilder``), :mod:`.ops` (the op table: one
  ``OpSpec`` per op type, read by everything below), :mod:`.zoo`,
  :mod:`.onnx` (import), :mod:`.interpret` (the sequential oracle).
- :mod:`.coexec`: CoDL-style CPU-GPU co-execution (view, regions and halos,
  chain cost model, chain search, plans, strategies, lowering, executor).
- :mod:`.edgent`: Edgent-style device-edge co-inference (BranchyNet exits,
  cut points, the static and dynamic planners, the co-inference runtime and
  trace-driven episodes; branchy models with trained weights).
- :mod:`.costs`: cost sources (the ``CostSource`` protocol, hand tables,
  measured costs, per-side costs for Edgent) and the one timing harness.
- :mod:`.studies`: the drivers the CLI and ``bench/`` share (kernels,
  co-execution, arena workloads, Edgent, simulation, sweeps).
- :func:`latency` (:mod:`.latencies`): a model's predicted latency on an SoC
  under a strategy, and its breakdown, cheap enough to call per simulated request.
"""
from .latencies import Latency, latency

__all__ = ["Latency", "latency"]
