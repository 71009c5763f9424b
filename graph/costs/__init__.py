"""coinfer.graph.costs: cost sources and the one timing harness.

:mod:`.source` (the ``CostSource`` protocol and ``TableCosts``),
:mod:`.measured` (``MeasuredCosts``: op and sharing latencies measured on an
SoC's processors), :mod:`.sides` (``SideCostSource``: seconds per op on the
device or the edge, for Edgent's planners; ``TableSideCosts``,
``MeasuredSideCosts``) and :mod:`.measure` (warm-up, repeats, min/median,
``geomean``).  The latency predictors: :mod:`.sampling` (flat descriptions of
single ops, their FLOPs by the op table's rule, one-op graphs, samplers),
:mod:`.dataset`, :mod:`.features` (per cost family of the op table) and
:mod:`.predictor`; :mod:`.emulated` re-times any source for a device profile.
"""
