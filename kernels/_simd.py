"""A float32 vector value for the window kernels (pools, depthwise conv, LRN).

``f32v`` lowers to LLVM's ``<16 x float>``: one zmm register with AVX-512,
two ymm registers with AVX2, so the same kernel source runs at either width
(Numba's target decides; ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` force
one).  Loops written with it keep their accumulators in registers and handle
a row's ragged end with masked loads and stores instead of scalar remainder
loops.

Arithmetic follows IEEE: ``vmax`` propagates NaN (either operand), ``vrelu``
keeps NaN, no fast-math flag is set on any operation.

Arrays are 1-D float32; an index is an element offset, and the caller keeps
every lane it loads or stores inside the array (masked lanes are not
accessed).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

#: Floats per vector value.
VW = 16
#: Texels (4 floats) per vector value.
VT = VW // 4


class F32V(types.Type):
    """Numba type of a vector of ``VW`` float32 lanes."""

    def __init__(self):
        super().__init__(name=f"f32x{VW}")


f32v = F32V()
_F = ir.FloatType()
_VEC = ir.VectorType(_F, VW)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_MASK = ir.VectorType(ir.IntType(1), VW)


@register_model(F32V)
class _F32VModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _f32_array(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1


def _ints(*vs) -> bool:
    return all(isinstance(v, types.Integer) for v in vs)


def _i64(builder, v):
    return v if v.type.width == 64 else builder.sext(v, _I64)


def _ptr(context, builder, arrty, arr, idx, inbounds=True):
    """Pointer to ``arr[idx]`` as a vector pointer (``inbounds`` only when every lane is in the array)."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [_i64(builder, idx)], inbounds=inbounds), _VEC.as_pointer())


def _splat(builder, scalar, vty=_VEC):
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count))


def _lanes_in(builder, idx, lo, hi):
    """<VW x i1>: lane k is set when lo <= idx + k < hi (one unsigned 32-bit compare)."""
    vi = ir.VectorType(_I32, VW)
    start = builder.trunc(builder.sub(_i64(builder, idx), _i64(builder, lo)), _I32)
    size = builder.trunc(builder.sub(_i64(builder, hi), _i64(builder, lo)), _I32)
    pos = builder.add(_splat(builder, start, vi), ir.Constant(vi, list(range(VW))))
    return builder.icmp_unsigned("<", pos, _splat(builder, size, vi))


def _masked_load(builder, p, mask, passthru):
    fnty = ir.FunctionType(_VEC, [_VEC.as_pointer(), _I32, _MASK, _VEC])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.load.v{VW}f32.p0v{VW}f32")
    return builder.call(fn, [p, ir.Constant(_I32, 4), mask, passthru])


@intrinsic
def vload(typingctx, arr, idx):
    """The floats ``arr[idx:idx+VW]``."""
    if not (_f32_array(arr) and _ints(idx)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_ptr(context, builder, sig.args[0], *args), align=4)

    return f32v(arr, idx), codegen


