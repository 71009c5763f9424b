"""Who this host is, for per-machine caches: ISA, CPU name and clock; and where the caches live.

Things measured once per machine (the host's throughput per processor and op
class, :mod:`.calibration`; the latency dataset,
:mod:`coinfer.graph.costs.dataset`) are cached as text files (JSON, CSV;
never pickle) under :func:`cache_dir` and found again by
:func:`find_cached`: same file kind, ISA and CPU name, and a clock within
:data:`CLOCK_TOLERANCE` of this one's (the measured clock wanders by a few
percent from run to run).
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

__all__ = ["HostId", "host_id", "cache_dir", "cache_path", "find_cached", "CLOCK_TOLERANCE"]

#: Cached measurements are reused when the clocks differ by at most this fraction.
CLOCK_TOLERANCE = 0.06


class HostId(tuple):
    """(isa, cpu, clock_ghz): the vector ISA the kernels are compiled for in this
    process (``coinfer.kernels.isa()``), LLVM's host CPU name and one core's measured clock."""

    __slots__ = ()

    def __new__(cls, isa: str, cpu: str, clock_ghz: float):
        return super().__new__(cls, (str(isa), str(cpu), float(clock_ghz)))

    isa = property(lambda self: self[0])
    cpu = property(lambda self: self[1])
    clock_ghz = property(lambda self: self[2])

    def as_json(self) -> dict:
        return {"isa": self.isa, "cpu": self.cpu, "clock_ghz": round(self.clock_ghz, 3)}


@functools.lru_cache(maxsize=None)
def host_id() -> HostId:
    """This process's :class:`HostId` (the clock is measured once per process)."""
    from coinfer.kernels import target

    hz, _ = target.clock_hz()
    import llvmlite.binding as ll

    return HostId(target.isa(), ll.get_host_cpu_name(), hz / 1e9)


def cache_dir() -> Path:
    """``$COINFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/coinfer``, else ``~/.cache/coinfer`` (created)."""
    d = os.environ.get("COINFER_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "coinfer")
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def cache_path(kind: str, host: HostId, suffix: str, tag: str = "") -> Path:
    """Where a ``kind`` file for ``host`` goes: ``{kind}-{isa}-{cpu}-{clock}GHz[-{tag}]{suffix}``."""
    tag = f"-{_safe(tag)}" if tag else ""
    return cache_dir() / f"{_safe(kind)}-{host.isa}-{_safe(host.cpu)}-{host.clock_ghz:.2f}GHz{tag}{suffix}"


def find_cached(kind: str, host: HostId, suffix: str, tag: str = "") -> Path | None:
    """A cached ``kind`` file for the same ISA and CPU with a clock within
    :data:`CLOCK_TOLERANCE` of ``host``'s (the nearest), or None."""
    tag = f"-{_safe(tag)}" if tag else ""
    pat = re.compile(re.escape(f"{_safe(kind)}-{host.isa}-{_safe(host.cpu)}-") + r"([0-9.]+)GHz"
                     + re.escape(tag + suffix) + "$")
    best = None
    for p in cache_dir().iterdir():
        m = pat.match(p.name)
        if not m:
            continue
        ghz = float(m.group(1))
        err = abs(ghz - host.clock_ghz) / host.clock_ghz
        if err <= CLOCK_TOLERANCE and (best is None or err < best[0]):
            best = (err, p)
    return None if best is None else best[1]
