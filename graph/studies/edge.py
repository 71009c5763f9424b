"""Real co-inference study: ``coinfer edgent MODEL --edge HOST:PORT``, measured against predicted.

:class:`RemoteStudy` wraps an Edgent :class:`~coinfer.graph.studies.edgent.Study`
(the model, its per-op costs measured on this host and scaled by the device
and edge profiles, the planners) and a
:class:`~coinfer.graph.edge.client.RemoteRunner` whose device part runs on the
study's ``device`` processor and whose edge part runs on an edge server.

- :meth:`RemoteStudy.measure` runs a plan ``repeat`` times over a link shaped
  to one bandwidth and reports the median end-to-end latency and the medians
  of its split: device compute (realised under the device profile), transfer
  (both directions, shaped) and edge compute (the server's, under its
  ``--soc``); ``other`` is what is left (framing, the server's dispatch,
  loopback).  Every frame's answer is compared with the local
  single-process run of the same exit (coinfer's buffer kernels, op by op).
- :meth:`RemoteStudy.compare` does so for the plan the static planner
  chooses at each bandwidth and, where that plan does not cross the link,
  also for edge-only, so every bandwidth shows a measured transfer.
- :meth:`RemoteStudy.live` plays a bandwidth trace live with Edgent's dynamic
  strategy (:func:`coinfer.graph.edge.live.play`).

The prediction is the planner's: per-op costs (timed on weights packed once
per model, ``Study(packed=True)``, as the client's device part and the server
run them) x profile scale + RTT/2 +
8 x bytes / bandwidth per crossing tensor.  The measurement also carries what
the prediction leaves out: the frames' 64-byte headers (they cross the
shaped link), and the server's and client's own Python overheads.  A
``desktop_edge`` edge is faster than this host (x0.53), which the server
cannot realise: its share of the measurement is host time.

Each row carries three predictions of the same latency model: ``predicted``
(a priori: the planner's, on costs timed before the row), ``online`` (each
frame's a-priori prediction refined by per-side speed factors from the frames
before it, as a runtime would: :mod:`coinfer.graph.edge.online`) and
``interleaved`` (on costs timed between the frames: a check of the model, not
something a runtime could do without stopping to time).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import numpy as np

from ...hw.link import Link
from ...kernels import buffer as buffer_kernels
from .. import interpret
from ..edge import live as live_mod
from ..edge import online
from ..edge.client import EdgeClient, RemoteRunner, parse_address
from ..edge.parts import exit_ops

__all__ = ["RemoteStudy", "Measured", "ServerProcess", "reference_output", "format_compare", "cli_remote"]


def reference_output(graph, x: np.ndarray, exit: int) -> np.ndarray:
    """The local single-process answer of exit ``exit``: its ops in order, buffer kernels."""
    ops, out = exit_ops(graph, exit)
    env = {graph.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}
    for n in ops:
        op = graph.op(n)
        env[op.output] = interpret.run_op(graph, op, [env[t] for t in op.inputs], buffer_kernels)
    return env[out]


@dataclass
class Measured:
    """A plan run ``frames`` times through the edge server at one bandwidth (seconds, medians)."""

    plan: tuple
    bandwidth_bps: float
    predicted_s: float  # the planner's, from the costs measured before (a priori)
    interleaved_s: float  # the same model on per-op costs measured between the frames
    online_s: float  # median of each frame's online prediction (edge.online: speed factors from earlier frames)
    measured_s: float
    device_s: float
    transfer_s: float
    edge_s: float
    other_s: float
    max_abs_err: float
    frames: int
    fallbacks: int
    note: str = ""
    parts_s: tuple = (0.0, 0.0, 0.0)  # the a-priori prediction's device compute, edge compute, transfers
    # every frame, the ``warmup`` first ones included: [(total, device, edge, transfer, online prediction) s]
    per_frame: list = field(default_factory=list, repr=False)
    warmup: int = 0

    @property
    def error(self) -> float:
        """measured / predicted - 1 (the planner's prediction)."""
        return self.measured_s / self.predicted_s - 1.0

    @property
    def interleaved_error(self) -> float:
        """measured / interleaved prediction - 1."""
        return self.measured_s / self.interleaved_s - 1.0

    @property
    def online_error(self) -> float:
        """measured / online prediction - 1."""
        return self.measured_s / self.online_s - 1.0

    @property
    def online_frame_error(self) -> float:
        """Mean over the measured frames of |frame's total / its online prediction - 1| (the row's
        medians share most of their frames, so this is the stricter figure); NaN without per-frame records."""
        f = self.per_frame[self.warmup:]
        return float(np.mean([abs(t / o - 1.0) for t, *_, o in f])) if f else float("nan")

    def as_json(self) -> dict:
        return {"measured_ms": self.measured_s * 1e3, "interleaved_predicted_ms": self.interleaved_s * 1e3,
                "online_predicted_ms": self.online_s * 1e3, "online_frame_abs_error": self.online_frame_error,
                "transfer_ms": self.transfer_s * 1e3,
                "device_ms": self.device_s * 1e3, "edge_ms": self.edge_s * 1e3, "other_ms": self.other_s * 1e3,
                "max_abs_err": self.max_abs_err, "frames": self.frames, "fallbacks": self.fallbacks}


class RemoteStudy:
    """``RemoteStudy(study, "HOST:PORT", timeout=5.0, retry_s=2.0)``; close it (or ``with``)."""

    def __init__(self, study, address: str, *, timeout: float = 5.0, retry_s: float = 2.0):
        host, port = parse_address(address)
        self.study, self.address = study, f"{host}:{port}"
        if not study.runner.packed:
            # The client's device part and the server run on weights packed once per model
            # (edge.parts.run_range): the planner's per-op costs must be timed the same way.
            study.runner.packed = True
            study.remeasure()
        self.client = EdgeClient(host, port, timeout=timeout)
        prof = study.runner.profile
        self.runner = RemoteRunner(study.graph, study.runner.procs["device"], prof.scale("device"), self.client,
                                   model_id=study.model, retry_s=retry_s)
        try:
            info = self.runner.ensure_open()
        except Exception:
            self.client.close()
            raise
        ours = prof.scale("edge")
        if abs(info.edge_scale - ours) > 1e-3 * ours:
            self.client.close()
            raise ValueError(f"the edge server's --soc scales edge time by {info.edge_scale:.4g}, the study's "
                             f"edge profile {_name(study.edge)!r} by {ours:.4g}: they must be the same")

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def measure(self, plan, bandwidth_bps: float, repeat: int = 5, warmup: int = 1, x=None) -> Measured:
        """Run ``plan`` ``warmup + repeat`` times over a link shaped to ``bandwidth_bps``
        (and the study's RTT); the medians of the last ``repeat``.

        Before each frame the plan's ops are also timed once on each side, as the
        cost source times them, and ``interleaved_s`` is the planner's latency
        model on those costs: this host's speed drifts with what else runs on it,
        and a device 100 times slower than the host multiplies that drift, so
        the comparison that tests the model itself uses costs measured in the
        same moments as the frames (as :meth:`CoRunner.check_prediction` does).

        ``online_s`` is what a runtime could predict without timing anything
        between the frames: each frame's a-priori prediction refined by each
        side's speed factor from the frames before it, the warm-up frames
        included (:func:`coinfer.graph.edge.online.online_predictions`); the
        median over the measured frames."""
        from ..edgent.runtime import trimmed_mean

        if repeat < 1:
            raise ValueError(f"--repeat must be >= 1, got {repeat}")
        s = self.study
        x = s.x if x is None else x
        plan = tuple(plan)
        link = Link(bandwidth_bps, s.rtt_s)
        self.client.shape(link)
        pl = s.runner.placement(*plan)
        host = {side: {n: [] for n in pl.ops} for side in set(pl.sides)}
        refs = {}
        frames = []
        for k in range(warmup + repeat):
            if k >= warmup:
                for side in host:
                    for op, ds in s.runner.op_samples(side, plan[0], 1, warmup=1).items():
                        host[side][op].extend(ds)
            frames.append(self.runner.run(x, plan))
        runs = frames[warmup:]
        prof = s.runner.profile
        link_s = sum(link.transfer_time(c.nbytes) for c in pl.crossings)
        interleaved = link_s + sum(trimmed_mean(host[side][n]) * prof.scale(side)
                                   for n, side in zip(pl.ops, pl.sides))
        parts = tuple(sum(s.costs.seconds(n, side) for n, side in zip(pl.ops, pl.sides) if side == which)
                      for which in ("device", "edge")) + (link_s,)
        online_s = online.online_predictions(frames, *parts)
        err = 0.0
        for r in runs:
            if r.exit not in refs:
                refs[r.exit] = reference_output(s.graph, x, r.exit)
            err = max(err, float(np.max(np.abs(r.output - refs[r.exit]))))
        med = lambda f: float(np.median([f(r) for r in runs]))  # noqa: E731
        total = med(lambda r: r.total_s)
        dev, xfer, edge = med(lambda r: r.device_s), med(lambda r: r.transfer_s), med(lambda r: r.edge_s)
        fallbacks = [r.fallback for r in runs if r.fallback]
        per_frame = [(r.total_s, r.device_s, r.edge_s, r.transfer_s, float(o)) for r, o in zip(frames, online_s)]
        return Measured(plan, float(bandwidth_bps), s.predicted(plan, bandwidth_bps), interleaved,
                        float(np.median(online_s[warmup:])), total, dev, xfer, edge, total - dev - xfer - edge, err,
                        len(runs), len(fallbacks), fallbacks[0] if fallbacks else "", parts, per_frame, warmup)

    def compare(self, bandwidths, target_s: float, repeat: int = 5) -> list:
        """[(bandwidth, "chosen" | "edge-only", Measured)] for each bandwidth; the per-op
        costs are measured again before each bandwidth's plan is made."""
        s = self.study
        rows = []
        for b in bandwidths:
            s.remeasure()
            d = s.planner.plan(b, target_s, s.rtt_s)
            rows.append((b, "chosen", self.measure(d.key, b, repeat)))
            if not s.runner.placement(*d.key).crossings:
                rows.append((b, "edge-only", self.measure(s.strategy_plan("edge-only", b, target_s), b, repeat)))
        return rows

    def live(self, trace, *, target_s: float, frames: int, frame_s: float, speedup: float = 1.0,
             k_states: int = 6, progress=None) -> list:
        """Edgent's dynamic strategy, live over ``trace`` (see :mod:`coinfer.graph.edge.live`)."""
        from ..edgent.dynamic import ConfigurationMap
        from .edgent import SPEEDS

        s = self.study
        cmap = ConfigurationMap(s.planner, s.states_for(trace, k_states), target_s=target_s, frame_s=frame_s,
                                rtt_s=s.rtt_s, speeds=SPEEDS)
        self.config_map = cmap
        refs = {}

        def reference(x, e):
            if e not in refs:
                refs[e] = reference_output(s.graph, x, e)
            return refs[e]

        return live_mod.play(self.runner, s.planner, trace, target_s=target_s, frame_s=frame_s, frames=frames,
                             rtt_s=s.rtt_s, config_map=cmap, speedup=speedup, inputs=[s.x], reference=reference,
                             progress=progress)


class ServerProcess:
    """``coinfer edge-server --port 0 ARGS`` as a subprocess on loopback (for studies and
    tests): waits for its banner, reads the bound port; ``stop()`` (or ``with``) ends it,
    SIGTERM first, SIGKILL if it does not stop within ``timeout`` s."""

    def __init__(self, *args, host: str = "127.0.0.1", timeout: float = 120.0):
        import select
        import subprocess
        import time

        cmd = [sys.executable, "-m", "coinfer.graph.studies.cli", "edge-server", "--host", host, "--port", "0",
               *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and "listening on" not in line:
            if select.select([self.proc.stdout], [], [], 1.0)[0]:
                line = self.proc.stdout.readline()
                if not line:
                    break
            elif self.proc.poll() is not None:
                break
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"edge server did not start: {line!r}")
        self.banner = line
        self.host, port = line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)
        self.port = int(port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, sig=None, timeout: float = 15.0):
        """End the server (SIGCONT first, in case it was stopped); its exit status."""
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM if sig is None else sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                f.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def format_compare(rows) -> str:
    """The table of :meth:`RemoteStudy.compare`'s rows: the three predictions, the measurement, its split."""
    head = (f"{'bandwidth':>12} {'plan':<9} {'exit':>4} {'cut':>4} {'direction':<13} {'predicted':>10} "
            f"{'online':>9} {'interleaved':>11} {'measured':>10} {'err pred':>8} {'err onl':>7} {'frame':>6} {'err int':>7} "
            f"{'device':>8} {'transfer':>9} {'edge':>7} {'other':>7} {'max|err|':>9}")
    lines = [head, "-" * len(head)]
    for b, kind, m in rows:
        e, p, d = m.plan
        lines.append(f"{b / 1e3:>6.0f}kbit/s {kind:<9} {e + 1:>4} {p:>4} {d:<13} {m.predicted_s * 1e3:>8.1f}ms "
                     f"{m.online_s * 1e3:>7.1f}ms {m.interleaved_s * 1e3:>9.1f}ms {m.measured_s * 1e3:>8.1f}ms "
                     f"{100 * m.error:>+7.1f}% {100 * m.online_error:>+6.1f}% {100 * m.online_frame_error:>5.1f}% "
                     f"{100 * m.interleaved_error:>+6.1f}% "
                     f"{m.device_s * 1e3:>6.1f}ms {m.transfer_s * 1e3:>7.1f}ms {m.edge_s * 1e3:>5.2f}ms "
                     f"{m.other_s * 1e3:>5.2f}ms {m.max_abs_err:>9.2g}"
                     + (f"  ({m.fallbacks} fallbacks: {m.note})" if m.fallbacks else ""))
    lines.append("medians over the frames.  predicted: the planner's, a priori (per-op costs measured before the "
                 "row); online: each frame's a-priori prediction with each side's compute scaled by its speed factor "
                 "from the frames before it (realised / predicted); interleaved: the same model on costs measured "
                 "between the frames; err pred, err onl, err int: measured / them - 1; frame: each frame against its own "
                 "online prediction, mean |error|.  device: compute realised "
                 "under the device profile; transfer: both directions, shaped; edge: the server's compute; other: "
                 "the rest")
    return "\n".join(lines)


