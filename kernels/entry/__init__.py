"""Native entry points: the kernels as C-callable functions, for a dispatch loop with no interpreter.

``coinfer.kernels.entry.buffer`` and ``coinfer.kernels.entry.image`` mirror
``coinfer.kernels.buffer`` / ``.image``: the same functions with the same
arguments and the same checks, but each returns a :class:`NativeCall` (the call
bound to its arrays) instead of computing.  A native program
(``coinfer.hw.dispatch``) runs such calls from C; the output is the Python
kernel's, bit for bit, because the call runs the same ``@njit`` loop with the
same arguments.  A function raises :class:`NoEntry` for an instance whose
Python kernel does numpy work at run time.  Entries compile on first use (one
to two seconds each, once; cached on disk): hand-written ones per kernel family
(``_entries``) and, for any other ``@njit`` loop, one generated for the
argument types the Python wrapper passes (:mod:`.generic`).
"""
from . import buffer, image
from .call import NativeCall, NoEntry

__all__ = ["NativeCall", "NoEntry", "buffer", "image"]
