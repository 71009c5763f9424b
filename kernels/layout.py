"""Buffer (NCHW) <-> image layout transforms, run in C (csrc/layout.c).

Image activations are the 5-D view ``(N, H, CB, W, 4)`` of MACE's image2d
``[N*H rows, CB*W columns, 4]`` with ``CB = ceil(C/4)``; padding channels of
the last block are zero.  Filters go to ``(OCB, KH, KW, IC, 4)`` (MACE's filter
image), depthwise filters to ``(CB, KH, KW, 4)``, FC weights to ``(MB, K, 4)``.

Calls release the GIL (cffi), so two pools can transform at once.
"""
from __future__ import annotations

import numpy as np

from ._native import ffi, lib
from .args import check_status

__all__ = [
    "image_shape",
    "to_image",
    "to_buffer",
    "bind_to_image",
    "bind_to_buffer",
    "filter_to_image",
    "depthwise_to_image",
    "fc_to_image",
    "copy_region",
]


def _blocks(c: int) -> int:
    return (c + 3) // 4


def image_shape(shape) -> tuple:
    """Image shape ``(N, H, CB, W, 4)`` for an NCHW ``shape``."""
    n, c, h, w = shape
    return (n, h, _blocks(c), w, 4)


def _f32(op: str, name: str, a, ndim: int | None = None) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{op}: {name} must be float32, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {a.shape}")
    return a