def format_live(frames, target_s: float) -> str:
    lines = [f"{'t s':>7} {'trace kbit/s':>12} {'est kbit/s':>11} {'plan':<20} {'pred ms':>8} {'meas ms':>8} "
             f"{'met':>4}  fallback"]
    for f in frames:
        e, p, d = f.plan
        lines.append(f"{f.t_s:>7.1f} {f.bandwidth_bps / 1e3:>12.0f} {f.estimate_bps / 1e3:>11.0f} "
                     f"{f'e{e + 1} c{p} {d}':<20} {f.predicted_s * 1e3:>8.1f} {f.measured_s * 1e3:>8.1f} "
                     f"{'yes' if f.met else 'no':>4}  {f.fallback or ''}")
    return "\n".join(lines)


def profile_for_scale(scale: float):
    """The registered profile whose edge time scale is ``scale``, else a new one with that scale."""
    from ...hw.profile import HOST_GFLOPS, CostProfile, profiles

    for name, p in profiles().items():
        if abs(p.scale("edge") - scale) <= 1e-4 * scale:
            return name
    return CostProfile(f"edge-x{scale:.4g}", {"default": HOST_GFLOPS / scale})


def _name(profile) -> str:
    return profile if isinstance(profile, str) else profile.name


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cli_remote(args, *, target: float, rtt: float, bandwidth: float, trace, dirs) -> int:
    """``coinfer edgent MODEL --edge HOST:PORT ...``: a static plan measured through the edge
    server, or a live episode over ``--trace``."""
    from ..edgent import runtime
    from .edgent import Study, format_candidates, format_summaries, parse_time

    timeout = parse_time(args.edge_timeout, "--edge-timeout")
    for ok, option, rule, given in ((timeout > 0, "--edge-timeout", "> 0", args.edge_timeout),
                                    (args.repeat >= 1, "--repeat", ">= 1", args.repeat),
                                    (args.speedup > 0, "--speedup", "> 0", args.speedup)):
        if not ok:
            raise ValueError(f"{option} must be {rule}, got {given!r}")
    host, port = parse_address(args.edge, require_port=True)
    with EdgeClient(host, port, timeout=timeout) as first:  # the server's --soc is the edge's profile
        edge = profile_for_scale(first.open(args.model).edge_scale)
    study = Study(args.model, device=args.device, edge=edge, rtt_s=rtt, directions=dirs, progress=not args.quiet,
                  packed=True)
    with study, RemoteStudy(study, args.edge, timeout=timeout) as rs:
        if trace is None:
            res = study.static(bandwidth, target)
            m = rs.measure(res.decision.key, bandwidth, args.repeat)
            if args.json:
                out = res.as_json()
                out["edge"] = rs.address
                out["plan"].update(m.as_json())
                print(json.dumps(out, indent=1))
            else:
                print(f"model {study.model}: device {args.device}, edge {_name(edge)} at {rs.address}, "
                      f"{bandwidth / 1e3:g} kbit/s, RTT {rtt * 1e3:g} ms, target {target * 1e3:g} ms")
                print(format_candidates(res))
                print(format_compare([(bandwidth, "chosen", m)]))
            return 0
        frame_s = trace.duration / args.frames if args.frame_ms is None else args.frame_ms / 1e3
        every = max(1, args.frames // 20)

        def progress(f):
            if not args.quiet and (len(frames_done) % every == 0):
                _log(f"[live {trace.name}] t={f.t_s:.1f}s plan e{f.plan[0] + 1} c{f.plan[1]} {f.plan[2]} "
                     f"{f.measured_s * 1e3:.1f} ms{' FALLBACK' if f.fallback else ''}")
            frames_done.append(f)

        frames_done: list = []
        recs = rs.live(trace, target_s=target, frames=args.frames, frame_s=frame_s, speedup=args.speedup,
                       progress=progress)
        summary = runtime.summarize("edgent-dynamic (live)", recs)
        if args.json:
            s = summary.as_json()
            s["fallbacks"] = sum(1 for r in recs if r.fallback)
            print(json.dumps({"edge": rs.address, "strategies": [s], "frames": [r.as_json() for r in recs]},
                             indent=1))
        else:
            print(format_summaries(trace.name, target, [summary]))
            print(format_live(recs, target))
            print(f"fallbacks: {sum(1 for r in recs if r.fallback)} of {len(recs)} frames; "
                  f"max |answer - local| {max((r.max_abs_err or 0.0) for r in recs):.2g}")
    return 0
