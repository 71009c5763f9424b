"""Fixed-size scratch arrays on the stack of a jitted function.

A micro-kernel keeps its accumulator tile in such an array: with a constant
size and constant-trip loops over it, LLVM promotes the whole tile to vector
registers, which a heap ``np.empty`` would prevent.  The size must be a
compile-time constant (a literal or a module-level int).
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.numpy_support import carray

__all__ = ["stack_f32", "stack_i64", "carray"]


def _stack(dtype):
    @intrinsic(prefer_literal=True)
    def alloc(typingctx, size):
        if not isinstance(size, types.IntegerLiteral):
            return None
        sig = types.CPointer(dtype)(size)

        def codegen(context, builder, signature, args):
            n = signature.args[0].literal_value
            return cgutils.alloca_once(builder, context.get_value_type(dtype), size=n)

        return sig, codegen

    return alloc


stack_f32 = _stack(types.float32)
stack_f32.__doc__ = "Pointer to ``size`` float32 on the stack; wrap with ``carray(p, (size,))``."
stack_i64 = _stack(types.int64)
stack_i64.__doc__ = "Pointer to ``size`` int64 on the stack; wrap with ``carray(p, (size,))``."
