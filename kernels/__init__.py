"""coinfer.kernels: hand-written compute kernels in two layouts.

- ``coinfer.kernels.buffer``: NCHW float32 kernels (the CPU's layout).
- ``coinfer.kernels.image``: MACE-style image kernels (the GPU's layout).
- ``coinfer.kernels.layout``: C transforms between the two (csrc through cffi).
- ``coinfer.kernels.reference``: float64 numpy oracle for every op.
- ``coinfer.kernels.args``: the argument checks every layer shares, and
  ``check_status`` for C status codes.
- ``coinfer.kernels.geometry``: output sizes of sliding windows.
- ``coinfer.kernels.target``: the instruction set the kernels are compiled for
  (``coinfer.kernels.isa()``) and its FMA peak.
"""

#: The two data layouts: NCHW buffers (the CPU's) and MACE-style images (the GPU's).
LAYOUTS = ("buffer", "image")


def isa() -> str:
    """The vector instruction set the conv and FC kernels are compiled for in this process:
    ``"avx512"``, ``"avx2"`` (AVX2 with FMA) or ``"generic"`` (see ``coinfer.kernels.target``)."""
    from .target import isa as _isa

    return _isa()
