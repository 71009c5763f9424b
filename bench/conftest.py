"""Shared setup of the pytest-benchmark studies in bench/.

Run the studies as ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest bench
--benchmark-only``.  Those two variables pin OpenBLAS (numpy's BLAS, a peer in
some studies) to a core type and cache size chosen for the test machine; they
must be unset before numpy is imported, which a conftest cannot do because
pytest has imported numpy by then.  This file therefore only warns, in the
report header and at the end of the run, when they are still set.

The kernel study (bench/test_kernels.py) adds one row per layer through the
``kernel_study_rows`` fixture; the table and the geometric means are printed
at the end of the session.
"""
from __future__ import annotations

import os

import pytest

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Rows of the kernel study, filled by bench/test_kernels.py, printed at session end.
_KERNEL_ROWS: list[dict] = []
# Other studies' tables: (title, callable returning lines), printed at session end.
_TABLES: list = []


@pytest.fixture(scope="session")
def study_table():
    """Register ``(title, lines_fn)``: ``lines_fn()`` gives the table's lines at session end."""
    return lambda title, lines_fn: _TABLES.append((title, lines_fn))


def _openblas_warning() -> str | None:
    set_vars = [f"{v}={os.environ[v]}" for v in _OPENBLAS_VARS if v in os.environ]
    if not set_vars:
        return None
    return (
        "WARNING: " + ", ".join(set_vars) + " still set; numpy/OpenBLAS peers are pinned. "
        "Run benchmarks as: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest bench --benchmark-only"
    )


def pytest_report_header(config):
    warning = _openblas_warning()
    return [warning] if warning else []


@pytest.fixture(scope="session")
def kernel_study_rows() -> list[dict]:
    """The kernel study's table: append one dict per layer (see bench/test_kernels.py)."""
    return _KERNEL_ROWS


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    warning = _openblas_warning()
    if _KERNEL_ROWS:
        from coinfer.graph.costs.measure import geomean
        from coinfer.graph.studies import kernels as ks

        tr.section("kernel study: GFLOP/s on one thread, timed interleaved with onnxruntime")
        tr.write_line(ks.describe_peak())
        tr.write_line(
            f"{'layer':28s} {'shape':30s} {'buffer':>8s} {'image':>8s} {'ort':>8s} "
            f"{'buf/ort':>8s} {'img/ort':>8s} {'GHz':>5s} {'buf%pk':>7s} {'img%pk':>7s}"
        )
        for row in _KERNEL_ROWS:
            share = {k: None if row.get(k) is None else 100 * row[k] for k in ("peak_share_buffer",
                                                                               "peak_share_image")}
            tr.write_line(
                f"{row['layer']:28s} {row['shape']:30s} {_fmt(row['gflops_buffer'], '8.1f')} "
                f"{_fmt(row['gflops_image'], '8.1f')} {_fmt(row['gflops_ort'], '8.1f')} "
                f"{_fmt(row['ratio_buffer_ort'], '8.2f')} {_fmt(row['ratio_image_ort'], '8.2f')} "
                f"{_fmt(row.get('clock_ghz'), '5.2f')} "
                f"{_fmt(share['peak_share_buffer'], '6.0f')}% {_fmt(share['peak_share_image'], '6.0f')}%"
            )
        conv = [r for r in _KERNEL_ROWS if r["kind"] == "conv"]
        for label, key in (("buffer/ort", "ratio_buffer_ort"), ("image/ort", "ratio_image_ort"),
                           ("buffer/FMA peak", "peak_share_buffer"), ("image/FMA peak", "peak_share_image")):
            values = [r[key] for r in conv if r[key] is not None]
            tr.write_line(
                f"geometric mean of {label} over {len(values)} of {len(conv)} conv layers: "
                f"{_fmt(geomean(values) if values else None, '.2f')}"
            )
    for title, lines_fn in _TABLES:
        lines = lines_fn()
        if lines:
            tr.section(title)
            for line in lines:
                tr.write_line(line)
    if warning:
        tr.write_line(warning)
