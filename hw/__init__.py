"""coinfer.hw: the hardware model (arena, processors, SoC, links, traces)."""