@intrinsic
def vload_in(typingctx, arr, idx, lo, hi, fill):
    """Lane k is ``arr[idx+k]`` when lo <= idx+k < hi, else ``fill``; reads nothing else."""
    if not (_f32_array(arr) and _ints(idx, lo, hi) and isinstance(fill, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        arr_, idx_, lo_, hi_, fill_ = args
        if sig.args[4] != types.float32:
            fill_ = builder.fptrunc(fill_, _F)
        p = _ptr(context, builder, sig.args[0], arr_, idx_, inbounds=False)
        return _masked_load(builder, p, _lanes_in(builder, idx_, lo_, hi_), _splat(builder, fill_))

    return f32v(arr, idx, lo, hi, fill), codegen


@intrinsic
def vlanes(typingctx, start, n):
    """A lane mask for :func:`vload_mask`: 1.0 in lane k where 0 <= start + k < n, else 0.0."""
    if not _ints(start, n):
        return None

    def codegen(context, builder, sig, args):
        start_, n_ = args
        inside = _lanes_in(builder, start_, ir.Constant(_I64, 0), n_)
        return builder.select(inside, ir.Constant(_VEC, [1.0] * VW), ir.Constant(_VEC, [0.0] * VW))

    return f32v(start, n), codegen


@intrinsic
def vload_mask(typingctx, arr, idx, m):
    """Lane k is ``arr[idx+k]`` where ``m`` (from :func:`vlanes`) is non-zero, else 0.0; reads
    nothing else (one masked load: cheap with AVX-512, a mask-move pair with AVX2)."""
    if not (_f32_array(arr) and _ints(idx) and m == f32v):
        return None

    def codegen(context, builder, sig, args):
        arr_, idx_, m_ = args
        p = _ptr(context, builder, sig.args[0], arr_, idx_, inbounds=False)
        mask = builder.fcmp_ordered("!=", m_, ir.Constant(_VEC, [0.0] * VW))
        return _masked_load(builder, p, mask, ir.Constant(_VEC, [0.0] * VW))

    return f32v(arr, idx, m), codegen


@intrinsic
def vfill_outside(typingctx, v, idx, lo, hi, fill):
    """``v`` with ``fill`` in the lanes k where idx + k is outside [lo, hi)."""
    if not (v == f32v and _ints(idx, lo, hi) and isinstance(fill, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        v_, idx_, lo_, hi_, fill_ = args
        if sig.args[4] != types.float32:
            fill_ = builder.fptrunc(fill_, _F)
        return builder.select(_lanes_in(builder, idx_, lo_, hi_), v_, _splat(builder, fill_))

    return f32v(v, idx, lo, hi, fill), codegen


@intrinsic
def vpick(typingctx, m, a, b):
    """``a`` in the lanes where ``m`` is non-zero, else ``b`` (``m`` a vector of 0.0 / 1.0 lane masks)."""
    if not (m == f32v and a == f32v and b == f32v):
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * VW)
        return builder.select(builder.fcmp_ordered("!=", args[0], zero), args[1], args[2])

    return f32v(m, a, b), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    """``arr[idx:idx+VW] = v``."""
    if not (_f32_array(arr) and _ints(idx) and v == f32v):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _ptr(context, builder, sig.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, f32v), codegen


@intrinsic
def vstore_first(typingctx, arr, idx, v, n):
    """``arr[idx:idx+n] = v[:n]`` (n <= VW); writes nothing past them."""
    if not (_f32_array(arr) and _ints(idx, n) and v == f32v):
        return None

    def codegen(context, builder, sig, args):
        arr_, idx_, v_, n_ = args
        p = _ptr(context, builder, sig.args[0], arr_, idx_, inbounds=False)
        fnty = ir.FunctionType(ir.VoidType(), [_VEC, _VEC.as_pointer(), _I32, _MASK])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.store.v{VW}f32.p0v{VW}f32")
        zero = ir.Constant(_I64, 0)
        builder.call(fn, [v_, p, ir.Constant(_I32, 4), _lanes_in(builder, zero, zero, n_)])
        return context.get_dummy_value()

    return types.none(arr, idx, f32v, n), codegen


@intrinsic
def vsplat(typingctx, x):
    """``VW`` copies of the scalar ``x`` (as float32)."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        v = args[0] if sig.args[0] == types.float32 else builder.fptrunc(args[0], _F)
        return _splat(builder, v)

    return f32v(x), codegen


@intrinsic
def vtexels(typingctx, arr, idx):
    """The texel ``arr[idx:idx+4]`` repeated ``VT`` times."""
    if not (_f32_array(arr) and _ints(idx)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        t4 = ir.VectorType(_F, 4)
        p = builder.bitcast(builder.gep(data, [_i64(builder, args[1])], inbounds=True), t4.as_pointer())
        v = builder.load(p, align=4)
        return builder.shuffle_vector(v, ir.Constant(t4, ir.Undefined),
                                      ir.Constant(ir.VectorType(_I32, VW), [k % 4 for k in range(VW)]))

    return f32v(arr, idx), codegen


@intrinsic
def vcell(typingctx, arr, idx, cell):
    """Cell ``idx`` of ``arr`` in every lane's cell: ``arr[idx]`` in all lanes (``cell`` a literal 1), or
    the texel ``arr[4*idx:4*idx+4]`` repeated (``cell`` 4)."""
    if not (_f32_array(arr) and _ints(idx) and isinstance(cell, types.IntegerLiteral)
            and cell.literal_value in (1, 4)):
        return None
    c = cell.literal_value

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i = _i64(builder, args[1])
        if c == 1:
            return _splat(builder, builder.load(builder.gep(data, [i], inbounds=True), align=4))
        t4 = ir.VectorType(_F, 4)
        p = builder.gep(data, [builder.mul(i, ir.Constant(_I64, 4))], inbounds=True)
        v = builder.load(builder.bitcast(p, t4.as_pointer()), align=4)
        return builder.shuffle_vector(v, ir.Constant(t4, ir.Undefined),
                                      ir.Constant(ir.VectorType(_I32, VW), [k % 4 for k in range(VW)]))

    return f32v(arr, idx, cell), codegen


def _phase_shuffle(phase):
    @intrinsic
    def fn(typingctx, a, b, cell):
        if not (a == f32v and b == f32v and isinstance(cell, types.IntegerLiteral)):
            return None
        c = cell.literal_value
        mask = [(2 * (k // c) + phase) * c + k % c for k in range(VW)]

        def codegen(context, builder, sig, args):
            return builder.shuffle_vector(args[0], args[1], ir.Constant(ir.VectorType(_I32, VW), mask))

        return f32v(a, b, cell), codegen

    return fn


vevens = _phase_shuffle(0)
vevens.__doc__ = "Cells 0, 2, 4, ... of the ``2*VW`` floats ``a | b``, a cell being ``cell`` floats (1 or 4)."
vodds = _phase_shuffle(1)
vodds.__doc__ = "Cells 1, 3, 5, ... of the ``2*VW`` floats ``a | b``, a cell being ``cell`` floats (1 or 4)."


def _channel_shift(d):
    """Intrinsic for a channel shift of ``d`` (1..3 or -3..-1) across texels (see below)."""
    mask = []
    for k in range(VW):
        p, m = k // 4, k % 4 + d
        if d < 0:  # sources (previous block, this block)
            mask.append(4 * p + m + 4 if m < 0 else VW + 4 * p + m)
        else:  # sources (this block, next block)
            mask.append(4 * p + m if m < 4 else VW + 4 * p + m - 4)

    @intrinsic
    def fn(typingctx, a, b):
        if not (a == f32v and b == f32v):
            return None

        def codegen(context, builder, sig, args):
            return builder.shuffle_vector(args[0], args[1], ir.Constant(ir.VectorType(_I32, VW), mask))

        return f32v(a, b), codegen

    fn.__doc__ = (f"Texel vectors shifted by {d} channels: lane l of each pixel takes channel l + {d} "
                  f"of that pixel, from {'(previous block, this block)' if d < 0 else '(this block, next block)'}.")
    return fn


vshift_m3, vshift_m2, vshift_m1 = _channel_shift(-3), _channel_shift(-2), _channel_shift(-1)
vshift_p1, vshift_p2, vshift_p3 = _channel_shift(1), _channel_shift(2), _channel_shift(3)


@intrinsic
def vshift_cells(typingctx, a, b, cells, cell):
    """The ``VW`` floats starting ``cells`` cells into ``a | b`` (a cell being ``cell`` floats):
    ``a`` shifted down by that many cells, the freed top lanes from the start of ``b``."""
    if not (a == f32v and b == f32v and isinstance(cells, types.IntegerLiteral)
            and isinstance(cell, types.IntegerLiteral)):
        return None
    d = cells.literal_value * cell.literal_value
    mask = [k + d for k in range(VW)]

    def codegen(context, builder, sig, args):
        return builder.shuffle_vector(args[0], args[1], ir.Constant(ir.VectorType(_I32, VW), mask))

    return f32v(a, b, cells, cell), codegen


@intrinsic
def vfold_lanes(typingctx, a, width):
    """Lanes k, k + width, k + 2*width, ... of ``a`` summed into lane k (k < width; a pairwise
    tree of adds, so the order is fixed); ``width`` is a literal 1 or 4.  Other lanes: don't care."""
    if not (a == f32v and isinstance(width, types.IntegerLiteral)):
        return None
    target = width.literal_value

    def codegen(context, builder, sig, args):
        v = args[0]
        n = VW
        while n > target:
            n //= 2
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, VW),
                                                          [(k + n) % VW for k in range(VW)]))
            v = builder.fadd(v, hi)
        return v

    return f32v(a, width), codegen


