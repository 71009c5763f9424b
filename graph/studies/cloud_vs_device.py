"""Cloud-based vs on-device inference, stage by stage (Guo, IC2E 2018): ``coinfer cloud-vs-device``.

Guo ran AlexNet, NIN and SqueezeNet on a Nexus 5 (Caffe on the CPU, CNNDroid
on the GPU) and on an AWS g2.2xlarge (CPU and GPU), on 15 photos in three
size groups, and split the time into model load, bitmap rescale, upload and
compute (Table III).  This study rebuilds it from real parts; each stage is a
real operation on this host, priced for the emulated device or cloud by a
named profile constant (:mod:`coinfer.hw.profile`, the Guo block):

**Load** (device modes; 0 in the cloud modes, whose server loaded the
models before the requests, as in Table III).  The model's ONNX file
(:mod:`~coinfer.graph.studies.model_files`: 233, 29 and 4.8 MiB) is read,
parsed by coinfer's importer and its weights prepared for the processor's
layout (``buffer`` for the CPU, ``image`` for the GPU), timed on the host,
cold (the file's pages dropped from the page cache) and warm, median of
``load_repeats``.  On the device:

- ``load_cold_ms`` = the profile's ``cost("load", file bytes)`` (flash read
  and Caffe's parse, fitted per byte to Table III; for ``nexus5_gpu`` also
  CNNDroid's modelled conversion) + our parse and preparation (host time x
  ``GUO_HOST_WORK_SCALE``);
- ``load_ms`` (warm, the file in the page cache) = the host's read, parse and
  preparation x ``GUO_HOST_WORK_SCALE`` (+ CNNDroid's conversion).

The row's total counts the cold load: the first inference after the app
starts, as Guo measured.

**Rescale** (every mode: the phone rescales before computing or
uploading): Pillow decodes the photo's JPEG (``decode_ms``), then coinfer's
area-resize kernel makes the 224x224 float32 input (``rescale_ms`` =
decode + resize), host time x ``GUO_HOST_WORK_SCALE``.

**Upload** (cloud modes): the input tensor (602,112 B) goes to the cloud
server over loopback in a RUN request, through the client's token-bucket
uplink of ``uplink_bps`` (the 2 frame headers, 128 B, cross it too).  The
default uplink, :data:`DEFAULT_UPLINK_BPS` = 130.8 Mbit/s, is the rate at
which this request takes Guo's measured 36.83 ms.  The 4 KB answer comes back
unshaped (Guo has no download stage); the round trip's remainder (server
dispatch, loopback, the answer) is ``other_ms``, reported and not in the
total.

**Compute.**  Device modes run the model on this host's emulated SoC
(:meth:`coinfer.hw.SoC.host`) with coinfer's kernels, every op on the
``cpu`` (buffer kernels) or the ``gpu`` (image kernels; ops without an image
kernel fall back to the cpu), and the run's trace is replayed under
``nexus5_cpu`` / ``nexus5_gpu`` (:meth:`coinfer.hw.Trace.replay`).  Cloud
modes run in a ``coinfer edge-server --soc cloud_cpu|cloud_gpu`` process
serving the same files (the cloud is that server, serving the model's whole
op range): ``compute_ms`` is the server's host time for the model x its
profile's ``scale()`` (the server realises a slower cloud by keeping its
worker busy, ``realised_ms``, under the uncalibrated profile; a faster one it
cannot).  The profiles' throughputs are fitted to Table III's averages for
the models' FLOPs (:func:`coinfer.hw.profile.fit_guo_profile`); a scale is
``host GFLOP/s / device GFLOP/s``, and the host's GFLOP/s is measured in the
run on the same three models (:func:`host_gflops`: FLOPs over the kernels'
host time, every op on the cpu, one calibration run per input) and applied
with ``profile.calibrated()``.  Every input goes through the calibration
run and every mode in turn, so all of them meet the host in one state.

**Energy** (modelled, :mod:`coinfer.hw.power`): per stage, the Nexus 5's
power in that stage x its time; the upload at the radio's throughput power
(Huang et al., MobiSys 2012), the wait for a cloud answer at the device's base
power plus the radio's.

Rows are per model, photo group and mode, means over the photos.  The
findings give the ratios behind Guo's two conclusions: with load counted the
cloud wins by up to two orders of magnitude; without load (a preloaded model)
on-device GPU inference is reasonable.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ...hw import power as pw
from ...hw.profile import GUO_HOST_WORK_SCALE, GUO_TABLE_III, get_profile, guo_convert_cost
from . import model_files
from . import photos as photo_set
from .messages import error_line

__all__ = ["MODES", "MODE_PROFILE", "DEFAULT_UPLINK_BPS", "UPLOAD_BYTES", "Config", "Row", "Result", "run",
           "format_table", "findings", "plot", "cli_main", "add_parser"]

MODES = ("cloud-cpu", "cloud-gpu", "device-cpu", "device-gpu")
MODE_PROFILE = {"cloud-cpu": "cloud_cpu", "cloud-gpu": "cloud_gpu", "device-cpu": "nexus5_cpu",
                "device-gpu": "nexus5_gpu"}
DEVICE_PROCESSOR = {"device-cpu": "cpu", "device-gpu": "gpu"}
LAYOUT = {"cpu": "buffer", "gpu": "image"}
GUO_UPLOAD_MS = 36.83
INPUT_SIZE = model_files.INPUT_SIZE
#: Bytes one upload sends: the RUN frame's header, then the TENSOR frame (header + float32 payload).
UPLOAD_BYTES = 2 * 64 + 3 * INPUT_SIZE * INPUT_SIZE * 4
#: The uplink at which UPLOAD_BYTES take Guo's measured 36.83 ms: 130.8 Mbit/s.
DEFAULT_UPLINK_BPS = 8.0 * UPLOAD_BYTES / (GUO_UPLOAD_MS * 1e-3)
STAGE_KEYS = ("load_cold_ms", "rescale_ms", "upload_ms", "compute_ms")


@dataclass
class Config:
    models: tuple = ("alexnet", "nin", "squeezenet")
    photos: int = 5
    uplink_bps: float = DEFAULT_UPLINK_BPS
    modes: tuple = MODES
    cache_dir: str | None = None
    radio: str = "wifi"
    quality: int = photo_set.JPEG_QUALITY
    groups: tuple = (1, 2, 3)
    load_repeats: int = 3
    progress: bool = True
    model_specs: dict = field(default_factory=dict)  # name -> (stem, build): models outside MODELS (tests)

    def check(self) -> "Config":
        known = set(model_files.MODELS) | set(self.model_specs)
        bad = [m for m in self.models if m not in known]
        if bad or not self.models:
            raise ValueError(f"cloud-vs-device: --models must name some of {', '.join(sorted(known))}, got "
                             f"{list(self.models)}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"cloud-vs-device: --modes must name some of {', '.join(MODES)}, got {list(self.modes)}")
        if self.radio not in pw.RADIOS:
            raise ValueError(f"cloud-vs-device: --radio must be one of {', '.join(pw.RADIOS)}, got {self.radio!r}")
        if not self.uplink_bps > 0:
            raise ValueError(f"cloud-vs-device: --uplink must be > 0 bit/s, got {self.uplink_bps}")
        if self.load_repeats < 1:
            raise ValueError(f"cloud-vs-device: load_repeats must be >= 1, got {self.load_repeats}")
        if not (isinstance(self.photos, int) and 1 <= self.photos <= len(photo_set.SOURCES)):
            raise ValueError(f"cloud-vs-device: --photos must be an int in [1, {len(photo_set.SOURCES)}], "
                             f"got {self.photos!r}")
        if not (isinstance(self.quality, int) and 1 <= self.quality <= 100):
            raise ValueError(f"cloud-vs-device: --quality must be an int in [1, 100], got {self.quality!r}")
        return self


@dataclass
class Row:
    """One (model, photo group, mode): stage times in ms (means over the photos), energy in J."""

    model: str
    photo_group: int
    mode: str
    load_ms: float
    load_cold_ms: float
    rescale_ms: float
    decode_ms: float
    upload_ms: float
    compute_ms: float
    energy_j: float
    convert_ms: float = 0.0  # CNNDroid's modelled conversion, inside both loads (device-gpu)
    other_ms: float = 0.0  # cloud round trip beyond upload and compute (not in the total)
    realised_ms: float = 0.0  # cloud: the server's realised compute time
    host_compute_ms: float = 0.0  # the kernels' host time behind compute_ms
    photos: int = 0

    @property
    def total_ms(self) -> float:
        return self.load_cold_ms + self.rescale_ms + self.upload_ms + self.compute_ms

    @property
    def preloaded_ms(self) -> float:
        """The total without model load (a preloaded model)."""
        return self.rescale_ms + self.upload_ms + self.compute_ms

    def as_json(self) -> dict:
        return {"model": self.model, "photo_group": self.photo_group, "mode": self.mode, "load_ms": self.load_ms,
                "load_cold_ms": self.load_cold_ms, "rescale_ms": self.rescale_ms, "decode_ms": self.decode_ms,
                "upload_ms": self.upload_ms, "compute_ms": self.compute_ms, "total_ms": self.total_ms,
                "energy_j": self.energy_j, "convert_ms": self.convert_ms, "other_ms": self.other_ms,
                "realised_ms": self.realised_ms, "host_compute_ms": self.host_compute_ms, "photos": self.photos}


@dataclass
class Result:
    rows: list
    findings: dict
    meta: dict
    loads: dict  # (model, layout) -> {"cold": LoadTiming, "warm": LoadTiming} (host)

    def as_json(self) -> dict:
        return {"rows": [r.as_json() for r in self.rows], "findings": self.findings, "meta": self.meta,
                "host_loads": [{"model": m, "layout": lay, **{f"{k}_{p}_ms": 1e3 * getattr(t, p)
                                                            for k, t in d.items()
                                                            for p in ("read", "parse", "prepare")},
                                "cold_storage_bytes": d["cold"].storage_bytes, "file_bytes": d["cold"].nbytes}
                               for (m, lay), d in self.loads.items()]}


# -- progress ----------------------------------------------------------------------------

class _Bar:
    """tqdm on stderr when installed and enabled, else the one-line Progress."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.bar = None
        self.fallback = None
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, file=sys.stderr, leave=False)
        except ImportError:
            from ..progress import Progress

            self.fallback = Progress(total, label)

    def step(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(what)
            self.bar.update(1)
        elif self.fallback is not None:
            self.fallback.step(what)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.fallback is not None:
            self.fallback.__exit__(None, None, None)


# -- stages ------------------------------------------------------------------------------

def _median_load(path: str, layout: str, cold: bool, repeats: int):
    graph, best = None, []
    for _ in range(repeats):
        graph, t = model_files.load(path, layout, cold=cold)
        best.append(t)
    best.sort(key=lambda t: t.total)
    return graph, best[len(best) // 2]


def device_load(mode: str, timing_cold, timing_warm) -> dict:
    """The device's cold and warm load (ms) from the host's timings (see the module docstring)."""
    prof = get_profile(MODE_PROFILE[mode])
    n = timing_cold.nbytes
    convert = guo_convert_cost(n) if mode == "device-gpu" else 0.0
    cold = prof.cost("load", n) + GUO_HOST_WORK_SCALE * (timing_cold.parse + timing_cold.prepare)
    warm = GUO_HOST_WORK_SCALE * timing_warm.total + convert
    return {"load_cold_ms": 1e3 * cold, "load_ms": 1e3 * warm, "convert_ms": 1e3 * convert}


def rescale(photo) -> tuple:
    """``(input tensor, decode s, resize s)`` of one photo: Pillow's decode, then the area kernel."""
    t0 = time.perf_counter()
    rgb = photo_set.decode(photo.jpeg)
    t1 = time.perf_counter()
    x = photo_set.to_input(rgb, INPUT_SIZE)
    t2 = time.perf_counter()
    return x, t1 - t0, t2 - t1


def _snapshot(trace):
    """A copy of ``trace``'s tasks, to replay after the runs (the SoC's trace is cleared by each run)."""
    from ...hw import Trace

    t = Trace()
    t.t0 = trace.t0
    for r in trace.tasks:
        t.record(r.processor, r.thread, r.kind, r.op, r.start, r.end, deps=r.deps, region=r.region,
                 bytes=r.bytes, submitted=r.submitted, modelled=r.modelled, error=r.error)
    return t


def host_gflops(flops: dict, calib: dict) -> float:
    """The host's throughput (GFLOP/s) on the study's models: sum of FLOPs / sum of each model's
    median host time (``calib``: model -> host seconds per run, every op on the cpu)."""
    t = sum(float(np.median(calib[m])) for m in flops)
    return sum(flops.values()) / t / 1e9


@dataclass
class _Runs:
    """Per model: host seconds of the calibration runs; per device mode the traces; per cloud mode
    the replies."""

    calib: dict = field(default_factory=dict)  # model -> [host s]
    device: dict = field(default_factory=dict)  # (model, mode) -> [(Trace, output)]
    cloud: dict = field(default_factory=dict)  # (model, mode) -> [(upload s, host s, realised s, other s, output)]


def _compute(files, graphs, modes, inputs, uplink_bps, progress) -> _Runs:
    """Every input through every mode, interleaved input by input, so all modes meet the host in
    the same state: a calibration run (every op on the emulated SoC's cpu, buffer kernels; its
    host time gives the host's throughput on the models, :func:`host_gflops`), one run per device
    mode (its trace kept for replay), one request per cloud mode to its ``coinfer edge-server
    --soc`` process, the input uploaded through the uplink."""
    from contextlib import ExitStack

    from ...hw import SoC
    from ...hw.link import Link
    from ..coexec.executor import Executor
    from ..coexec.lower import prepare
    from ..coexec.strategies import plan_single
    from ..edge.catalog import graph_digest
    from ..edge.client import EdgeClient
    from .edge import ServerProcess

    runs = _Runs()
    dev_modes = [m for m in modes if m in DEVICE_PROCESSOR]
    with ExitStack() as stack:
        soc = stack.enter_context(SoC.host())
        clients = {}
        for mode in (m for m in modes if m not in DEVICE_PROCESSOR):
            args = ["--soc", MODE_PROFILE[mode]]
            for f in files.values():
                args += ["--model", f.path]
            server = stack.enter_context(ServerProcess(*args))
            client = clients[mode] = EdgeClient(server.host, server.port, timeout=120.0, open_timeout=300.0)
            stack.callback(client.close)
            client.connect()
            client.shape(Link(uplink_bps))
            client.down = None  # the answer comes back unshaped: Guo has no download stage
        for m, g in graphs.items():
            prepared = prepare(g)
            with ExitStack() as per_model:
                exs = {p: per_model.enter_context(Executor(g, plan_single(g, p), soc, prepared=prepared))
                       for p in dict.fromkeys(["cpu"] + [DEVICE_PROCESSOR[d] for d in dev_modes])}
                for c in clients.values():
                    c.open(files[m].stem, graph_digest(g))
                shape, n_ops = g.shape(g.outputs[0]), len(g.ops)
                for _ in range(2):  # warm-up: first calls, arena pages, the server's first request
                    for ex in exs.values():
                        ex.run(inputs[0])
                    for c in clients.values():
                        c.run(0, 0, n_ops, [inputs[0]], [shape])
                runs.calib[m] = []
                for x in inputs:
                    # An untimed run first: a core that idled while the cloud answered runs the next
                    # ops up to 40% slower (see coinfer.graph.edge.parts.run_range), the per-op state
                    # the server's warm-up gives its timed run too.
                    exs["cpu"].run(x)
                    exs["cpu"].run(x)
                    runs.calib[m].append(soc.trace.replay("host", gaps=False))
                    for mode in dev_modes:
                        y = exs[DEVICE_PROCESSOR[mode]].run(x)
                        runs.device.setdefault((m, mode), []).append((_snapshot(soc.trace), y))
                        progress(f"{m} {mode}")
                    for mode, c in clients.items():
                        r = c.run(0, 0, n_ops, [x], [shape])
                        runs.cloud.setdefault((m, mode), []).append(
                            (r.up_s, r.host_s, r.compute_s, max(0.0, r.wait_s - r.compute_s) + r.down_s, r.outputs[0]))
                        progress(f"{m} {mode}")
    return runs


def _energy(mode: str, stages: dict, radio) -> float:
    e = (pw.stage_power("load", mode, radio) * stages["load_cold_ms"]
         + pw.stage_power("rescale", mode, radio) * stages["rescale_ms"]
         + pw.stage_power("compute", mode, radio) * stages["compute_ms"]) * 1e-3
    if stages["upload_ms"] > 0:
        e += pw.upload_energy(UPLOAD_BYTES, stages["upload_ms"] * 1e-3, radio)
    return e


# -- the study ---------------------------------------------------------------------------

def run(cfg: Config) -> Result:
    """Run the study (see the module docstring)."""
    from ...kernels import isa

    cfg.check()
    radio = pw.RADIOS[cfg.radio]
    t_start = time.perf_counter()
    # 1. model files
    bar = _Bar(len(cfg.models), "model files", cfg.progress)
    files = {}
    for m in cfg.models:
        stem, build = cfg.model_specs.get(m, (None, None))
        f = model_files.ensure(m, cfg.cache_dir, build=build, stem=stem)
        files[m] = f
        bar.step(f"{f.stem}.onnx {f.nbytes / 2**20:.1f} MiB {'written' if f.written else 'reused'}")
    bar.close()
    # 2. photos
    bar = _Bar(cfg.photos, "photos", cfg.progress)
    pics = photo_set.prepare(cfg.photos, quality=cfg.quality, groups=tuple(cfg.groups), progress=bar.step)
    bar.close()
    # 3. loads (device modes)
    dev_modes = [m for m in cfg.modes if m.startswith("device")]
    layouts = sorted({LAYOUT[DEVICE_PROCESSOR[m]] for m in dev_modes}) or ["buffer"]
    loads, graphs = {}, {}
    bar = _Bar(len(cfg.models) * len(layouts), "model loads", cfg.progress)
    for m, f in files.items():
        for lay in layouts:
            model_files.load(f.path, lay)  # untimed: first calls of the importer and the packing kernels
            g, cold = _median_load(f.path, lay, True, cfg.load_repeats)
            _, warm = _median_load(f.path, lay, False, cfg.load_repeats)
            loads[(m, lay)] = {"cold": cold, "warm": warm}
            graphs[m] = g
            bar.step(f"{m} {lay}: cold {1e3 * cold.total:.0f} ms, warm {1e3 * warm.total:.0f} ms")
    bar.close()
    # 4. rescale: every photo, every mode
    bar = _Bar(len(pics) * len(cfg.modes), "rescale", cfg.progress)
    resc = {}  # (photo index, mode) -> (decode s, resize s)
    inputs = []
    rescale(pics[0])  # untimed: first calls of the decoder and the resize kernel
    for i, p in enumerate(pics):
        for mode in cfg.modes:
            x, dec, rs = rescale(p)
            resc[(i, mode)] = (dec, rs)
            bar.step(f"{p.name} group {p.group} {mode}")
        inputs.append(x)
    bar.close()
    # 5. compute
    bar = _Bar(len(cfg.modes) * len(pics) * len(cfg.models), "compute", cfg.progress)
    runs = _compute(files, graphs, cfg.modes, inputs, cfg.uplink_bps, bar.step)
    bar.close()
    hg = host_gflops({m: g.total_flops() for m, g in graphs.items()}, runs.calib)
    profs = {mode: get_profile(MODE_PROFILE[mode]).calibrated(hg) for mode in cfg.modes}
    # 6. rows
    rows, max_err = [], 0.0
    from .edge import reference_output

    for m in cfg.models:
        ref = [reference_output(graphs[m], x, 0) for x in inputs]  # the local single-process run
        for g in cfg.groups:
            idx = [i for i, p in enumerate(pics) if p.group == g]
            for mode in cfg.modes:
                dec = float(np.mean([resc[(i, mode)][0] for i in idx])) * 1e3
                rs = float(np.mean([sum(resc[(i, mode)]) for i in idx])) * 1e3
                st = {"load_cold_ms": 0.0, "load_ms": 0.0, "convert_ms": 0.0,
                      "rescale_ms": GUO_HOST_WORK_SCALE * rs, "decode_ms": GUO_HOST_WORK_SCALE * dec,
                      "upload_ms": 0.0, "other_ms": 0.0, "realised_ms": 0.0}
                if mode in dev_modes:
                    lay = LAYOUT[DEVICE_PROCESSOR[mode]]
                    st.update(device_load(mode, loads[(m, lay)]["cold"], loads[(m, lay)]["warm"]))
                    res = [runs.device[(m, mode)][i] for i in idx]
                    st["compute_ms"] = 1e3 * float(np.mean([t.replay(profs[mode]) for t, _ in res]))
                    st["host_compute_ms"] = 1e3 * float(np.mean([t.replay("host") for t, _ in res]))
                    outs = [y for _, y in res]
                else:
                    res = [runs.cloud[(m, mode)][i] for i in idx]
                    scale = profs[mode].scale("edge")
                    st["upload_ms"] = 1e3 * float(np.mean([r[0] for r in res]))
                    st["compute_ms"] = 1e3 * scale * float(np.mean([r[1] for r in res]))
                    st["host_compute_ms"] = 1e3 * float(np.mean([r[1] for r in res]))
                    st["realised_ms"] = 1e3 * float(np.mean([r[2] for r in res]))
                    st["other_ms"] = 1e3 * float(np.mean([r[3] for r in res]))
                    outs = [r[4] for r in res]
                for i, y in zip(idx, outs):
                    max_err = max(max_err, float(np.abs(np.asarray(y) - np.asarray(ref[i])).max()))
                energy = _energy(mode, st, radio)
                rows.append(Row(m, g, mode, st["load_ms"], st["load_cold_ms"], st["rescale_ms"], st["decode_ms"],
                                st["upload_ms"], st["compute_ms"], energy, st["convert_ms"], st["other_ms"],
                                st["realised_ms"], st["host_compute_ms"], len(idx)))
    meta = {"isa": isa(), "uplink_bps": cfg.uplink_bps, "upload_bytes": UPLOAD_BYTES, "radio": cfg.radio,
            "jpeg_quality": cfg.quality, "photos": list(dict.fromkeys(p.name for p in pics)),
            "photos_upscaled": True, "input_size": INPUT_SIZE, "host_work_scale": GUO_HOST_WORK_SCALE,
            "files": {m: {"path": f.path, "bytes": f.nbytes, "sha256": f.sha256} for m, f in files.items()},
            "max_abs_err_vs_local": max_err, "host_gflops": hg,
            "host_model_ms": {m: 1e3 * float(np.median(v)) for m, v in runs.calib.items()},
            "wall_s": time.perf_counter() - t_start,
            "profiles": {mode: MODE_PROFILE[mode] for mode in cfg.modes}}
    return Result(rows, findings(rows), meta, loads)


# -- findings, table, plot ------------------------------------------------------------------

def _mean(rows, key) -> float:
    vals = [getattr(r, key) for r in rows]
    return float(np.mean(vals)) if vals else float("nan")


def findings(rows) -> dict:
    """The ratios behind Guo's two conclusions, from ``rows`` (means over photo groups)."""
    models = list(dict.fromkeys(r.model for r in rows))
    modes = list(dict.fromkeys(r.mode for r in rows))

    def at(model, mode, key="total_ms"):
        return _mean([r for r in rows if r.model == model and r.mode == mode], key)

    out: dict = {"per_model": {}}
    for m in models:
        d = {f"{mode}_total_ms": at(m, mode) for mode in modes}
        d.update({f"{mode}_preloaded_ms": at(m, mode, "preloaded_ms") for mode in modes})
        d.update({f"{mode}_energy_j": at(m, mode, "energy_j") for mode in modes})
        if "cloud-gpu" in modes:
            for dm in ("device-cpu", "device-gpu"):
                if dm in modes:
                    d[f"{dm}_over_cloud_gpu_with_load"] = at(m, dm) / at(m, "cloud-gpu")
                    d[f"{dm}_over_cloud_gpu_preloaded"] = at(m, dm, "preloaded_ms") / at(m, "cloud-gpu")
                    d[f"{dm}_over_cloud_gpu_energy"] = at(m, dm, "energy_j") / at(m, "cloud-gpu", "energy_j")
        if "device-gpu" in modes:
            d["device_gpu_load_share"] = at(m, "device-gpu", "load_cold_ms") / at(m, "device-gpu")
            if "device-cpu" in modes:
                d["device_gpu_compute_speedup_over_cpu"] = (at(m, "device-cpu", "compute_ms")
                                                            / at(m, "device-gpu", "compute_ms"))
            if "cloud-cpu" in modes:
                d["device_gpu_preloaded_over_cloud_cpu"] = at(m, "device-gpu", "preloaded_ms") / at(m, "cloud-cpu")
        out["per_model"][m] = d
    ratios = [v for d in out["per_model"].values() for k, v in d.items() if k.endswith("_over_cloud_gpu_with_load")]
    if ratios:
        out["cloud_gpu_speedup_with_load_max"] = max(ratios)
        out["cloud_gpu_speedup_with_load_min"] = min(ratios)
    pre = [d["device-gpu_over_cloud_gpu_preloaded"] for d in out["per_model"].values()
           if "device-gpu_over_cloud_gpu_preloaded" in d]
    if pre:
        out["device_gpu_preloaded_over_cloud_gpu_max"] = max(pre)
    out["compute_vs_table_iii"] = {}
    for mode in modes:
        ours = _mean([r for r in rows if r.mode == mode], "compute_ms")
        guo = GUO_TABLE_III[MODE_PROFILE[mode]]["compute"]
        out["compute_vs_table_iii"][mode] = {"ours_ms": ours, "guo_ms": guo, "ratio": ours / guo}
    return out


def _group_label(g: int) -> str:
    h, w = photo_set.GROUPS[g]
    return f"{g} ({h}x{w})"


def format_table(res: Result) -> str:
    head = (f"{'mode':<11} {'model':<11} {'photos':<13} {'load':>9} {'(warm)':>9} {'rescale':>8} {'(decode)':>8} "
            f"{'upload':>7} {'compute':>9} {'total':>9} {'energy J':>9}")
    meta = res.meta
    lines = [f"Cloud vs device (Guo 2018, Table III shape): {len(meta['photos'])} photos "
             f"({', '.join(meta['photos'])}) per group, UPSCALED from the originals to 2160x3840 (Lanczos), "
             f"groups 2-3 downscaled 2x/4x, JPEG quality {meta['jpeg_quality']}; ISA {meta['isa']}",
             f"uplink {meta['uplink_bps'] / 1e6:.1f} Mbit/s ({meta['upload_bytes']} B per upload), radio "
             f"{meta['radio']}; times in ms (means over the photos); energy modelled (coinfer.hw.power)",
             head, "-" * len(head)]
    for r in res.rows:
        lines.append(f"{r.mode:<11} {r.model:<11} {_group_label(r.photo_group):<13} {r.load_cold_ms:>9.1f} "
                     f"{r.load_ms:>9.1f} {r.rescale_ms:>8.1f} {r.decode_ms:>8.1f} {r.upload_ms:>7.2f} "
                     f"{r.compute_ms:>9.1f} {r.total_ms:>9.1f} {r.energy_j:>9.3f}")
    lines.append("-" * len(head))
    lines.append("load: cold, counted in the total (the device's storage and parse profile + our parse and weight "
                 "preparation; device-gpu adds CNNDroid's modelled conversion); (warm): the file in the page cache")
    lines.append("rescale = Pillow decode + coinfer area resize to 224x224, host time; upload: shaped loopback to "
                 "the cloud server; compute: device = trace replayed under nexus5_cpu/gpu, cloud = server host "
                 "time x cloud_cpu/gpu scale")
    lines += format_findings(res.findings)
    return "\n".join(lines)


def format_findings(f: dict) -> list:
    lines = ["", "Findings (this run):"]
    for m, d in f["per_model"].items():
        parts = []
        for dm in ("device-cpu", "device-gpu"):
            k = f"{dm}_over_cloud_gpu_with_load"
            if k in d:
                parts.append(f"{dm} {d[k]:.0f}x slower than cloud-gpu with load "
                             f"({d[f'{dm}_over_cloud_gpu_preloaded']:.1f}x preloaded, "
                             f"{d[f'{dm}_over_cloud_gpu_energy']:.0f}x the energy)")
        if "device_gpu_load_share" in d:
            parts.append(f"load is {100 * d['device_gpu_load_share']:.0f}% of device-gpu's total")
        if "device-gpu_preloaded_ms" in d:
            parts.append(f"device-gpu preloaded {d['device-gpu_preloaded_ms']:.0f} ms")
        if "device_gpu_compute_speedup_over_cpu" in d:
            parts.append(f"GPU compute {d['device_gpu_compute_speedup_over_cpu']:.1f}x the CPU's")
        lines.append(f"  {m}: " + "; ".join(parts))
    if "cloud_gpu_speedup_with_load_max" in f:
        lines.append(f"  1. with load counted the cloud GPU wins by {f['cloud_gpu_speedup_with_load_min']:.0f}x to "
                     f"{f['cloud_gpu_speedup_with_load_max']:.0f}x (Guo: up to two orders of magnitude)")
    if "device_gpu_preloaded_over_cloud_gpu_max" in f:
        lines.append(f"  2. with the model preloaded, device-gpu is at most "
                     f"{f['device_gpu_preloaded_over_cloud_gpu_max']:.1f}x the cloud GPU's time "
                     f"(Guo: a preloaded model makes on-device GPU inference reasonable)")
    lines.append("  compute averaged over the models vs Guo's Table III: " + ", ".join(
        f"{mode} {v['ours_ms']:.1f} ms vs {v['guo_ms']:.1f} ({100 * (v['ratio'] - 1):+.0f}%)"
        for mode, v in f["compute_vs_table_iii"].items()))
    return lines


def plot(res: Result, out_dir: str) -> str:
    """A stacked bar per (mode, model) of the four stages (means over the photo groups), log
    time axis, in Guo's Figure 4 style; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    os.makedirs(out_dir, exist_ok=True)
    models = list(dict.fromkeys(r.model for r in res.rows))
    modes = list(dict.fromkeys(r.mode for r in res.rows))
    stages = (("load_cold_ms", "load model"), ("rescale_ms", "rescale bitmap"), ("upload_ms", "upload"),
              ("compute_ms", "compute"))
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(models) * len(modes), 4.5))
    labels, x = [], 0
    colors = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
    for mode in modes:
        for m in models:
            sel = [r for r in res.rows if r.model == m and r.mode == mode]
            bottom = 0.0
            for (key, _), c in zip(stages, colors):
                v = _mean(sel, key)
                if v > 0:
                    ax.bar(x, v, bottom=bottom, color=c, width=0.8)
                bottom += v
            labels.append(f"{mode}\n{m}")
            x += 1
        x += 0.5
    ticks = [i + 0.5 * (i // len(models)) for i in range(len(labels))]
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1.0)
    ax.set_ylabel("time (ms, log scale)")
    ax.set_title("Stages per mode and model, means over the photo groups (cloud vs device, Guo 2018 Fig. 4 style)",
                 fontsize=10)
    ax.legend(handles=[Patch(color=c, label=name) for (_, name), c in zip(stages, colors)], fontsize=8,
              loc="upper left")
    fig.tight_layout()
    path = os.path.join(out_dir, "cloud_vs_device.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- the command line --------------------------------------------------------------------------

def add_parser(sub) -> None:
    s = sub.add_parser("cloud-vs-device", help="Guo 2018: cloud vs on-device inference, stage by stage, on real "
                       "model files, photos and a cloud server")
    s.add_argument("--models", default="alexnet,nin,squeezenet", help="comma-separated (default all three)")
    s.add_argument("--photos", type=int, default=5, help=f"photos per group, 1..{len(photo_set.SOURCES)} (default 5)")
    s.add_argument("--uplink", default=None, help=f"uplink rate, e.g. 20Mbps (default "
                   f"{DEFAULT_UPLINK_BPS / 1e6:.1f}Mbps: Guo's 36.83 ms for one upload)")
    s.add_argument("--modes", default=",".join(MODES), help="comma-separated (default all four)")
    s.add_argument("--radio", default="wifi", choices=sorted(pw.RADIOS), help="radio power model (default wifi)")
    s.add_argument("--quality", type=int, default=photo_set.JPEG_QUALITY,
                   help="JPEG quality of the photos (default 95)")
    s.add_argument("--load-repeats", type=int, default=3, help="timed loads per file, cold and warm (median)")
    s.add_argument("--cache-dir", default=None, help="where the model files go (default "
                   "$COINFER_CACHE_DIR, $XDG_CACHE_HOME/coinfer or ~/.cache/coinfer)")
    s.add_argument("--json", action="store_true", help="print JSON instead of the table")
    s.add_argument("--plot", default=None, metavar="DIR", help="write a stacked-bar PNG of the stages there")
    s.add_argument("--quiet", action="store_true", help="no progress bars on stderr")


def cli_main(args) -> int:
    from ...hw.link import parse_rate

    try:
        cfg = Config(models=tuple(s.strip() for s in args.models.split(",") if s.strip()), photos=args.photos,
                     uplink_bps=DEFAULT_UPLINK_BPS if args.uplink is None else parse_rate(args.uplink),
                     modes=tuple(s.strip() for s in args.modes.split(",") if s.strip()), cache_dir=args.cache_dir,
                     radio=args.radio, quality=args.quality, load_repeats=args.load_repeats,
                     progress=not args.quiet).check()
        if args.plot:
            import matplotlib  # noqa: F401 - fail before the run, not after it
        res = run(cfg)
    except photo_set.MissingExtra as e:
        print(error_line("cloud-vs-device", e), file=sys.stderr)
        return 2
    except ImportError as e:  # the study's whole set of extras, not only the one that was missing
        print(f"coinfer cloud-vs-device: {e}; the study needs {photo_set.EXTRA_HINT}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res.as_json(), indent=1))
    else:
        print(format_table(res))
    if args.plot:
        path = plot(res, args.plot)
        print(f"plot: {path}", file=sys.stderr)
    return 0
