"""Shared test setup: the hypothesis CI profile and the project tolerance."""
import os

import numpy as np
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("COINFER_MAX_EXAMPLES", "30")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def assert_close(y, ref, what: str = "") -> None:
    """Project tolerance: |y - ref| <= 1e-4 * max|ref| + 1e-6."""
    y = np.asarray(y, np.float64)
    ref = np.asarray(ref, np.float64)
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != {ref.shape}"
    tol = 1e-4 * (np.abs(ref).max() if ref.size else 0.0) + 1e-6
    err = np.abs(y - ref).max() if ref.size else 0.0
    assert err <= tol, f"{what}: max abs error {err:.3g} > tolerance {tol:.3g}"
