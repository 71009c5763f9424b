"""Bound native calls: a kernel's C entry point and its packed arguments.

An *entry* is a Numba ``cfunc`` with the C signature

    int32_t entry(const int64_t *iargs, const double *fargs)

that rebuilds its arrays from addresses and sizes in ``iargs`` (``carray``), reads
its float parameters from ``fargs``, calls the kernels' ``@njit`` internals and
returns 0, or :data:`EKERNEL` if they raised.  There is one entry per kernel
family and layout; each is compiled on first use and cached on disk.  Its cache
key includes a hash of the kernel sources (:func:`sources_salt`), so a change to
an internal it calls recompiles it.

A :class:`NativeCall` is one call of an entry with its argument blocks, made by
the binders of :mod:`coinfer.kernels.entry.buffer` / ``.image`` after the same
checks the Python kernels run.  A native program (``coinfer.hw.dispatch``) calls
it from C with no interpreter in the loop; :meth:`NativeCall.invoke` calls it
from Python.
"""
from __future__ import annotations

import ctypes
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import cfunc, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from .._conv_simd import aligned_empty

__all__ = ["NativeCall", "NoEntry", "sequence", "Block", "SIG", "EKERNEL", "entry_address", "sources_salt", "f32", "i64",
           "readonly"]

#: The C signature of every entry.
SIG = types.int32(types.CPointer(types.int64), types.CPointer(types.float64))
#: The status an entry returns when the kernel it calls raised (csrc/status.h, CF_EKERNEL).
EKERNEL = -7


@intrinsic
def f32(typingctx, address):
    """The float32 pointer at an int64 address (for ``carray``)."""
    if not isinstance(address, types.Integer):
        return None
    ptr = types.CPointer(types.float32)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address), codegen


@intrinsic
def i64(typingctx, address):
    """The int64 pointer at an int64 address (for ``carray``)."""
    if not isinstance(address, types.Integer):
        return None
    ptr = types.CPointer(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address), codegen


@intrinsic
def readonly(typingctx, arr):
    """The same array typed read-only, as numpy arrays with ``writeable=False`` are: an
    entry then calls an internal with the types the Python kernels call it with, so the
    internal's compiled specialisation is shared."""
    if not isinstance(arr, types.Array):
        return None
    ro = arr.copy(readonly=True)

    def codegen(context, builder, sig, args):
        return impl_ret_borrowed(context, builder, ro, args[0])

    return ro(arr), codegen


_SALT: list = []


def sources_salt() -> int:
    """A hash of every kernel source file: entries close over it, so Numba's cache key of an
    entry changes whenever an internal it calls (in another file) changes."""
    if not _SALT:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parent.parent
        for p in sorted(root.rglob("*.py")):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
        _SALT.append(int.from_bytes(h.digest()[:7], "little"))
    return _SALT[0]


_lock = threading.Lock()
_compiled: dict = {}


def entry_address(make) -> int:
    """The address of the entry ``make(salt)`` returns (a Python function of ``SIG``), compiled
    on first use (and cached on disk)."""
    with _lock:
        fn = _compiled.get(make)
        if fn is None:
            fn = _compiled[make] = cfunc(SIG, cache=True)(make(sources_salt()))
        return fn.address


class NoEntry(Exception):
    """This call has no native entry (e.g. it needs numpy work on its inputs at run time): run
    the Python kernel instead.  The message says why."""


_CTYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)


