"""The project tolerance for numerical comparisons."""
import numpy as np


def assert_close(y, ref, what: str = "") -> None:
    """Project tolerance: |y - ref| <= 1e-4 * max|ref| + 1e-6."""
    y = np.asarray(y, np.float64)
    ref = np.asarray(ref, np.float64)
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != {ref.shape}"
    tol = 1e-4 * (np.abs(ref).max() if ref.size else 0.0) + 1e-6
    err = np.abs(y - ref).max() if ref.size else 0.0
    assert err <= tol, f"{what}: max abs error {err:.3g} > tolerance {tol:.3g}"
