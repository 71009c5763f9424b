"""Cost profiles: how an emulated SoC differs from the host that runs coinfer.

A :class:`CostProfile` holds

- a **time scale** per processor name: a compute (or transform) task that took
  ``t`` seconds on the host takes ``t * scale`` on the emulated processor.  A
  scale is ``host_gflops / device_gflops``: the device's effective conv
  throughput against the host's, both in GFLOP/s;
- a **modelled cost** per sharing kind (``transform``, ``map``, ``unmap``,
  ``sync``, ``transfer``, ``load``): a constant (s) plus a per-byte charge
  (s/byte).  An :class:`~coinfer.hw.soc.SoC` realises it by making the worker
  wait that long after the real operation; :meth:`Trace.replay` adds it when
  it re-times a trace.

Profiles (``profiles()``, ``get_profile(name)``):

``host``
    Scale 1, no modelled cost: the machine as it is.
``snapdragon855``
    CoDL's measurements (MobiSys 2022) for a 3x3 conv <112,112,32,64> split
    0.5 by height.  The shared input half is 56x112x32 float32 = 802,816 B:
    transform 0.05 ms -> 6.23e-11 s/B; map 0.07 ms -> 8.72e-11 s/B; unmap a
    0.003 ms constant; pre-sync 0.85 ms and post-sync 0.06 ms, so each of the
    two syncs of a co-executed op costs their mean, 0.455 ms (the pair totals
    CoDL's "about 1 ms" sync).  CPU and GPU computed their halves (231 MFLOP)
    in 1.89 and 1.95 ms: 122 and 119 GFLOP/s on images; the GPU on buffers runs
    conv 3.5x slower (``layouts``).
``raspberry_pi``
    A Raspberry Pi 3 device (Edgent): device-only AlexNet (about 1.45 GFLOP)
    takes more than 2 s, so 0.7 GFLOP/s on every processor name.  Sharing
    costs are the Snapdragon's per-byte charges times 8, the ratio of the two
    boards' memory bandwidth (LPDDR2 vs LPDDR4X; a modelling assumption).
``desktop_edge``
    A quad-core desktop edge server (Edgent's edge): 150 GFLOP/s on every
    processor name, an assumption (four AVX2 cores at about half of peak).
    No sharing costs: it is used as one whole processor, not co-executed.
``nexus5_cpu``, ``nexus5_gpu``, ``cloud_cpu``, ``cloud_gpu``
    Guo (IC2E 2018)'s phone and cloud, fitted to its Table III averages: see
    the block at the end of this module (:func:`fit_guo_profile`).

**Layouts.**  A profile may make a processor slower when it runs another
layout's kernels than its own: ``layouts={"gpu": {"buffer": 3.5}}`` (the
``snapdragon855`` profile) charges the GPU CoDL's measured 3.5x for 3x3 conv
on buffers rather than images (Adreno), so a muLayer-like plan, whose GPU
works on buffers, pays it.  The penalty applies to the op classes in
:data:`LAYOUT_CLASSES` (conv), the kernels CoDL measured it for.

**The host.**  ``HOST_GFLOPS`` is the throughput of the *reference host* the
device figures are relative to.  Host time is first normalised to that host
per op class (``host=``, a :class:`~coinfer.hw.calibration.HostSpeed`:
``profile.calibrated(host_speed())`` or ``profile.on_host()`` uses this
machine's cached measurement), so an emulated latency does not depend on which
host ran it; without ``host`` the host is taken to be the reference.
``profile.calibrated(host_gflops)`` with a number still re-derives every scale
from one throughput figure.
"""
from __future__ import annotations

from types import MappingProxyType

__all__ = ["Cost", "CostProfile", "profiles", "get_profile", "SHARING_KINDS", "KINDS", "HOST_GFLOPS",
           "NATIVE_LAYOUT", "LAYOUT_CLASSES"]

KINDS = ("compute", "transform", "map", "unmap", "sync", "transfer", "load")
SHARING_KINDS = ("transform", "map", "unmap", "sync")
SCALED_KINDS = ("compute", "transform")  # work the processor's own kernels do

