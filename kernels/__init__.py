"""coinfer.kernels: hand-written compute kernels in two layouts.

- ``coinfer.kernels.buffer``: NCHW float32 kernels (the CPU's layout).
- ``coinfer.kernels.image``: MACE-style image kernels (the GPU's layout).
- ``coinfer.kernels.layout``: C transforms between the two (csrc through cffi).
- ``coinfer.kernels.reference``: float64 numpy oracle for every op.
"""
