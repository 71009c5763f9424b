"""The online speed factors and predictions of coinfer.graph.edge.online, on synthetic frames."""
from types import SimpleNamespace as Frame

import numpy as np
import pytest

from coinfer.graph.edge.online import online_predictions, speed_factors


def test_last_frame_factor_uses_only_earlier_frames():
    f = speed_factors([0.2, 0.1, 0.3], 0.1, weight=1.0)
    np.testing.assert_allclose(f, [1.0, 2.0, 1.0])


def test_ewma_is_in_log_space_and_starts_at_the_first_ratio():
    f = speed_factors([0.4, 0.1, 0.1], 0.1, weight=0.5)
    # frame 1: log 4; frame 2: 0.5 log 4 + 0.5 log 1 = log 2
    np.testing.assert_allclose(f, [1.0, 4.0, 2.0])


def test_frames_without_a_ratio_keep_the_factor():
    f = speed_factors([None, 0.3, float("nan"), 0.0, 0.2], 0.1, weight=1.0)
    np.testing.assert_allclose(f, [1.0, 1.0, 3.0, 3.0, 3.0])
    # a side whose predicted part is below min_s never moves off 1 (e.g. no ops on it)
    np.testing.assert_allclose(speed_factors([0.5, 0.5], 0.0), [1.0, 1.0])


def test_online_prediction_per_side_plus_link():
    frames = [Frame(device_s=0.2, edge_s=0.01, fallback=None),  # device x2, edge x1
              Frame(device_s=0.1, edge_s=0.03, fallback=None),  # device x1, edge x3
              Frame(device_s=0.9, edge_s=0.0, fallback="edge failed"),  # no ratio from a fallback
              Frame(device_s=0.1, edge_s=0.01, fallback=None)]
    got = online_predictions(frames, 0.1, 0.01, 0.05, weight=1.0)
    np.testing.assert_allclose(got, [0.1 + 0.01 + 0.05, 0.2 + 0.01 + 0.05, 0.1 + 0.03 + 0.05,
                                     0.1 + 0.03 + 0.05])


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5])
def test_weight_outside_0_1_is_refused(weight):
    with pytest.raises(ValueError, match="speed_factors: weight"):
        speed_factors([0.1], 0.1, weight=weight)


def test_compare_table_shows_the_three_predictions():
    from coinfer.graph.studies.edge import Measured, format_compare

    frames = [(0.2, 0.2, 0, 0, 0.1), (0.088, 0.088, 0, 0, 0.08), (0.096, 0.096, 0, 0, 0.12)]  # warm-up first
    m = Measured((3, 0, "edge-first"), 1e6, 0.100, 0.090, 0.095, 0.092, 0.092, 0.0, 0.0, 0.0, 0.0, 2, 0,
                 per_frame=frames, warmup=1)
    assert m.online_frame_error == pytest.approx((0.1 + 0.2) / 2)  # |0.088/0.08 - 1|, |0.096/0.12 - 1|
    row = format_compare([(1e6, "chosen", m)]).splitlines()[2]
    for figure in ("100.0ms", "95.0ms", "90.0ms", "92.0ms", "-8.0%", "-3.2%", "15.0%", "+2.2%"):
        assert figure in row
    assert m.as_json()["online_predicted_ms"] == pytest.approx(95.0)