# Single-thread throughput of coinfer's buffer conv2d on the development host (GFLOP/s),
# measured on CoDL's reference share: rows [0, 56) of the 3x3 conv <112,112,32,64>
# (2.9 ms for 231 MFLOP; the image conv2d took 2.7 ms).
HOST_GFLOPS = 80.0
#: The layout a processor name's own kernels use (others: buffer).
NATIVE_LAYOUT = {"gpu": "image"}
#: Op classes a profile's layout penalty applies to.
LAYOUT_CLASSES = ("conv",)


class Cost:
    """A modelled cost: ``constant + per_byte * nbytes`` seconds."""

    __slots__ = ("constant", "per_byte")

    def __init__(self, constant: float = 0.0, per_byte: float = 0.0):
        if constant < 0 or per_byte < 0:
            raise ValueError(f"Cost: constant and per_byte must be >= 0, got {constant}, {per_byte}")
        self.constant = float(constant)
        self.per_byte = float(per_byte)

    def __call__(self, nbytes: int) -> float:
        return self.constant + self.per_byte * nbytes

    def __eq__(self, other) -> bool:
        return isinstance(other, Cost) and (self.constant, self.per_byte) == (other.constant, other.per_byte)

    def __repr__(self) -> str:
        return f"Cost(constant={self.constant:g}, per_byte={self.per_byte:g})"


ZERO = Cost()


class CostProfile:
    """Per-processor time scales and per-kind modelled costs (see the module docstring).

    ``gflops`` maps processor names to device throughput; names not listed use
    ``gflops["default"]`` if given, else scale 1.  ``costs`` maps kinds to
    :class:`Cost`; kinds not listed cost nothing.
    """

    def __init__(self, name: str, gflops=None, costs=None, host_gflops: float = HOST_GFLOPS, *,
                 layouts=None, host=None):
        self.name = name
        self.host_gflops = float(host_gflops)
        self.host = host
        self.layouts = MappingProxyType({p: MappingProxyType(dict(d)) for p, d in (layouts or {}).items()})
        for p, d in self.layouts.items():
            for lay, f in d.items():
                if lay not in ("buffer", "image") or not f > 0:
                    raise ValueError(f"CostProfile {name}: layouts[{p!r}] must map 'buffer'/'image' to a factor "
                                     f"> 0, got {dict(d)}")
        self.gflops = MappingProxyType(dict(gflops or {}))
        for k, v in self.gflops.items():
            if v <= 0:
                raise ValueError(f"CostProfile {name}: gflops[{k!r}] must be > 0, got {v}")
        costs = dict(costs or {})
        for kind, c in costs.items():
            if kind not in KINDS or kind == "compute":
                raise ValueError(f"CostProfile {name}: no modelled cost for kind {kind!r}; kinds are {KINDS[1:]}")
            if not isinstance(c, Cost):
                raise TypeError(f"CostProfile {name}: costs[{kind!r}] must be a Cost, got {type(c).__name__}")
        self.costs = MappingProxyType(costs)

    def scale(self, processor: str, layout: str | None = None, op_class: str | None = None) -> float:
        """Emulated time / host time for work done by ``processor`` with ``layout``'s kernels
        (default: its own) on an op of ``op_class`` (default ``conv``; see
        :data:`coinfer.hw.calibration.CLASSES`).  1 for a processor the profile does not scale."""
        g = self.gflops.get(processor, self.gflops.get("default"))
        if g is None:
            return 1.0
        lay = layout or NATIVE_LAYOUT.get(processor, "buffer")
        s = self.host_gflops / g
        if self.host is not None:
            s *= self.host.factor(lay, op_class)
        if (op_class or "conv") in LAYOUT_CLASSES:
            s *= self.layouts.get(processor, {}).get(lay, 1.0)
        return s

    def cost(self, kind: str, nbytes: int = 0) -> float:
        """Modelled seconds for one task of ``kind`` moving ``nbytes`` (0 for compute)."""
        return self.costs.get(kind, ZERO)(nbytes)

    @property
    def is_free(self) -> bool:
        """True when the profile adds no modelled cost."""
        return all(c == ZERO for c in self.costs.values())

    def _copy(self, **kw) -> "CostProfile":
        a = {"gflops": self.gflops, "costs": self.costs, "host_gflops": self.host_gflops,
             "layouts": self.layouts, "host": self.host, **kw}
        return CostProfile(self.name, a["gflops"], a["costs"], a["host_gflops"], layouts=a["layouts"],
                           host=a["host"])

    def calibrated(self, host) -> "CostProfile":
        """The same device for another host: ``host`` is the host's throughput in GFLOP/s
        (a number: every scale re-derived from it) or a
        :class:`~coinfer.hw.calibration.HostSpeed` (per layout and op class)."""
        if isinstance(host, (int, float)):
            if host <= 0:
                raise ValueError(f"CostProfile {self.name}: host_gflops must be > 0, got {host}")
            return self._copy(host_gflops=host)
        if not hasattr(host, "factor"):
            raise TypeError(f"CostProfile {self.name}: calibrated() takes GFLOP/s or a HostSpeed, got {host!r}")
        return self._copy(host=host)

    def on_host(self) -> "CostProfile":
        """This profile calibrated to this machine (:func:`coinfer.hw.calibration.host_speed`,
        measured once per machine and cached); ``host`` itself stays unscaled."""
        if not self.gflops:
            return self
        from .calibration import host_speed

        return self.calibrated(host_speed())

    def with_gflops(self, **gflops) -> "CostProfile":
        """A copy with some processors' throughput set (e.g. ``edge=50.0``)."""
        return self._copy(gflops={**self.gflops, **gflops})

    def with_costs(self, **costs) -> "CostProfile":
        """A copy with some kinds' modelled cost set (e.g. ``sync=Cost(1e-3)``)."""
        return self._copy(costs={**self.costs, **costs})

    def with_layouts(self, **layouts) -> "CostProfile":
        """A copy with some processors' layout factors set (e.g. ``gpu={"buffer": 3.5}``)."""
        return self._copy(layouts={**self.layouts, **layouts})

    def __repr__(self) -> str:
        extra = f", layouts={ {p: dict(d) for p, d in self.layouts.items()} }" if self.layouts else ""
        extra += f", host={self.host!r}" if self.host is not None else ""
        return (f"CostProfile({self.name!r}, gflops={dict(self.gflops)}, costs={dict(self.costs)}, "
                f"host_gflops={self.host_gflops}{extra})")


