"""Power profiles: modelled energy (J) of a mobile device's stages, power x time.

Nothing here is measured: the energies coinfer reports are these powers times
the stage times it measured or modelled, and are labelled *modelled*.

:class:`RadioPower` is the linear throughput power model of Huang et al.,
"A Close Examination of Performance and Power Characteristics of 4G LTE
Networks" (MobiSys 2012): while transferring, ``P = alpha_up * t_up +
alpha_down * t_down + beta`` with throughputs in Mbit/s.  Its constants (the
paper's power model table, measured on a smartphone) are:

=====  ==================  ====================  ===========
radio  alpha_up (mW/Mbps)  alpha_down (mW/Mbps)  beta (mW)
=====  ==================  ====================  ===========
wifi   283.17              137.01                132.86
lte    438.39              51.97                 1288.04
=====  ==================  ====================  ===========

So sending ``n`` bytes at ``B`` bit/s for ``t = 8n/B`` s costs
``alpha_up * 8n / 1e6 + beta * t`` (mJ): a per-bit energy plus the radio's base
power for as long as it is sending.  LTE's tail (the radio stays in its
high-power state for seconds after a transfer) is left out: a stated omission,
which favours the cloud modes on LTE.

:class:`DevicePower` holds a device's power per activity, in W above nothing
(the display is off and not counted):

- ``core_w``: one busy CPU core.  AnandTech measured one Krait core of a
  Snapdragon S4 (MSM8960, 1.5 GHz) at 450-750 mW under full load with
  Qualcomm's Trepn (the profiler Guo used); we take 0.75 W.  The Nexus 5's
  Krait 400 runs at up to 2.26 GHz, so this is likely low.
- ``cores``: cores busy while the CPU computes (Caffe's threads: 4, the
  Nexus 5's core count; an assumption).
- ``gpu_w``: the GPU busy (Adreno 330), 1.5 W: an assumption, not a measurement.
- ``base_w``: the rest of the awake device (memory, rails), 0.3 W: an assumption.

:func:`stage_power` gives the power of one stage of the mobile benchmark
(Guo 2018) in one mode: load and rescale keep one core busy; compute keeps
``cores`` cores (CPU mode) or the GPU and one core feeding it (GPU mode) busy;
upload keeps the radio sending; in a cloud mode the device waits for the answer
with its radio on (``base_w + beta``).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["RadioPower", "DevicePower", "RADIOS", "NEXUS5", "stage_power", "upload_energy", "STAGES"]

STAGES = ("load", "rescale", "upload", "compute")


@dataclass(frozen=True)
class RadioPower:
    """Huang et al. (MobiSys 2012) power model of one radio; W per Mbit/s and W."""

    name: str
    alpha_up: float
    alpha_down: float
    beta: float

    def transfer_power(self, up_bps: float = 0.0, down_bps: float = 0.0) -> float:
        """Watts while sending at ``up_bps`` and receiving at ``down_bps`` bit/s."""
        if up_bps < 0 or down_bps < 0:
            raise ValueError(f"RadioPower {self.name}: throughputs must be >= 0, got {up_bps}, {down_bps}")
        return self.alpha_up * up_bps / 1e6 + self.alpha_down * down_bps / 1e6 + self.beta


RADIOS = MappingProxyType({
    "wifi": RadioPower("wifi", 283.17e-3, 137.01e-3, 132.86e-3),
    "lte": RadioPower("lte", 438.39e-3, 51.97e-3, 1288.04e-3),
})


@dataclass(frozen=True)
class DevicePower:
    """A mobile device's power per activity (W); see the module docstring for the sources."""

    name: str
    core_w: float
    cores: int
    gpu_w: float
    base_w: float


NEXUS5 = DevicePower("nexus5", core_w=0.75, cores=4, gpu_w=1.5, base_w=0.3)


def upload_energy(nbytes: int, seconds: float, radio: RadioPower, device: DevicePower = NEXUS5) -> float:
    """Joules to send ``nbytes`` in ``seconds``: the radio at the achieved throughput, plus the
    device's base power."""
    if nbytes < 0 or seconds < 0:
        raise ValueError(f"upload_energy: nbytes and seconds must be >= 0, got {nbytes}, {seconds}")
    if seconds == 0:
        return 0.0
    return (radio.transfer_power(8.0 * nbytes / seconds) + device.base_w) * seconds


def stage_power(stage: str, mode: str, radio: RadioPower, device: DevicePower = NEXUS5) -> float:
    """Watts of ``stage`` (load, rescale, compute; upload: see :func:`upload_energy`) in ``mode``
    (``cloud-cpu``, ``cloud-gpu``, ``device-cpu``, ``device-gpu``)."""
    if mode not in ("cloud-cpu", "cloud-gpu", "device-cpu", "device-gpu"):
        raise ValueError(f"stage_power: unknown mode {mode!r}")
    if stage in ("load", "rescale"):
        return device.base_w + device.core_w
    if stage == "compute":
        if mode.startswith("cloud"):
            return device.base_w + radio.beta
        if mode == "device-cpu":
            return device.base_w + device.cores * device.core_w
        return device.base_w + device.gpu_w + device.core_w
    if stage == "upload":
        raise ValueError("stage_power: upload energy depends on the bytes sent; use upload_energy")
    raise ValueError(f"stage_power: unknown stage {stage!r}; stages are {STAGES}")