@intrinsic
def vsum_first(typingctx, a):
    """Lane 0 of ``a`` as a float32."""
    if a != f32v:
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], ir.Constant(_I32, 0))

    return types.float32(a), codegen


@intrinsic
def vsqrt(typingctx, a):
    """Square root lane by lane (IEEE: NaN for NaN or negative, inf for inf)."""
    if a != f32v:
        return None

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]), f"llvm.sqrt.v{VW}f32")
        return builder.call(fn, args)

    return f32v(a), codegen


@intrinsic
def vdiv(typingctx, a, b):
    """``a / b`` lane by lane."""
    if not (a == f32v and b == f32v):
        return None

    def codegen(context, builder, sig, args):
        return builder.fdiv(*args)

    return f32v(a, b), codegen


@intrinsic
def vmax(typingctx, a, b):
    """``max(a, b)`` lane by lane; NaN if either lane is NaN."""
    if not (a == f32v and b == f32v):
        return None

    def codegen(context, builder, sig, args):
        a_, b_ = args
        m = builder.select(builder.fcmp_ordered(">", a_, b_), a_, b_)  # b when either is NaN
        return builder.select(builder.fcmp_unordered("uno", a_, a_), a_, m)

    return f32v(a, b), codegen


@intrinsic
def vmax_num(typingctx, acc, v):
    """``v if v > acc else acc`` lane by lane: one max instruction; a NaN in ``v`` is
    skipped, a NaN in ``acc`` is kept.  Pair it with :func:`vkeep_nan`."""
    if not (acc == f32v and v == f32v):
        return None

    def codegen(context, builder, sig, args):
        acc_, v_ = args
        return builder.select(builder.fcmp_ordered(">", v_, acc_), v_, acc_)

    return f32v(acc, v), codegen