_SHARE_BYTES = 56 * 112 * 32 * 4  # CoDL's shared input half of <112,112,32,64>
_HALF_FLOP = 2.0 * 112 * 112 * 64 * 32 * 9 / 2

_SD855_COSTS = {
    "transform": Cost(0.0, 0.05e-3 / _SHARE_BYTES),
    "map": Cost(0.0, 0.07e-3 / _SHARE_BYTES),
    "unmap": Cost(0.003e-3, 0.0),
    "sync": Cost((0.85e-3 + 0.06e-3) / 2, 0.0),
}
_PI_COSTS = {
    "transform": Cost(0.0, 8 * _SD855_COSTS["transform"].per_byte),
    "map": Cost(0.0, 8 * _SD855_COSTS["map"].per_byte),
    "unmap": _SD855_COSTS["unmap"],
    "sync": _SD855_COSTS["sync"],
}

_PROFILES = {
    "host": CostProfile("host"),
    "snapdragon855": CostProfile(
        "snapdragon855",
        {"cpu": _HALF_FLOP / 1.89e-3 / 1e9, "gpu": _HALF_FLOP / 1.95e-3 / 1e9},
        _SD855_COSTS,
        layouts={"gpu": {"buffer": 3.5}},  # CoDL: Adreno's 3x3 conv is 3.5x faster on image than buffer
    ),
    "raspberry_pi": CostProfile("raspberry_pi", {"default": 0.7}, _PI_COSTS),
    "desktop_edge": CostProfile("desktop_edge", {"default": 150.0}),
}


def profiles() -> dict:
    """All registered profiles, by name."""
    return dict(_PROFILES)


def get_profile(name) -> CostProfile:
    """A registered profile by name (a CostProfile passes through)."""
    if isinstance(name, CostProfile):
        return name
    try:
        return _PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cost profile {name!r}; known: {', '.join(sorted(_PROFILES))}") from None


