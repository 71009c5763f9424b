"""coinfer.graph.coexec: CoDL-style CPU-GPU co-execution.

:mod:`.view` (the planner's view of a graph), :mod:`.regions` (what each
processor computes and shares per chain, halos included), :mod:`.costmodel`
(a chain's predicted latency from a cost source), :mod:`.chains` (CoDL's chain
search), :mod:`.plan` (``Chain``, ``Plan``), :mod:`.strategies` (cpu, gpu,
mulayer, codl-nochain, codl), :mod:`.lower` (ops as kernel calls on regions,
and ``prepare``: a graph's view and weights, computed once), :mod:`.program`
(a plan compiled into the sharing protocol, each chain's GPU on images or
buffers, syncs derived from what tasks read and write) and :mod:`.executor`
(runs a plan on an SoC).
"""
