"""Edgent: device-edge co-inference with early exits (exits, cut points, static and
dynamic planners, the co-inference runtime and trace-driven episodes)."""
