"""cffi builders for coinfer's C layer (out-of-line API mode).

Every ``csrc/*.h`` holds plain C declarations only (no preprocessor lines), so
the same text serves as cffi's ``cdef`` and as the header the sources include.
The C layer is built into two extensions, one per layer that calls it:

- ``coinfer.kernels._native`` (``kernels_ffi``): layout transforms between
  buffer and image (``layout.c``) and strided region copies (``copy.c``),
  wrapped by ``coinfer.kernels.layout``; a sequence of native-program entries
  as one (``sequence.c``), used by ``coinfer.kernels.entry``;
- ``coinfer.hw._native`` (``hw_ffi``): cache maintenance for map/unmap and
  mmap'd arena memory (``memory.c``) and the flag wait of a sync (``sync.c``),
  wrapped by ``coinfer.hw.memory``; the native dispatch loop (``dispatch.c``),
  wrapped by ``coinfer.hw.dispatch``.

``status.h`` (the error codes) is shared by both.  Every function checks its
bounds and returns a status code; Python raises on a negative one.
"""
import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _builder(module: str, units: list[str]) -> FFI:
    headers = [HERE / "status.h"] + [HERE / f"{u}.h" for u in units]
    ffi = FFI()
    ffi.cdef("\n".join(h.read_text() for h in headers))
    ffi.set_source(
        module,
        "#include <stdint.h>\n" + "".join(f'#include "{h.name}"\n' for h in headers),
        sources=[os.path.relpath(HERE / f"{u}.c", ROOT) for u in units],
        include_dirs=[os.path.relpath(HERE, ROOT)],
        extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-unused-function"],
    )
    return ffi


kernels_ffi = _builder("coinfer.kernels._native", ["layout", "copy", "sequence"])
hw_ffi = _builder("coinfer.hw._native", ["memory", "sync", "dispatch"])

if __name__ == "__main__":
    kernels_ffi.compile(verbose=True)
    hw_ffi.compile(verbose=True)
