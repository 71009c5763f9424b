"""Numba kernels on MACE-style image tensors (N, H, CB, W, 4) (the GPU's layout)."""
from .conv import PackedFilter, conv2d, prepack_filter
from .fc import fully_connected
from .pool import max_pool2d, avg_pool2d, global_avg_pool
from .elementwise import relu, clip, add, concat
from .lrn import lrn
from .softmax import softmax

__all__ = [
    "conv2d", "prepack_filter", "PackedFilter", "fully_connected", "max_pool2d", "avg_pool2d", "global_avg_pool",
    "relu", "clip", "add", "concat", "lrn", "softmax",
]
