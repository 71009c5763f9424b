"""Numba kernels on NCHW float32 buffers (the CPU's layout). ONNX semantics (opset 13+)."""
from .conv import conv2d
from .fc import fully_connected
from .pool import max_pool2d, avg_pool2d, global_avg_pool
from .elementwise import relu, add, concat
from .lrn import lrn
from .softmax import softmax
from .resize import resize

__all__ = [
    "conv2d", "fully_connected", "max_pool2d", "avg_pool2d", "global_avg_pool",
    "relu", "add", "concat", "lrn", "softmax", "resize",
]
