"""A 16-float vector value for Numba kernels: load, store, broadcast, fma, max.

LLVM does not keep a grid of scalar accumulators in vector registers when a
GEMM micro-kernel is written with scalar loops: the loop vectorizer turns the
k loop into strided reductions and the accumulators spill.  This module gives
the kernels a value type that lowers to LLVM's ``<16 x float>`` so a
micro-kernel can name its accumulators as variables; LLVM then keeps them in
registers (one zmm each with AVX-512, two ymm each with AVX2).

Arrays passed to these helpers are 1-D float32 and the index is an element
offset; the caller guarantees that ``idx .. idx + 15`` lies inside the array.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from .target import has_fma

WIDTH = 16
#: The fastmath flags every kernel may use: they keep NaN and infinity semantics.
FASTMATH = {"reassoc", "contract"}


class F32x16(types.Type):
    """Numba type of a vector of 16 float32 lanes."""

    def __init__(self):
        super().__init__(name="f32x16")


f32x16 = F32x16()
_VEC = ir.VectorType(ir.FloatType(), WIDTH)
_I32 = ir.IntType(32)


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _element_ptr(context, builder, arrty, arr, idx):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [idx], inbounds=True)


def _is_f32_array(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1


@intrinsic
def vload(typingctx, arr, idx):
    """The 16 floats ``arr[idx:idx+16]``."""
    if not (_is_f32_array(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        p = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(p, _VEC.as_pointer()), align=4)

    return f32x16(arr, idx), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    """``arr[idx:idx+16] = v``."""
    if not (_is_f32_array(arr) and isinstance(idx, types.Integer) and v == f32x16):
        return None

    def codegen(context, builder, sig, args):
        p = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], builder.bitcast(p, _VEC.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, f32x16), codegen


def _splat(builder, scalar):
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), scalar, ir.Constant(_I32, 0))
    mask = ir.Constant(ir.VectorType(_I32, WIDTH), [0] * WIDTH)
    return builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined), mask)


def _lane_mask(builder, n):
    """<16 x i1>: lanes below ``n`` (an integer value) are set."""
    lanes = ir.Constant(ir.VectorType(ir.IntType(64), WIDTH), list(range(WIDTH)))
    nv = builder.insert_element(ir.Constant(ir.VectorType(ir.IntType(64), WIDTH), ir.Undefined),
                                builder.sext(n, ir.IntType(64)) if n.type.width < 64 else n,
                                ir.Constant(_I32, 0))
    nv = builder.shuffle_vector(nv, nv, ir.Constant(ir.VectorType(_I32, WIDTH), [0] * WIDTH))
    return builder.icmp_signed("<", lanes, nv)


@intrinsic
def vload_first(typingctx, arr, idx, n):
    """``arr[idx:idx+n]`` in the first ``n`` lanes (n <= 16), zeros after; reads nothing past them."""
    if not (_is_f32_array(arr) and isinstance(idx, types.Integer) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        p = builder.bitcast(_element_ptr(context, builder, sig.args[0], args[0], args[1]), _VEC.as_pointer())
        fnty = ir.FunctionType(_VEC, [_VEC.as_pointer(), _I32, ir.VectorType(ir.IntType(1), WIDTH), _VEC])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.load.v16f32.p0v16f32")
        zero = ir.Constant(_VEC, [0.0] * WIDTH)
        return builder.call(fn, [p, ir.Constant(_I32, 4), _lane_mask(builder, args[2]), zero])

    return f32x16(arr, idx, n), codegen


@intrinsic
def vstore_first(typingctx, arr, idx, v, n):
    """``arr[idx:idx+n] = v[:n]`` (n <= 16); writes nothing past them."""
    if not (_is_f32_array(arr) and isinstance(idx, types.Integer) and v == f32x16
            and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        p = builder.bitcast(_element_ptr(context, builder, sig.args[0], args[0], args[1]), _VEC.as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [_VEC, _VEC.as_pointer(), _I32, ir.VectorType(ir.IntType(1), WIDTH)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.masked.store.v16f32.p0v16f32")
        builder.call(fn, [args[2], p, ir.Constant(_I32, 4), _lane_mask(builder, args[3])])
        return context.get_dummy_value()

    return types.none(arr, idx, f32x16, n), codegen


@intrinsic
def vbroadcast(typingctx, arr, idx):
    """16 copies of ``arr[idx]`` (no negative-index wraparound)."""
    if not (_is_f32_array(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        p = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        return _splat(builder, builder.load(p, align=4))

    return f32x16(arr, idx), codegen


@intrinsic
def vzero(typingctx):
    """16 zeros."""

    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * WIDTH)

    return f32x16(), codegen


# A target without FMA instructions (e.g. NUMBA_CPU_NAME=sandybridge) would make
# llvm.fma a libm call per lane; llvm.fmuladd is a multiply and an add there.
_FMA_NAME = "llvm.fma.v16f32" if has_fma() else "llvm.fmuladd.v16f32"


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane: fused where the target has FMA, else a multiply then an add."""
    if not (a == f32x16 and b == f32x16 and c == f32x16):
        return None

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_VEC, [_VEC, _VEC, _VEC])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _FMA_NAME)
        return builder.call(fn, args)

    return f32x16(f32x16, f32x16, f32x16), codegen


@intrinsic
def vadd(typingctx, a, b):
    """``a + b`` lane by lane."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return f32x16(f32x16, f32x16), codegen


@intrinsic
def vmax0(typingctx, a):
    """``max(a, 0)`` lane by lane (ReLU); NaN stays NaN, as ``np.maximum`` gives."""
    if a != f32x16:
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * WIDTH)
        # "a < 0 ? 0 : a" is false for NaN, so NaN passes through.  The explicit
        # (harmless) flag keeps Numba's fastmath pass from adding nnan, which
        # would let LLVM pick the operand order of a max that drops NaN.
        less = builder.fcmp_ordered("<", args[0], zero, flags=("contract",))
        return builder.select(less, zero, args[0])

    return f32x16(f32x16), codegen


@intrinsic
def vsum(typingctx, a):
    """The sum of the 16 lanes, as a float32."""
    if a != f32x16:
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        width = WIDTH
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half))))
            hi = builder.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half, width)))
            )
            v = builder.fadd(lo, hi)
            width = half
        return builder.extract_element(v, ir.Constant(_I32, 0))

    return types.float32(f32x16), codegen


def aligned_empty(shape, dtype=np.float32, align: int = 64):
    """An uninitialised C-contiguous array whose data starts on an ``align``-byte boundary.

    numpy's large allocations start 16 bytes past a page; vector loads of
    contiguous 64-byte rows from such a base straddle two cache lines each,
    which costs the GEMM tiles about a third of their speed.
    """
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(n + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + n].view(dtype).reshape(shape)