# ---------------------------------------------------------------------------
# Guo (IC2E 2018), "Cloud-based or on-device: an empirical study of mobile deep inference".
# A separate block: four profiles calibrated from Guo's Table III, derived by fit_guo_profile()
# from the table's averages and the FLOPs and sizes of the three models, through the same
# CostProfile interface (scale() for compute, cost("load", nbytes) for model load).
#
# ``nexus5_cpu``
#     Caffe on the Nexus 5's CPU (Snapdragon 800).  Compute: Table III's 8910.64 ms average over
#     AlexNet, NIN and SqueezeNet, for the mean FLOPs of our three graphs at 224x224
#     (GUO_MODEL_FLOPS: 1.764 GFLOP), so 0.198 GFLOP/s on every processor name.  Load: Table III's
#     2422.13 ms average over Guo's files (233, 29 and 4.8 MB; mean 88.9 MiB) as a per-byte cost of
#     2.60e-8 s/B (38.5 MB/s: flash read and Caffe's parse together); our own parse and weight
#     preparation are measured on the host and added to it by the study.  At that rate
#     SqueezeNet's 4.8 MB load comes to 131 ms against Caffe's 103.7 ms (Guo).
# ``nexus5_gpu``
#     CNNDroid (RenderScript) on the Nexus 5's GPU.  Compute: 2131.70 ms average -> 0.828 GFLOP/s
#     on every processor name (ops coinfer's image kernels lack fall back to the CPU thread on the
#     host; under this profile they run at the GPU's rate, as CNNDroid runs the whole net).  Load:
#     a constant plus a per-byte charge through two of Guo's figures: the 61256.17 ms average at
#     the mean file size (88.9 MiB) and the "up to 88 s" of the largest file, AlexNet's 233 MiB
#     (GUO_MAX_LOAD_MS), so 44.75 s + 0.1856 s/MiB.  A per-byte charge alone would put AlexNet at
#     160 s, twice Guo's maximum.  CNNDroid's conversion of the Caffe model is this load minus
#     Caffe's (guo_convert_cost; modelled: Guo gives only these two figures).
# ``cloud_cpu`` / ``cloud_gpu``
#     An AWS g2.2xlarge running Caffe on its CPU / its GPU (GRID K520): 238.60 ms -> 7.39 GFLOP/s
#     and 18.60 ms -> 94.9 GFLOP/s on every processor name.  No load cost: the cloud's models are
#     loaded before the requests (Table III's load is 0 there).
#
# The scales assume the host runs the models at ``host_gflops``; the cloud-vs-device study measures
# that on the three models in its run and applies it with ``calibrated()``, since whole models (FC
# layers bound by memory, small layers) run slower on the host than the conv HOST_GFLOPS stands for.
#
# Rescale (JPEG decode and area resize) and our parse and weight preparation are memory-bound
# host work the study keeps at host speed (GUO_HOST_WORK_SCALE = 1, an assumption: the Nexus 5's
# LPDDR3 at 12.8 GB/s peak is slower than a server's memory, so this under-states the device's
# time for them; Guo's phone took 70-80 ms for the rescale alone, without the decode).

