"""Numba kernels on NCHW float32 buffers (the CPU's layout). ONNX semantics (opset 13+).

The public API is the functions below.  Some submodules share a function's
name (``lrn``, ``softmax``, ``resize``): each import below loads the module and
then rebinds the package attribute to the function, so ``coinfer.kernels.buffer.lrn``
is the kernel (a module loads once, so later imports of it do not rebind).  The modules themselves stay importable by their full
name (``from coinfer.kernels.buffer.lrn import ...``).
"""
from .conv import PackedWeights, conv2d, prepack_weights
from .fc import fully_connected
from .pool import max_pool2d, avg_pool2d, global_avg_pool
from .elementwise import relu, clip, add, concat
from .lrn import lrn
from .softmax import softmax
from .resize import resize

__all__ = [
    "conv2d", "prepack_weights", "PackedWeights", "fully_connected", "max_pool2d", "avg_pool2d", "global_avg_pool",
    "relu", "clip", "add", "concat", "lrn", "softmax", "resize",
]