@intrinsic
def vmax_nan(typingctx, acc, v):
    """``max(acc, v)`` lane by lane, NaN if either is NaN: a max and a blend, with the NaN check
    on ``v`` only (a NaN already in ``acc`` stays, as ``v > NaN`` is false)."""
    if not (acc == f32v and v == f32v):
        return None

    def codegen(context, builder, sig, args):
        acc_, v_ = args
        m = builder.select(builder.fcmp_ordered(">", v_, acc_), v_, acc_)
        return builder.select(builder.fcmp_unordered("uno", v_, v_), v_, m)

    return f32v(acc, v), codegen


@intrinsic
def vnan_if(typingctx, acc, v, w):
    """``acc`` with NaN in the lanes where ``v`` or ``w`` is NaN (one unordered compare covers both)."""
    if not (acc == f32v and v == f32v and w == f32v):
        return None

    def codegen(context, builder, sig, args):
        acc_, v_, w_ = args
        nan = ir.Constant(_VEC, [float("nan")] * VW)
        return builder.select(builder.fcmp_unordered("uno", v_, w_), nan, acc_)

    return f32v(acc, v, w), codegen


@intrinsic
def vkeep_nan(typingctx, bad, v):
    """``v`` in the lanes where it is NaN, else ``bad``: remembers a NaN seen in ``v``."""
    if not (bad == f32v and v == f32v):
        return None

    def codegen(context, builder, sig, args):
        bad_, v_ = args
        return builder.select(builder.fcmp_unordered("uno", v_, v_), v_, bad_)

    return f32v(bad, v), codegen


def _binary(name, op):
    @intrinsic
    def fn(typingctx, a, b):
        if not (a == f32v and b == f32v):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(*args)

        return f32v(a, b), codegen

    fn.__name__ = name
    fn.__doc__ = f"``a {'+' if op == 'fadd' else '*'} b`` lane by lane."
    return fn


vadd = _binary("vadd", "fadd")
vmul = _binary("vmul", "fmul")


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, fused."""
    if not (a == f32v and b == f32v and c == f32v):
        return None

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                            f"llvm.fma.v{VW}f32")
        return builder.call(fn, args)

    return f32v(a, b, c), codegen


@intrinsic
def vrelu(typingctx, a):
    """``max(a, 0)`` lane by lane, keeping NaN."""
    if a != f32v:
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * VW)
        return builder.select(builder.fcmp_ordered("<", args[0], zero), zero, args[0])

    return f32v(a), codegen
