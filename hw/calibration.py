"""The host's throughput per kernel layout and op class, measured once per machine and cached.

An emulated processor's time is the host's time of the same work times a
scale (:class:`~coinfer.hw.profile.CostProfile`).  The device figures in the
profiles are relative to a *reference host* (the AVX-512 machine their
constants were measured on); a host that runs coinfer's kernels faster or
slower than that one must not change an emulated latency.  So every compute
or transform task's host time is first normalised to the reference host by
its op class's factor ``reference seconds / this host's seconds`` on a fixed
workload of that class (:meth:`HostSpeed.factor`), then scaled to the device.
Op classes slow down differently on an older ISA: convs are bound by FMA
throughput (about 2.5x slower with AVX2 than AVX-512, more without FMA),
FC and element-wise ops by memory bandwidth.

:func:`host_speed` measures the workloads of :data:`CLASSES` with both kernel
sets (a few seconds, plus compiling them on a cold Numba cache), caches the
result as JSON keyed by ISA, CPU, clock (:mod:`.host`) and the kernel sources, and reads it back
afterwards.  :data:`REFERENCE` holds the reference host's seconds.
"""
from __future__ import annotations

import functools
import json
import time

import numpy as np

from . import host as _host

__all__ = ["CLASSES", "HostSpeed", "host_speed", "measure_host", "REFERENCE", "REFERENCE_SPEED"]

#: Op classes (the latency predictor's model families) and the layout transform.
CLASSES = ("conv", "depthwise", "pool", "globalpool", "fc", "eltwise", "lrn", "softmax", "transform")
VERSION = 2  # 2: the fastest run per workload (1: the median)

#: Seconds of each class's workload on the reference host (AMD Zen 4, AVX-512, one core at
#: 3.7 GHz under KVM), per kernel layout; measured with :func:`measure_host`, alone on the machine,
#: as medians (calibration version 1).  Version 2 keeps each workload's fastest run, which on a
#: quiet host lies a few percent below the median: emulated times on the reference host itself
#: come out that much shorter.
REFERENCE = {
    "buffer": {"conv": 0.00216, "depthwise": 0.000325, "pool": 0.000177, "globalpool": 6.26e-06,
               "fc": 0.000345, "eltwise": 8.18e-05, "lrn": 0.000148, "softmax": 1.37e-05,
               "transform": 3.22e-05},
    "image": {"conv": 0.00219, "depthwise": 0.00021, "pool": 0.000115, "globalpool": 6.95e-06,
               "fc": 0.000342, "eltwise": 7.42e-05, "lrn": 0.000166, "softmax": 1.48e-05,
               "transform": 3.29e-05},
}


class HostSpeed:
    """Seconds of each class's workload on a host, per layout (``seconds[layout][cls]``)."""

    def __init__(self, seconds: dict, host: dict | None = None):
        self.seconds = {lay: {c: float(v) for c, v in d.items()} for lay, d in seconds.items()}
        self.host = dict(host or {})

    def factor(self, layout: str | None = None, op_class: str | None = None) -> float:
        """reference seconds / this host's seconds for ``op_class`` (default ``conv``) run with
        ``layout``'s kernels (default buffer): below 1 on a slower host."""
        lay = layout if layout in REFERENCE else "buffer"
        cls = op_class if op_class in REFERENCE[lay] else "conv"
        mine = self.seconds.get(lay, {}).get(cls)
        return REFERENCE[lay][cls] / mine if mine else 1.0

    def to_json(self) -> dict:
        return {"format": "coinfer-host-speed", "version": VERSION, "host": self.host, "seconds": self.seconds}

    @classmethod
    def from_json(cls, doc: dict) -> "HostSpeed":
        if doc.get("format") != "coinfer-host-speed" or doc.get("version") != VERSION:
            raise ValueError("HostSpeed.from_json: not a coinfer host-speed file of this version")
        return cls(doc["seconds"], doc.get("host"))

    def __repr__(self) -> str:
        return f"HostSpeed({self.host})"


#: The reference host itself: every factor is 1.
REFERENCE_SPEED = HostSpeed(REFERENCE, {"isa": "avx512", "cpu": "znver4", "reference": True})


