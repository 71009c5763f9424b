"""Online refinement of a plan's predicted latency from the frames already run.

The planner predicts a plan's latency from per-op costs timed on this host
before the frames and scaled by the device and edge profiles.  The host's
speed drifts (a core of the shared test VM changed 1.85x within seconds), and
the device profile multiplies that drift (raspberry_pi: x114), so a runtime
refines the prediction with what it has measured (Edgent's runtime, MECOMM
2018; CoDL's "measured times refine the predictor online"): per side (device,
edge) a **speed factor**

    f_side = realised compute of the side's part / the cost model's prediction for it

and the online prediction for frame ``k`` is

    f_device[k] * device_s + f_edge[k] * edge_s + link_s

where ``device_s``, ``edge_s`` are the plan's a-priori compute per side and
``link_s`` its modelled transfers (RTT/2 + 8n/B per crossing tensor).
``f_side[k]`` uses only frames before ``k``: an exponentially weighted mean of
the log ratios with weight ``weight`` on the newest frame, started at the
first frame that ran the side (``weight=1``: the last frame's factor).  Until
a side has run it keeps 1 (the a-priori costs).  Frames that fell back to
device-only, and sides whose predicted part is under ``min_s``, give no ratio.
The mean is :class:`coinfer.graph.edgent.runtime.SpeedTracker`'s, the live
runtime's (there one factor for the whole plan, weight 0.3, starting at 1).
"""
from __future__ import annotations

import numpy as np

from ..edgent.runtime import SpeedTracker

__all__ = ["WEIGHT", "speed_factors", "online_predictions"]

#: Weight of the newest frame in the speed factor: 1, the last frame's factor alone.  Chosen by
#: measurement (46 rows of B-AlexNet through the edge server, 9 frames each, AVX-512 host; the
#: recorded frames replayed with each weight): weights 1 / 0.7 / 0.5 / 0.3 missed the rows' medians
#: by at most 5.7% / 7.5% / 9.7% / 18.9%, and single frames by 4.0% / 4.0% / 4.2% / 4.7% on mean.
#: The host's speed moves in steps that last longer than a frame, so older frames add lag, not a
#: smoother estimate.
WEIGHT = 1.0


def speed_factors(realised, predicted: float, *, weight: float = WEIGHT, min_s: float = 1e-4) -> np.ndarray:
    """The speed factor each frame's prediction uses, from the frames before it.

    ``realised``: one side's realised compute seconds per frame, in order (None
    or NaN where the frame gives no ratio, e.g. a fallback); ``predicted``: the
    side's a-priori compute seconds for the plan.  Returns ``factors`` with
    ``factors[k]`` from frames ``< k`` (shape ``(len(realised),)``; 1.0 until a
    frame gave a ratio).  Raises ValueError if ``weight`` is not in (0, 1].
    """
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"speed_factors: weight must be in (0, 1], got {weight!r}")
    out = np.ones(len(realised), np.float64)
    tracker = SpeedTracker(alpha=weight, min_s=min_s, from_first=True)
    for k, r in enumerate(realised):
        out[k] = tracker.speed
        if r is not None:
            tracker.update(r, predicted)
    return out


def online_predictions(frames, device_s: float, edge_s: float, link_s: float, *, weight: float = WEIGHT,
                       min_s: float = 1e-4) -> np.ndarray:
    """The online prediction of each frame of one plan, in seconds (shape ``(len(frames),)``).

    ``frames``: the plan's frames in order, each with ``device_s`` and ``edge_s``
    (realised compute seconds) and ``fallback`` (None if the plan ran as asked),
    e.g. :class:`~coinfer.graph.edge.client.FrameResult`; ``device_s``,
    ``edge_s``: the plan's a-priori compute per side; ``link_s``: its modelled
    transfers.  ``prediction[k] = f_device[k] * device_s + f_edge[k] * edge_s +
    link_s`` with the factors of :func:`speed_factors`.
    """
    ok = [getattr(f, "fallback", None) is None for f in frames]
    f_dev = speed_factors([f.device_s if o else None for f, o in zip(frames, ok)], device_s, weight=weight,
                          min_s=min_s)
    f_edge = speed_factors([f.edge_s if o else None for f, o in zip(frames, ok)], edge_s, weight=weight,
                           min_s=min_s)
    return f_dev * device_s + f_edge * edge_s + link_s
