"""coinfer.graph.coexec: CoDL-style CPU-GPU co-execution.

The op view, regions and halos, the chain cost model, the chain search, plans,
strategies, and the executor that runs a plan on an SoC.
"""
