"""Argument checks shared by the kernel sets, the hardware model and the graph layer.

Every message names the op, the argument, and what was expected versus given.
:func:`check_status` turns a C status code from csrc into such an error.
"""
from __future__ import annotations

import numpy as np


def array(op: str, name: str, a, ndim: int | None = None, dtype=np.float32) -> np.ndarray:
    """Check that ``a`` is an ndarray of ``dtype`` with ``ndim`` axes; return it C-contiguous."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{op}: {name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got {a.ndim}-D shape {a.shape}")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def out_array(op: str, out, shape, dtype=np.float32) -> np.ndarray:
    """Check a caller-given ``out``: ndarray, dtype, exact shape, C-contiguous, writeable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{op}: out must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{op}: out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: out must be C-contiguous, got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out must be writeable")
    return out


def pair(op: str, name: str, v, *, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (a, b), each >= ``minimum``."""
    if type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int:  # the common case, fast
        if v[0] >= minimum and v[1] >= minimum:
            return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        t = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v
    ):
        t = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    if min(t) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return t


def padding4(op: str, padding) -> tuple[int, int, int, int]:
    """Padding as an int, (ph, pw) or ONNX (top, left, bottom, right) -> (top, left, bottom, right)."""
    if (type(padding) is tuple and len(padding) == 4 and all(type(e) is int and e >= 0 for e in padding)):
        return padding  # the common case, fast
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in padding
    ):
        p = tuple(int(e) for e in padding)
        if len(p) == 2:
            p = (p[0], p[1], p[0], p[1])
    else:
        raise TypeError(
            f"{op}: padding must be an int, (ph, pw) or (top, left, bottom, right), got {padding!r}"
        )
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return p


def region(op: str, name: str, r, limit: int, *, multiple: int = 1) -> tuple[int, int]:
    """``None`` -> (0, limit); else a pair (start, stop) with 0 <= start <= stop <= limit.

    With ``multiple`` > 1 both ends must be multiples of it, except that stop may equal
    ``limit`` rounded up to the next multiple (a region ending in a partial block).
    """
    if r is None:
        return 0, limit
    if not (isinstance(r, (tuple, list)) and len(r) == 2) or not all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in r
    ):
        raise TypeError(f"{op}: {name} must be a pair of ints (start, stop), got {r!r}")
    r0, r1 = int(r[0]), int(r[1])
    hi = limit if multiple == 1 else -(-limit // multiple) * multiple
    if not (0 <= r0 <= r1 <= hi):
        raise ValueError(f"{op}: {name} must satisfy 0 <= start <= stop <= {hi}, got {r!r}")
    if multiple > 1 and (r0 % multiple or (r1 % multiple and r1 != limit)):
        raise ValueError(f"{op}: {name} ends must be multiples of {multiple}, got {r!r}")
    return r0, min(r1, limit)


def clip_bound(op: str, name: str, v) -> float:
    """A clip bound rounded to float32, as ONNX's float tensor bound is (past the range: infinite)."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a number, got {v!r}")
    if np.isnan(v):
        raise ValueError(f"{op}: {name} must not be NaN")
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def output(op: str, out, shape, whole: bool, inputs=(), *, names=None, in_place: bool = False) -> np.ndarray:
    """The caller's checked ``out``, or a new array: empty when ``whole`` output is
    computed, zeros when only a region is (cells outside it stay zero).

    ``out`` must not overlap ``inputs`` (named by ``names``, else "an input"),
    except that with ``in_place`` it may be one of them exactly.
    """
    if out is None:
        return np.empty(shape, np.float32) if whole else np.zeros(shape, np.float32)
    out = out_array(op, out, shape)
    for i, a in enumerate(inputs):
        if not np.may_share_memory(out, a):
            continue
        if not in_place:
            raise ValueError(f"{op}: out must not overlap {names[i] if names else 'an input'}")
        if out.ctypes.data != a.ctypes.data:
            raise ValueError(f"{op}: out must be an input itself or not overlap it")
    return out


def bias(op: str, b, n: int) -> np.ndarray:
    """A checked float32 bias of shape ``(n,)``; zeros for ``None``."""
    if b is None:
        return np.zeros(n, np.float32)
    b = array(op, "bias", b, 1)
    if b.shape != (n,):
        raise ValueError(f"{op}: bias must have shape ({n},), got {b.shape}")
    return b


# Status codes of csrc/status.h.
CF_OK = 0
_MESSAGES = {
    -1: "null pointer",
    -2: "bad shape",
    -3: "region out of range",
    -4: "array too small for the given shape",
    -5: "out of memory",
    -6: "misaligned pointer",
    -7: "the kernel raised an exception",
    -8: "timed out",
    -9: "stopped: another processor failed",
    -10: "unknown step kind",
}


def status_message(status: int) -> str:
    """What one of csrc's status codes means."""
    return _MESSAGES.get(status, f"unknown status {status}")


def check_status(status: int, op: str, detail: str = "") -> None:
    """Raise ValueError naming ``op`` if ``status`` is one of csrc's negative error codes."""
    if status == CF_OK:
        return
    msg = status_message(status)
    raise ValueError(f"{op}: C layer refused the call ({msg}){': ' + detail if detail else ''}")
