"""coinfer.graph.studies: drivers that compose graphs, costs, planners and hardware, print tables and return records.

The command line (:mod:`.cli`) and ``bench/`` call the same studies.
"""
