"""Row ranges for height partitioning, and the halo they cost.

A height split hands each processor a band of output rows.  To compute rows
[r0, r1) of a conv or pool output, a processor reads input rows
[r0*S - pad_top, (r1-1)*S - pad_top + D*(F-1) + 1), clipped to the input.  The
rows that two bands both read form the halo; inside an operator chain the
required ranges are propagated backwards from the chain's end, so every op of
the chain computes its band plus the rows later ops need (CoDL, MobiSys 2022,
Sec. 4: "the halo accumulates backwards along the chain").
"""
from __future__ import annotations


def halo_padding(stride: int, h_out: int, h_in: int, kernel: int) -> int:
    """CoDL's halo size P = S*(H_out - 1) - H_in + F: the extra input rows beyond
    H_in that an op with output height H_out reads in total (padding plus overlap)."""
    return stride * (h_out - 1) - h_in + kernel


def input_rows(out_rows: tuple[int, int], *, stride: int, pad_top: int, kernel: int,
               dilation: int, h_in: int) -> tuple[int, int]:
    """Input rows [lo, hi) that output rows ``out_rows`` of a sliding-window op read."""
    r0, r1 = out_rows
    if r1 <= r0:
        return (0, 0)
    lo = r0 * stride - pad_top
    hi = (r1 - 1) * stride - pad_top + dilation * (kernel - 1) + 1
    return (max(0, min(lo, h_in)), max(0, min(hi, h_in)))


def chain_rows(windows: list[dict], last_rows: tuple[int, int]) -> list[tuple[int, int]]:
    """Output-row ranges every op of a height-split chain must compute.

    ``windows[i]`` describes op i of the chain as ``dict(stride, pad_top, kernel,
    dilation, h_in)`` (an element-wise op is stride 1, pad 0, kernel 1).  Given the
    rows the chain's last op must produce, returns per op the output rows it must
    compute so that every later op has its input; op 0's input rows follow from
    :func:`input_rows` on the result.
    """
    need = [None] * len(windows)
    rows = last_rows
    for i in range(len(windows) - 1, -1, -1):
        need[i] = rows
        w = windows[i]
        rows = input_rows(rows, stride=w["stride"], pad_top=w["pad_top"], kernel=w["kernel"],
                          dilation=w["dilation"], h_in=w["h_in"])
    return need
