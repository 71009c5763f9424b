"""coinfer.graph.costs: cost sources (the protocol, measured costs, predictors) and the one timing harness."""