def _workloads():
    """{layout: {class: callable}}: one fixed workload per class and kernel set."""
    from coinfer.kernels import buffer as kb
    from coinfer.kernels import image as ki
    from coinfer.kernels import layout as kl

    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    x = r(1, 64, 56, 56)
    w = r(64, 64, 3, 3) * np.float32(0.05)
    xd, wd = r(1, 128, 56, 56), r(128, 1, 3, 3)
    xp = r(1, 64, 112, 112)
    v, wf = r(1, 4096), r(1024, 4096) * np.float32(0.02)
    xl = r(1, 96, 55, 55)
    xg = r(1, 512, 7, 7)
    s = r(1, 1000)
    wb = kb.prepack_weights(w, 1)
    xi, wi = kl.to_image(x), ki.prepack_filter(kl.filter_to_image(w))
    xdi, wdi = kl.to_image(xd), kl.depthwise_to_image(wd)
    xpi, xli, xgi = kl.to_image(xp), kl.to_image(xl), kl.to_image(xg)
    vi, wfi = kl.to_image(v.reshape(1, 4096, 1, 1)), kl.fc_to_image(wf)
    si = kl.to_image(s.reshape(1, 1000, 1, 1))
    outs = {}

    def out(key, a):
        outs.setdefault(key, np.empty_like(a))
        return outs[key]

    y = kb.conv2d(x, wb, padding=1)
    yi = ki.conv2d(xi, wi, padding=1, out_channels=64)
    yd, ydi = kb.conv2d(xd, wd, padding=1, groups=128), ki.conv2d(xdi, wdi, padding=1, groups=128)
    yp, ypi = kb.max_pool2d(xp, 3, stride=2, padding=1), ki.max_pool2d(xpi, 3, stride=2, padding=1)
    yf, yfi = kb.fully_connected(v, wf), ki.fully_connected(vi, wfi, out_channels=1024)
    return {
        "buffer": {
            "conv": lambda: kb.conv2d(x, wb, padding=1, out=y),
            "depthwise": lambda: kb.conv2d(xd, wd, padding=1, groups=128, out=yd),
            "pool": lambda: kb.max_pool2d(xp, 3, stride=2, padding=1, out=yp),
            "globalpool": lambda: kb.global_avg_pool(xg),
            "fc": lambda: kb.fully_connected(v, wf, out=yf),
            "eltwise": lambda: kb.relu(xp, out=out("relu", xp)),
            "lrn": lambda: kb.lrn(xl, size=5, out=out("lrn", xl)),
            "softmax": lambda: kb.softmax(s, axis=1, out=out("sm", s)),
            "transform": lambda: kl.to_buffer(xi, 64, out=out("tb", x)),
        },
        "image": {
            "conv": lambda: ki.conv2d(xi, wi, padding=1, out_channels=64, out=yi),
            "depthwise": lambda: ki.conv2d(xdi, wdi, padding=1, groups=128, out=ydi),
            "pool": lambda: ki.max_pool2d(xpi, 3, stride=2, padding=1, out=ypi),
            "globalpool": lambda: ki.global_avg_pool(xgi),
            "fc": lambda: ki.fully_connected(vi, wfi, out_channels=1024, out=yfi),
            "eltwise": lambda: ki.relu(xpi, out=out("relui", xpi)),
            "lrn": lambda: ki.lrn(xli, 96, size=5, out=out("lrni", xli)),
            "softmax": lambda: ki.softmax(si, 1000, out=out("smi", si)),
            "transform": lambda: kl.to_image(x, out=out("ti", xi)),
        },
    }


def _seconds(fn, repeats: int = 7, min_time: float = 2e-3) -> float:
    """Seconds of one call of ``fn``: the fastest of ``repeats`` runs of at least ``min_time``
    each.  The fastest, not the median: other work on the host only lengthens a run, and a
    calibration taken while something else ran (a cold start, a busy neighbour) is cached
    for good, so it must not carry that moment's slowdown."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    loops = max(1, int(min_time / one))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - t0) / loops)
    return float(min(runs))


def measure_host(repeats: int = 7) -> HostSpeed:
    """Time every class's workload with both kernel sets on the calling thread (no cache)."""
    loads = _workloads()
    secs = {lay: {c: _seconds(fn, repeats) for c, fn in d.items()} for lay, d in loads.items()}
    return HostSpeed(secs, _host.host_id().as_json())


@functools.lru_cache(maxsize=None)
def host_speed(refresh: bool = False) -> HostSpeed:
    """This host's :class:`HostSpeed`, from the cache (ISA, CPU, clock, and a hash of the kernel
    sources, so changed kernels are measured again) or measured and cached."""
    from coinfer.kernels.entry.call import sources_salt

    hid = _host.host_id()
    tag = f"v{VERSION}-k{sources_salt() & 0xFFFFFFFF:08x}"
    path = None if refresh else _host.find_cached("calibration", hid, ".json", tag)
    if path is not None:
        try:
            return HostSpeed.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, OSError):
            pass
    hs = measure_host()
    _host.cache_path("calibration", hid, ".json", tag).write_text(json.dumps(hs.to_json(), indent=1))
    return hs
