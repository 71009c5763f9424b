"""cffi builder for coinfer's C layer (out-of-line API mode).

Every ``csrc/*.h`` holds plain C declarations only (no preprocessor lines), so
the same text serves as cffi's ``cdef`` and as the header the sources include.
Every ``csrc/*.c`` is compiled into one extension, ``coinfer.kernels._native``.
"""
import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

headers = sorted(HERE.glob("*.h"))
sources = sorted(HERE.glob("*.c"))

ffibuilder = FFI()
ffibuilder.cdef("\n".join(h.read_text() for h in headers))
ffibuilder.set_source(
    "coinfer.kernels._native",
    "#include <stdint.h>\n" + "".join(f'#include "{h.name}"\n' for h in headers),
    sources=[os.path.relpath(s, ROOT) for s in sources],
    include_dirs=[os.path.relpath(HERE, ROOT)],
    extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