@dataclass(frozen=True)
class NativeCall:
    """One call of an entry, bound to its arrays.

    - ``name``: what it computes, e.g. ``"buffer conv2d"`` (for messages);
    - ``address``: the entry's address;
    - ``iargs`` (int64) / ``fargs`` (float64): the argument blocks, whose addresses
      point into the arrays held in ``keep``;
    - ``scratch``: ``((slot, key, nfloats), ...)``: the caller writes into
      ``iargs[slot]`` the address of a scratch of at least ``nfloats`` float32 (64-byte
      aligned), which calls on one thread may share by ``key`` (its content is not
      kept from one call to the next);
    - ``parts``: calls run in order as this one (``address`` is then csrc's
      ``cf_sequence_entry``, whose ``iargs`` :meth:`materialise` fills).
    """

    name: str
    address: int
    iargs: np.ndarray
    fargs: np.ndarray
    scratch: tuple = ()
    keep: tuple = ()
    parts: tuple = ()

    def scratch_needs(self):
        """Yield ``(key, nfloats)`` of every scratch this call (and its parts) needs."""
        for _, key, nfloats in self.scratch:
            yield key, int(nfloats)
        for p in self.parts:
            yield from p.scratch_needs()

    def materialise(self, buffers: dict, keep: list) -> tuple:
        """(entry address, iargs address, fargs address) of a copy of the blocks with the scratch
        slots pointing into ``buffers[key]``; the copies are appended to ``keep``."""
        iargs = self.iargs.copy()
        for slot, key, _ in self.scratch:
            iargs[slot] = buffers[key].ctypes.data
        for i, p in enumerate(self.parts):
            iargs[1 + 3 * i:4 + 3 * i] = p.materialise(buffers, keep)
        fargs = self.fargs if self.fargs.size else np.zeros(1)
        keep += [iargs, fargs, self]
        return self.address, iargs.ctypes.data, fargs.ctypes.data

    def invoke(self) -> int:
        """Call the entry from Python (scratch allocated here); returns its status (0: done)."""
        sizes: dict = {}
        for key, n in self.scratch_needs():
            sizes[key] = max(sizes.get(key, 1), n)
        buffers = {k: aligned_empty(n) for k, n in sizes.items()}
        for b in buffers.values():
            b[:] = 0.0
        held: list = []
        address, ia, fa = self.materialise(buffers, held)
        return int(_CTYPE(address)(ia, fa))


def sequence(name: str, calls) -> NativeCall:
    """``calls`` run in order as one :class:`NativeCall` (the first failing status stops them)."""
    from .._native import ffi, lib

    calls = tuple(calls)
    if len(calls) == 1:
        return calls[0]
    address = int(ffi.cast("intptr_t", ffi.addressof(lib, "cf_sequence_entry")))
    iargs = np.zeros(1 + 3 * len(calls), np.int64)
    iargs[0] = len(calls)
    return NativeCall(name, address, iargs, np.zeros(1), parts=calls)


class Block:
    """Builds a :class:`NativeCall`'s argument blocks, in the order its entry reads them."""

    def __init__(self):
        self._i: list = []
        self._f: list = []
        self._keep: list = []
        self._scratch: list = []

    def array(self, a: np.ndarray, dtype=np.float32) -> "Block":
        """The address of ``a`` (C-contiguous, of ``dtype``); ``a`` is kept alive with the call."""
        if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous):
            raise TypeError(f"native call: arrays must be C-contiguous {np.dtype(dtype)}, got "
                            f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        self._i.append(a.ctypes.data)
        self._keep.append(a)
        return self

    def flat(self, a: np.ndarray) -> "Block":
        """The address and the element count of ``a`` (float32, C-contiguous)."""
        return self.array(a).ints(a.size)

    def ints(self, *values) -> "Block":
        self._i.extend(int(v) for v in values)
        return self

    def floats(self, *values) -> "Block":
        self._f.extend(float(v) for v in values)
        return self

    def scratch(self, key: str, nfloats: int) -> "Block":
        """A slot for the address of a per-thread scratch (see :class:`NativeCall`)."""
        self._scratch.append((len(self._i), key, int(nfloats)))
        self._i.append(0)
        return self

    def keep(self, *objs) -> "Block":
        self._keep.extend(objs)
        return self

    def pad(self, words: int) -> "Block":
        """Zeros up to ``words`` int64 words since the block began (fixed-width records)."""
        self._i.extend([0] * (words - len(self._i)))
        return self

    def __len__(self) -> int:
        return len(self._i)

    def call(self, name: str, make) -> NativeCall:
        return NativeCall(name, entry_address(make), np.array(self._i, np.int64),
                          np.array(self._f or [0.0], np.float64), tuple(self._scratch), tuple(self._keep))
