"""Fuzzed ONNX import: random models (valid and invalid) either match onnxruntime under the
cpu and codl plans or fail with a ValueError/TypeError naming a node or tensor.

CI draws 200 models; ``pytest -m long`` draws 5,000 and prints the counts
(cases, matches, clean errors; anything else fails the test).
"""
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from coinfer.hw import SoC  # noqa: E402
from tests.graph.onnx_fuzz import models, verdict  # noqa: E402

COUNTS: dict = {}


@pytest.fixture(scope="module")
def soc():
    with SoC.host() as s:
        yield s


def _fuzz(soc, case, counts):
    try:
        counts[verdict(case, soc, seed=counts.total())] += 1
    except AssertionError as e:
        counts["other"] += 1
        raise AssertionError(f"{e}\n  case: {case.describe()}") from None


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture]


@settings(max_examples=200, suppress_health_check=_HEALTH)
@given(case=models())
def test_fuzzed_models_match_onnxruntime_or_fail_cleanly(soc, case):
    _fuzz(soc, case, COUNTS.setdefault("ci", Counter()))


@pytest.mark.long
@settings(max_examples=5000, suppress_health_check=_HEALTH)
@given(case=models())
def test_fuzzed_models_long(soc, case):
    _fuzz(soc, case, COUNTS.setdefault("long", Counter()))


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print the counts at the end of the module, past output capture."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    for name, c in COUNTS.items():
        line = (f"\nonnx fuzz ({name}): {c.total()} cases, {c['match']} match onnxruntime, "
                f"{c['error']} clean errors, {c['other']} other")
        with capture.global_and_fixture_disabled():
            print(line)
