"""The instruction set the kernels are compiled for, and its FMA peak.

Numba compiles for the host CPU, or for ``NUMBA_CPU_NAME`` with the features
``NUMBA_CPU_FEATURES`` when they are set (numba.core.config.CPU_NAME and
CPU_FEATURES; with only a name set, Numba still passes the host's feature
list, so the host's vector width stays on).  :func:`target` repeats Numba's
choice, and :func:`isa` asks LLVM what it makes of one ``<16 x float>`` fused
multiply-add for that target: zmm registers mean ``"avx512"``, ymm with
``vfmadd`` mean ``"avx2"``, anything else (no FMA, e.g. Sandy Bridge, or no
AVX) is ``"generic"``.  The conv and FC kernels pick their register tiles
from it when they are imported.

To force the AVX2 path on an AVX-512 host::

    NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES="" python ...

(an empty feature list means "the named CPU's own features").  Numba's
on-disk cache keys every compiled function by (triple, CPU name, features),
so code built for one target is never loaded for another.
"""
from __future__ import annotations

import functools

import numpy as np

ISAS = ("avx512", "avx2", "generic")

# One <16 x float> FMA, as the kernels' vector intrinsics emit it.
_PROBE_IR = """
define void @probe(<16 x float>* %a, <16 x float>* %c) {
  %x = load <16 x float>, <16 x float>* %a
  %z = load <16 x float>, <16 x float>* %c
  %r = call <16 x float> @llvm.fma.v16f32(<16 x float> %x, <16 x float> %x, <16 x float> %z)
  store <16 x float> %r, <16 x float>* %c
  ret void
}
declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)
"""


@functools.lru_cache(maxsize=None)
def target() -> tuple[str, str]:
    """(CPU name, feature string) that Numba's JIT compiles for in this process."""
    import llvmlite.binding as ll
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    name = config.CPU_NAME or ll.get_host_cpu_name()
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return name, features


@functools.lru_cache(maxsize=None)
def isa() -> str:
    """``"avx512"``, ``"avx2"`` (AVX2 with FMA) or ``"generic"``: the vector ISA of :func:`target`."""
    import llvmlite.binding as ll

    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    name, features = target()
    machine = ll.Target.from_triple(ll.get_process_triple()).create_target_machine(
        cpu=name, features=features, opt=2)
    asm = machine.emit_assembly(ll.parse_assembly(_PROBE_IR))
    if "zmm" in asm:
        return "avx512"
    if "ymm" in asm and "vfmadd" in asm:
        return "avx2"
    return "generic"


#: The conv register tiles of each ISA (``kernels._tiles``, shared by both layouts):
#: (pixels of the wide tile, its output channels, pixels of the one-group tile of 16 channels).
CONV_TILES = {"avx512": (8, 32, 12), "avx2": (6, 16, 6), "generic": (6, 16, 6)}


def conv_tiles(which: str | None = None) -> tuple[int, int, int]:
    """(wide tile pixels, wide tile channels, 16-channel tile pixels) of the conv kernels for the ISA."""
    return CONV_TILES[which or isa()]


def has_fma() -> bool:
    """Whether the target has fused multiply-add instructions."""
    return isa() != "generic"


def vector_lanes(which: str | None = None) -> int:
    """float32 lanes of one vector register: 16 (AVX-512), 8 (AVX2), 4 (generic, SSE)."""
    return {"avx512": 16, "avx2": 8, "generic": 4}[which or isa()]


# FMA instructions of the ISA's width that one core retires per cycle, by host CPU
# (LLVM's name).  Sources: AMD's Zen 4 optimisation guide (two 256-bit FMA pipes;
# a 512-bit FMA takes both, so one per cycle), Zen 1 (two 128-bit pipes: one
# 256-bit FMA per cycle), Intel's optimisation manual (client Ice Lake, Tiger
# Lake, Rocket Lake: one 512-bit FMA port; Xeon Scalable parts: two).
_FMA_UNITS = {
    "avx512": {"znver4": 1, "icelake-client": 1, "tigerlake": 1, "rocketlake": 1, "cannonlake": 1},
    "avx2": {"znver1": 1, "btver2": 1, "bdver1": 1, "bdver2": 1, "bdver3": 1, "bdver4": 1},
}


def fma_units(which: str | None = None, cpu: str | None = None) -> int:
    """FMA instructions per cycle of the ISA's width on the host CPU (or ``cpu``); 2 unless listed."""
    import llvmlite.binding as ll

    which = which or isa()
    cpu = cpu or ll.get_host_cpu_name()
    return _FMA_UNITS.get(which, {}).get(cpu, 2)


def peak_flops_per_cycle(which: str | None = None, cpu: str | None = None) -> int:
    """One core's FMA peak in float32 FLOP per cycle: FMA units x lanes x 2.

    The hardware is the host CPU even when the ISA is forced narrower: forcing
    AVX2 on an AVX-512 host gives that host's 256-bit FMA peak.
    """
    which = which or isa()
    return fma_units(which, cpu) * vector_lanes(which) * 2


def _chain(steps):
    """``steps`` dependent 64-bit multiply-adds (imul 3 cycles + add 1 on Intel since
    Nehalem and AMD since Zen: Agner Fog's instruction tables); returns the value."""
    x = np.uint64(0x2545F4914F6CDD1D)
    for _ in range(steps):
        x = x * x + np.uint64(0x9E3779B97F4A7C15)
    return x


_CYCLES_PER_STEP = 4


@functools.lru_cache(maxsize=None)
def clock_hz() -> tuple[float, str]:
    """One core's clock in Hz, measured once per process (:func:`measure_clock_hz`)."""
    return measure_clock_hz()


def measure_clock_hz() -> tuple[float, str]:
    """One core's clock in Hz now, and how it was found.

    Measured: the fastest of 5 runs of a dependent multiply-add chain of known
    latency (about 20 ms in all).  The clock drops when the other cores are
    busy, so a study measures it next to its timings.  ``/proc/cpuinfo``'s
    "cpu MHz" is the nominal clock in a VM and the last sampled one on bare
    metal, so it is only quoted.
    """
    from numba import njit

    chain = njit(nogil=True, cache=True)(_chain)
    steps = 1_000_000
    chain(10)
    best = min(_timed(chain, steps) for _ in range(5))
    hz = steps * _CYCLES_PER_STEP / best
    mhz = cpuinfo_mhz()
    quoted = f"; /proc/cpuinfo says {mhz:.0f} MHz" if mhz else ""
    return hz, f"measured (dependent 64-bit multiply-add chain, {_CYCLES_PER_STEP} cycles a step){quoted}"


def _timed(fn, steps) -> float:
    import time

    t0 = time.perf_counter()
    fn(steps)
    return time.perf_counter() - t0


def cpuinfo_mhz() -> float | None:
    """The first "cpu MHz" of /proc/cpuinfo, or None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_gflops(fresh: bool = False) -> dict:
    """This core's FMA peak for :func:`isa`: FMA units x lanes x 2 x clock.

    ``fresh`` measures the clock again instead of using the process's first
    measurement.  Returns {"isa", "cpu", "fma_units", "lanes", "clock_ghz",
    "clock_source", "peak_gflops"}.
    """
    import llvmlite.binding as ll

    hz, source = measure_clock_hz() if fresh else clock_hz()
    units, lanes = fma_units(), vector_lanes()
    return {"isa": isa(), "cpu": ll.get_host_cpu_name(), "fma_units": units, "lanes": lanes,
            "clock_ghz": hz / 1e9, "clock_source": source, "peak_gflops": units * lanes * 2 * hz / 1e9}