#: Guo 2018 Table III, ms, averages over AlexNet, NIN and SqueezeNet (Nexus 5; AWS g2.2xlarge).
GUO_TABLE_III = MappingProxyType({
    "cloud_cpu": MappingProxyType({"load": 0.0, "rescale": 76.16, "upload": 36.83, "compute": 238.60}),
    "cloud_gpu": MappingProxyType({"load": 0.0, "rescale": 76.16, "upload": 36.83, "compute": 18.60}),
    "nexus5_cpu": MappingProxyType({"load": 2422.13, "rescale": 79.98, "upload": 0.0, "compute": 8910.64}),
    "nexus5_gpu": MappingProxyType({"load": 61256.17, "rescale": 70.43, "upload": 0.0, "compute": 2131.70}),
})
#: Guo's model files, MiB ("233 MB", "29 MB", "4.8 MB": the BVLC caffemodel is 243,862,414 B = 232.6 MiB).
GUO_MODEL_MIB = MappingProxyType({"alexnet": 233.0, "nin": 29.0, "squeezenet": 4.8})
#: FLOPs of coinfer's graphs at 224x224 (zoo.bvlc_alexnet, zoo nin and squeezenet); a test checks them.
GUO_MODEL_FLOPS = MappingProxyType({"alexnet": 1_448_387_224, "nin": 2_201_560_248, "squeezenet": 1_642_998_944})
#: Scale of the memory-bound host work (decode, resize, parse, weight preparation) on Guo's devices.
GUO_HOST_WORK_SCALE = 1.0
#: The largest on-device load Guo reports ("up to 88 s", CNNDroid on the GPU), taken as the
#: largest file's (AlexNet): with the average it fixes a constant plus a per-byte load.
GUO_MAX_LOAD_MS = MappingProxyType({"nexus5_gpu": 88000.0})
#: Caffe loads SqueezeNet in 103.7 ms on the Nexus 5 (Guo), a check on the per-byte load fit.
GUO_CAFFE_SQUEEZENET_LOAD_MS = 103.7


def fit_guo_profile(name: str, *, table=GUO_TABLE_III, flops=GUO_MODEL_FLOPS, mib=GUO_MODEL_MIB,
                    max_load=GUO_MAX_LOAD_MS, host_gflops: float = HOST_GFLOPS) -> CostProfile:
    """The profile ``name`` (a key of ``table``) fitted to Guo's Table III averages.

    Compute: one throughput on every processor name, ``mean(flops) / compute_ms``, so that the
    mean over the models of ``flops_m / host_gflops * scale()`` is the table's compute average
    for a host whose kernels run at ``host_gflops``.  Load: ``cost("load", n) = n * load_ms /
    mean(bytes)``: the table's load average spread over Guo's file bytes (0 for the cloud); where
    ``max_load`` gives the mode's largest load (ms, the largest file's), a constant plus a per-byte
    charge through (mean bytes, average) and (largest bytes, that maximum).

    Raises ValueError for an unknown mode, models that differ between ``flops`` and ``mib``, or a
    maximum that does not exceed the average.
    """
    if name not in table:
        raise ValueError(f"fit_guo_profile: unknown Guo mode {name!r}; known: {sorted(table)}")
    row = table[name]
    if set(flops) != set(mib) or not flops:
        raise ValueError(f"fit_guo_profile: flops and mib must name the same models, got {sorted(flops)} "
                         f"and {sorted(mib)}")
    mean_flop = sum(flops.values()) / len(flops)
    mean_bytes = sum(mib.values()) / len(mib) * 2**20
    gflops = mean_flop / (row["compute"] * 1e-3) / 1e9
    costs = {"load": Cost(0.0, row["load"] * 1e-3 / mean_bytes)} if row["load"] > 0 else {}
    if row["load"] > 0 and name in max_load:
        top, top_ms = max(mib.values()) * 2**20, max_load[name]
        if top_ms <= row["load"] or top <= mean_bytes:
            raise ValueError(f"fit_guo_profile: {name}'s largest load must exceed its average "
                             f"({row['load']} ms at {mean_bytes:.0f} B), got {top_ms} ms at {top:.0f} B")
        per_byte = (top_ms - row["load"]) * 1e-3 / (top - mean_bytes)
        costs["load"] = Cost(row["load"] * 1e-3 - per_byte * mean_bytes, per_byte)
    return CostProfile(name, {"default": gflops}, costs, host_gflops)


def guo_convert_cost(nbytes: int) -> float:
    """CNNDroid's modelled conversion time (s) for a model of ``nbytes``: ``nexus5_gpu``'s
    per-byte load minus Caffe's (``nexus5_cpu``)."""
    return get_profile("nexus5_gpu").cost("load", nbytes) - get_profile("nexus5_cpu").cost("load", nbytes)


_PROFILES.update({n: fit_guo_profile(n) for n in GUO_TABLE_III})
__all__ += ["GUO_TABLE_III", "GUO_MAX_LOAD_MS", "GUO_MODEL_MIB", "GUO_MODEL_FLOPS", "GUO_HOST_WORK_SCALE", "fit_guo_profile",
            "guo_convert_cost"]
