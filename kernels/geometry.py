"""Output sizes of sliding windows, shared by both kernel sets and the reference."""
from __future__ import annotations


def pool_output_size(n: int, k: int, s: int, pb: int, pe: int, ceil_mode: bool) -> int:
    """Output length of a pooling window sliding over one axis; < 1 if it does not fit.

    ONNX / onnxruntime rule: in ceil mode a last window that would start in the
    end padding is dropped.
    """
    span = n + pb + pe - k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + pb:
        out -= 1
    return out