def _contig_in(op: str, name: str, a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _check_out(op: str, out, shape) -> np.ndarray:
    _f32(op, "out", out)
    if out.shape != tuple(shape):
        raise ValueError(f"{op}: out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out must be writeable")
    return out


def _region(op: str, name: str, r, limit: int) -> tuple[int, int]:
    if r is None:
        return 0, limit
    try:
        r0, r1 = (int(v) for v in r)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a pair (start, stop), got {r!r}") from None
    if not (0 <= r0 <= r1 <= limit):
        raise ValueError(f"{op}: {name} must satisfy 0 <= start <= stop <= {limit}, got {r!r}")
    return r0, r1


def _ptr(a: np.ndarray):
    return ffi.cast("float *", a.ctypes.data)


def _to_image_args(x, out, rows, channels, make_out: bool) -> tuple:
    """The checks of :func:`to_image` -> (x, out, the C call's arguments after the pointers)."""
    op = "to_image"
    x = _contig_in(op, "x", _f32(op, "x", x, 4))
    n, c, h, w = x.shape
    if c < 1:
        raise ValueError(f"{op}: x must have at least one channel, got shape {x.shape}")
    shape = image_shape(x.shape)
    if out is None and make_out:
        out = np.zeros(shape, np.float32)
    else:
        _check_out(op, out, shape)
    r0, r1 = _region(op, "rows", rows, h)
    c0, c1 = _region(op, "channels", channels, c)
    return x, out, (n, c, h, w, r0, r1, c0, c1)


def to_image(x, out=None, rows=None, channels=None) -> np.ndarray:
    """NCHW float32 -> image ``(N, H, CB, W, 4)``.

    ``rows=(r0, r1)`` and ``channels=(c0, c1)`` restrict the transform to that
    region; cells outside it in ``out`` are untouched.  When the channel region
    reaches the last channel, the last block's padding lanes are zeroed.
    """
    x, out, dims = _to_image_args(x, out, rows, channels, True)
    check_status(lib.cf_to_image(_ptr(x), x.size, _ptr(out), out.size, *dims), "to_image")
    return out


def _to_buffer_args(img, c, out, rows, channels, make_out: bool) -> tuple:
    """The checks of :func:`to_buffer` -> (img, out, the C call's arguments after the pointers)."""
    op = "to_buffer"
    img = _contig_in(op, "img", _f32(op, "img", img, 5))
    n, h, cb, w, four = img.shape
    if four != 4:
        raise ValueError(f"{op}: img last axis must be 4 (one texel), got shape {img.shape}")
    if not isinstance(c, (int, np.integer)) or isinstance(c, bool):
        raise TypeError(f"{op}: c must be an int, got {type(c).__name__}")
    c = int(c)
    if not (4 * cb - 3 <= c <= 4 * cb) or c < 1:
        raise ValueError(f"{op}: c={c} does not fit {cb} channel blocks (expected {max(1, 4 * cb - 3)}..{4 * cb})")
    shape = (n, c, h, w)
    if out is None and make_out:
        out = np.empty(shape, np.float32) if rows is None and channels is None else np.zeros(shape, np.float32)
    else:
        _check_out(op, out, shape)
    r0, r1 = _region(op, "rows", rows, h)
    c0, c1 = _region(op, "channels", channels, c)
    return img, out, (n, c, h, w, r0, r1, c0, c1)


def to_buffer(img, c: int, out=None, rows=None, channels=None) -> np.ndarray:
    """Image ``(N, H, CB, W, 4)`` -> NCHW float32 with ``c`` true channels."""
    img, out, dims = _to_buffer_args(img, c, out, rows, channels, True)
    check_status(lib.cf_to_buffer(_ptr(img), img.size, _ptr(out), out.size, *dims), "to_buffer")
    return out


def _entry(name: str, fn: str, src: np.ndarray, dst: np.ndarray, dims: tuple):
    from .entry.call import NativeCall

    address = int(ffi.cast("intptr_t", ffi.addressof(lib, fn)))
    iargs = np.array([src.ctypes.data, src.size, dst.ctypes.data, dst.size, *dims], np.int64)
    return NativeCall(name, address, iargs, np.zeros(1), keep=(src, dst))


def _in_place(op: str, a) -> None:
    if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
        raise ValueError(f"{op}: a native call reads its arrays in place; give a C-contiguous array, got "
                         f"strides {a.strides}")


def bind_to_image(x, out, rows=None, channels=None):
    """:func:`to_image` into ``out`` as a :class:`~coinfer.kernels.entry.NativeCall` (the same checks;
    ``x`` must be C-contiguous: the call reads it when it runs)."""
    _in_place("to_image", x)
    x, out, dims = _to_image_args(x, out, rows, channels, False)
    return _entry("to_image", "cf_to_image_entry", x, out, dims)


def bind_to_buffer(img, c: int, out, rows=None, channels=None):
    """:func:`to_buffer` into ``out`` as a :class:`~coinfer.kernels.entry.NativeCall` (the same checks;
    ``img`` must be C-contiguous)."""
    _in_place("to_buffer", img)
    img, out, dims = _to_buffer_args(img, c, out, rows, channels, False)
    return _entry("to_buffer", "cf_to_buffer_entry", img, out, dims)


def filter_to_image(w) -> np.ndarray:
    """OIHW conv weights -> filter image ``(OCB, KH, KW, IC, 4)``."""
    op = "filter_to_image"
    w = _contig_in(op, "w", _f32(op, "w", w, 4))
    oc, ic, kh, kw = w.shape
    if min(w.shape) < 1:
        raise ValueError(f"{op}: w must have no empty axis, got shape {w.shape}")
    out = np.empty((_blocks(oc), kh, kw, ic, 4), np.float32)
    check_status(lib.cf_filter_to_image(_ptr(w), w.size, _ptr(out), out.size, oc, ic, kh, kw), op)
    return out


def depthwise_to_image(w) -> np.ndarray:
    """Depthwise weights ``(C, 1, KH, KW)`` -> ``(CB, KH, KW, 4)``."""
    op = "depthwise_to_image"
    w = _contig_in(op, "w", _f32(op, "w", w, 4))
    c, one, kh, kw = w.shape
    if one != 1:
        raise ValueError(f"{op}: w must have shape (C, 1, KH, KW), got {w.shape}")
    if min(w.shape) < 1:
        raise ValueError(f"{op}: w must have no empty axis, got shape {w.shape}")
    out = np.empty((_blocks(c), kh, kw, 4), np.float32)
    check_status(lib.cf_depthwise_to_image(_ptr(w), w.size, _ptr(out), out.size, c, kh, kw), op)
    return out


def fc_to_image(w) -> np.ndarray:
    """FC weights ``(M, K)`` -> ``(MB, K, 4)``."""
    op = "fc_to_image"
    w = _contig_in(op, "w", _f32(op, "w", w, 2))
    m, k = w.shape
    if min(w.shape) < 1:
        raise ValueError(f"{op}: w must have no empty axis, got shape {w.shape}")
    out = np.empty((_blocks(m), k, 4), np.float32)
    check_status(lib.cf_fc_to_image(_ptr(w), w.size, _ptr(out), out.size, m, k), op)
    return out


def copy_region(src, dst, src_index, dst_index) -> None:
    """Copy ``src[src_index]`` into ``dst[dst_index]`` in C (strided, bounds-checked).

    The indices are tuples of slices with step 1; both boxes must have the
    same shape.  Used to move halo rows and region shares between tensors.
    """
    op = "copy_region"
    _f32(op, "src", src)
    _f32(op, "dst", dst)
    if not dst.flags.writeable:
        raise ValueError(f"{op}: dst must be writeable")
    s_view = src[src_index]
    d_view = dst[dst_index]
    if s_view.shape != d_view.shape:
        raise ValueError(f"{op}: region shapes differ: src {s_view.shape} vs dst {d_view.shape}")
    if s_view.ndim == 0 or s_view.size == 0:
        return
    nd = s_view.ndim
    shape = ffi.new("int64_t[]", list(s_view.shape))
    ss = ffi.new("int64_t[]", [st // 4 for st in s_view.strides])
    ds = ffi.new("int64_t[]", [st // 4 for st in d_view.strides])
    if any(st < 0 for st in s_view.strides + d_view.strides):
        raise ValueError(f"{op}: negative strides are not supported")
    # Pointers are to each region's first element; the lengths run to each base array's end.
    s_off = (s_view.ctypes.data - src.ctypes.data) // 4
    d_off = (d_view.ctypes.data - dst.ctypes.data) // 4
    s_len = _extent(src) - s_off
    d_len = _extent(dst) - d_off
    st = lib.cf_copy_region(_ptr(s_view), s_len, ss, _ptr(d_view), d_len, ds, shape, nd)
    check_status(st, op)


def _extent(a: np.ndarray) -> int:
    """Elements from ``a``'s first element to one past its last (non-negative strides)."""
    return 1 + sum((n - 1) * (s // 4) for n, s in zip(a.shape, a.strides) if n > 0)
