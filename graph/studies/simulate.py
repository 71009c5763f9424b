"""N devices sharing one edge server, simulated with SimPy, and checked against the real server.

``coinfer simulate`` (``pip install 'coinfer[sim,edgent]'``) plays a
:class:`Scenario`: ``n`` devices (each a ``device`` profile, e.g. a Raspberry
Pi) run a branchy model with Edgent's dynamic strategy and share one edge
server (``edge`` profile, ``workers`` threads).  Device ``k`` has its own
link, driven by shipped bandwidth trace ``traces[k % len(traces)]`` from trace
time ``(k // len(traces)) x stagger_s``, with RTT ``rtt_s``.

Each device runs as the real client runs (:func:`coinfer.graph.edge.live.play`):
a probe first; then one frame every ``frame_s`` (a frame starts late if the
one before overran); the plan of a frame comes from the configuration map
(bandwidth states of the *other* shipped traces, as ``coinfer edgent
--trace`` builds them) at the estimate of an online change detector fed with
the throughput measured on the device's own transfers (or a probe after a
frame that crossed nothing).  A frame is a :class:`coinfer.hw.sim.Request`
whose stages (:func:`coinfer.graph.edgent.stages.frame_stages`) hold the
device (:class:`~coinfer.hw.sim.SimProcessor`), its uplink and downlink
(:class:`~coinfer.hw.sim.SimLink`) and the shared edge, whose SimPy queue is
the server's.  Stage times are the planner's: the per-op host seconds of the
model's cost table scaled by each side's profile; transfers carry the edge
server's frame headers (64 B each) and the server's warm-up pass of the range
(host time) is queued on the edge when a request starts to arrive, as the
real server does.  Nothing in the simulation waits for a clock: 16 devices x
100 frames take about a second.

Reported per ``n``: each device's latency percentiles (p50, p95), the share
of frames meeting the target, the edge's queueing per frame and its
utilisation (busy seconds / elapsed).

:func:`check_real` runs the same scenario for real (``n`` = 1 and 2): an edge
server subprocess (``coinfer edge-server --soc EDGE``) and ``n`` concurrent
clients (threads, each with its own shaped connection and device thread)
playing their traces live, then simulates those devices with the same costs
and compares each device's mean and median latency.  Real devices are
emulated on this host's cores (a device part keeps a core busy for the
profile's time); two devices computing at the same moment on one core slow
each other, which a simulated device does not, so the real check is meant for
scenarios whose devices mostly offload.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ...hw.link import BandwidthTrace, Link, load_shipped, shipped, trace_named
from ...hw.sim import Request, SimLink, SimProcessor, infer, simpy
from .messages import error_line

__all__ = ["Scenario", "Planning", "SimFrame", "FleetResult", "simulate", "scale_out", "check_real",
           "format_table", "DEFAULT_TRACES"]

#: Trace order of the default scenario: the HSDPA 3G traces first (the two fastest first), the FCC ones last.
DEFAULT_TRACES = ("hsdpa_bus_oslo", "hsdpa_ferry_oslo", "hsdpa_car_snaroya", "hsdpa_train_vestby",
                  "fcc_amazon_13092", "fcc_youtube_5294")
HEADER_BYTES = 64  # coinfer.graph.edge.frames.HEADER_SIZE


@dataclass(frozen=True)
class Scenario:
    model: str = "branchy_alexnet"
    device: str = "nexus5_cpu"
    edge: str = "cloud_cpu"
    target_s: float = 0.3
    frame_s: float = 0.15
    frames: int = 100
    rtt_s: float = 0.02
    workers: int = 1
    traces: tuple = DEFAULT_TRACES
    stagger_s: float = 60.0
    k_states: int = 6
    framing: int = HEADER_BYTES
    warmup: bool = True

    def __post_init__(self):
        if self.frames < 1 or not self.frame_s > 0 or not self.target_s > 0 or self.rtt_s < 0:
            raise ValueError(f"simulate: need frames >= 1, frame_s > 0, target_s > 0, rtt_s >= 0; got "
                             f"{self.frames}, {self.frame_s}, {self.target_s}, {self.rtt_s}")
        if self.workers < 1:
            raise ValueError(f"simulate: workers must be >= 1, got {self.workers}")
        if not self.traces:
            raise ValueError("simulate: give at least one bandwidth trace")

    def trace(self, k: int) -> tuple[BandwidthTrace, float]:
        """Device ``k``'s trace and the trace time it starts at."""
        name = self.traces[k % len(self.traces)]
        tr = trace_named(name)
        return tr, (k // len(self.traces)) * self.stagger_s


class Planning:
    """What every device plans with: the model, its per-op host seconds (``host``,
    default the model's cost table on this host), Edgent's planner under the
    device and edge profiles, one configuration map per trace, and each plan's stages."""

    def __init__(self, scenario: Scenario, host: dict | None = None):
        from ...hw.link import edge_profile
        from ..costs.sides import MeasuredSideCosts
        from ..edgent.models import build
        from ..edgent.static import StaticPlanner

        self.scenario = s = scenario
        self.graph = build(s.model)
        if host is None:
            from ..costs.tables import edgent_host

            host = edgent_host(self.graph)
        self.host = host
        self.costs = MeasuredSideCosts.of_host(host, edge_profile(s.device, s.edge))
        self.planner = StaticPlanner(self.graph, self.costs)
        self._maps: dict = {}
        self._stages: dict = {}

    def config_map(self, trace: BandwidthTrace):
        """The configuration map for a device on ``trace``: states from the other shipped traces."""
        cm = self._maps.get(trace.name)
        if cm is None:
            from ..edgent.dynamic import BandwidthStates, ConfigurationMap
            from .edgent import SPEEDS

            s = self.scenario
            others = [load_shipped(n) for n in shipped() if n != trace.name]
            states = BandwidthStates.fit(others, s.k_states)
            cm = self._maps[trace.name] = ConfigurationMap(self.planner, states, target_s=s.target_s,
                                                           frame_s=s.frame_s, rtt_s=s.rtt_s, speeds=SPEEDS)
        return cm

    def stages(self, plan: tuple) -> tuple:
        st = self._stages.get(plan)
        if st is None:
            from ..edgent.cut import placement
            from ..edgent.stages import frame_stages

            s = self.scenario
            warm = (lambda op: self.host[op]["edge"]) if s.warmup else None
            st = self._stages[plan] = frame_stages(placement(self.graph, *plan), self.costs, framing=s.framing,
                                                   warmup=warm)
        return st


@dataclass
class SimFrame:
    device: int
    index: int
    t_s: float  # simulation time the frame started
    bandwidth_bps: float  # the trace's bandwidth then
    estimate_bps: float
    plan: tuple
    latency_s: float
    device_s: float
    transfer_s: float
    edge_s: float
    edge_wait_s: float  # queued for the edge
    lag_s: float  # how late the frame started
    met: bool
    accuracy: float  # the exit's accuracy if met, else 0


@dataclass
class FleetResult:
    n: int
    scenario: Scenario
    frames: list  # per device: [SimFrame]
    elapsed_s: float
    edge_busy_s: float
    wall_s: float = 0.0
    notes: dict = field(default_factory=dict)

    @property
    def edge_utilisation(self) -> float:
        return self.edge_busy_s / (self.scenario.workers * self.elapsed_s) if self.elapsed_s > 0 else 0.0

    def latencies(self, k: int) -> np.ndarray:
        return np.array([f.latency_s for f in self.frames[k]])

    def per_device(self) -> list[dict]:
        out = []
        for k, fs in enumerate(self.frames):
            lat = self.latencies(k)
            out.append({"device": k, "trace": self.scenario.traces[k % len(self.scenario.traces)],
                        "frames": len(fs), "mean_ms": float(lat.mean() * 1e3),
                        "p50_ms": float(np.percentile(lat, 50) * 1e3), "p95_ms": float(np.percentile(lat, 95) * 1e3),
                        "met": float(np.mean([f.met for f in fs])),
                        "edge_wait_ms": float(np.mean([f.edge_wait_s for f in fs]) * 1e3),
                        "offloaded": float(np.mean([f.edge_s > 0 for f in fs]))})
        return out

    def summary(self) -> dict:
        rows = self.per_device()
        allf = [f for fs in self.frames for f in fs]
        lat = np.array([f.latency_s for f in allf])
        waits = np.array([f.edge_wait_s for f in allf if f.edge_s > 0] or [0.0]) * 1e3
        return {"n": self.n, "edge_utilisation": self.edge_utilisation,
                "p50_ms": float(np.percentile(lat, 50) * 1e3), "p95_ms": float(np.percentile(lat, 95) * 1e3),
                "device_p50_ms": [r["p50_ms"] for r in rows], "device_p95_ms": [r["p95_ms"] for r in rows],
                "edge_wait_ms": float(waits.mean()), "edge_wait_p95_ms": float(np.percentile(waits, 95)),
                "offloaded": float(np.mean([f.edge_s > 0 for f in allf])),
                "met": float(np.mean([f.met for f in allf])), "elapsed_s": self.elapsed_s, "wall_s": self.wall_s}


def _probe_bytes(estimate_bps: float) -> int:
    """A probe's payload: about 10 ms of the estimated bandwidth (as the live client sends)."""
    return int(min(65536, max(512, estimate_bps / 8 * 0.01)))


def simulate(planning: Planning, n: int, *, plans=None, until: float | None = None) -> FleetResult:
    """Simulate ``n`` devices (see the module docstring).  ``plans(k, f, estimate)``
    (optional) overrides the plan of device ``k``'s frame ``f``."""
    from ..edgent.runtime import ChangeDetector

    if n < 1:
        raise ValueError(f"simulate: n must be >= 1, got {n}")
    sp = simpy()
    s = planning.scenario
    env = sp.Environment()
    edge = SimProcessor(env, "edge", capacity=s.workers)
    frames: list = [[] for _ in range(n)]
    accuracy = planning.planner.exit_accuracy
    half = s.rtt_s / 2

    def samples_of(rec) -> list:
        """Measured bit/s of each message that carried tensors (RTT/2 per tensor left out)."""
        out = []
        for r in rec.stages:
            st = r.stage
            if st.kind == "transfer" and st.crossings:
                d = r.service_s - st.crossings * half
                if d >= 1e-3:
                    out.append(8.0 * st.nbytes / d)
        return out

    def device(k: int):
        trace, at = s.trace(k)
        link = Link(trace=trace, rtt_s=s.rtt_s)
        res = {"device": SimProcessor(env, f"device{k}"), "edge": edge,
               "uplink": SimLink(env, link, f"uplink{k}", at=at), "downlink": SimLink(env, link, f"downlink{k}", at=at)}
        cmap = planning.config_map(trace)
        detector = ChangeDetector()

        def probe(estimate: float):
            from ...hw.sim import Stage

            nb = _probe_bytes(estimate)
            stages = (Stage("transfer", "uplink", nbytes=nb + s.framing, crossings=1, label="probe"),
                      Stage("transfer", "downlink", nbytes=s.framing, crossings=0, label="probe reply"))
            rec = yield env.process(infer(env, Request(stages, res, f"probe{k}")))
            d = rec.stages[0].service_s - half
            return 8.0 * (nb + s.framing) / d if d > 0 else None

        first = yield from probe(link.bandwidth(at))
        detector.update(first if first else link.bandwidth(at))
        for f in range(s.frames):
            due = f * s.frame_s
            if env.now < due:
                yield env.timeout(due - env.now)
            t = env.now
            est = detector.estimate
            plan = tuple(plans(k, f, est)) if plans is not None else tuple(cmap.plan_for(est, 1.0))
            rec = yield env.process(infer(env, Request(planning.stages(plan), res, f"device{k} frame{f}")))
            got = samples_of(rec)
            if not got:
                p = yield from probe(est)
                if p:
                    got.append(p)
            for x in got:
                detector.update(x)
            lat = rec.latency_s
            edge_recs = [r for r in rec.stages if r.stage.where == "edge" and r.stage.wait]
            met = lat <= s.target_s
            frames[k].append(SimFrame(k, f, t, link.bandwidth(at + t), est, plan, lat,
                                      rec.service_s("compute", "device"), rec.service_s("transfer"),
                                      sum(r.service_s for r in edge_recs), sum(r.wait_s for r in edge_recs),
                                      t - due, bool(met), accuracy[plan[0]] if met else 0.0))

    for k in range(n):
        env.process(device(k))
    t0 = time.perf_counter()
    env.run(until=until)
    return FleetResult(n, s, frames, env.now, edge.busy_s, time.perf_counter() - t0)


def scale_out(planning: Planning, ns=(1, 2, 4, 8, 16)) -> list[FleetResult]:
    """:func:`simulate` for each number of devices."""
    return [simulate(planning, n) for n in ns]


def format_table(results) -> str:
    s = results[0].scenario
    lines = [f"{s.model}: {s.device} devices, one {s.edge} edge ({s.workers} worker), Edgent dynamic, target "
             f"{s.target_s * 1e3:.0f} ms, a frame every {s.frame_s * 1e3:.0f} ms x {s.frames}, RTT "
             f"{s.rtt_s * 1e3:.0f} ms; device k on trace k mod {len(s.traces)}",
             f"{'N':>3} {'edge util':>9} {'edge wait':>9} {'wait p95':>9} {'offload':>7} {'met':>6} {'p50 ms':>8} "
             f"{'p95 ms':>8} "
             f"{'device p50 ms (min..max)':>25} {'device p95 ms (min..max)':>25} {'sim s':>6}"]
    for r in results:
        m = r.summary()
        lines.append(f"{r.n:>3} {100 * m['edge_utilisation']:>8.1f}% {m['edge_wait_ms']:>7.1f}ms "
                     f"{m['edge_wait_p95_ms']:>7.1f}ms "
                     f"{100 * m['offloaded']:>6.0f}% {100 * m['met']:>5.1f}% {m['p50_ms']:>8.1f} {m['p95_ms']:>8.1f} "
                     f"{min(m['device_p50_ms']):>11.1f}..{max(m['device_p50_ms']):<12.1f} "
                     f"{min(m['device_p95_ms']):>11.1f}..{max(m['device_p95_ms']):<12.1f} {r.wall_s:>6.2f}")
    lines.append("edge wait, wait p95: queueing at the edge per frame that has an edge part (mean, p95); offload: "
                 "share of frames with an edge part; sim s: wall seconds the simulation took")
    return "\n".join(lines)


# -- the real system ---------------------------------------------------------------------------

@dataclass
class RealCheck:
    n: int
    device: int
    trace: str
    frames: int
    real_mean_ms: float
    sim_mean_ms: float
    real_p50_ms: float
    sim_p50_ms: float
    replay_mean_ms: float  # simulated with the plans the real devices chose
    sim_edge_wait_ms: float
    same_plan: float  # share of frames whose plan equals the simulated device's
    fallbacks: int

    @property
    def error(self) -> float:
        """sim mean / real mean - 1."""
        return self.sim_mean_ms / self.real_mean_ms - 1.0

    @property
    def replay_error(self) -> float:
        return self.replay_mean_ms / self.real_mean_ms - 1.0

    def as_json(self) -> dict:
        d = dict(self.__dict__)
        d.update(error=self.error, replay_error=self.replay_error)
        return d


def _real_run(study, planning: Planning, address: str, scenario: Scenario, n: int, cores=(0,)) -> list:
    """``n`` concurrent live clients of the server at ``address``; per device its [LiveFrame]."""
    import threading

    from ...hw import Processor
    from ...kernels import buffer as buffer_kernels
    from ..edge import live
    from ..edge.client import EdgeClient, RemoteRunner, parse_address

    host, port = parse_address(address)
    prof = study.runner.profile
    runners, procs = [], []
    try:
        for k in range(n):
            proc = study.runner.procs["device"] if k == 0 else \
                Processor(f"device{k}", "buffer", buffer_kernels, (cores[k % len(cores)],))
            if k:
                procs.append(proc)
            r = RemoteRunner(study.graph, proc, prof.scale("device"), EdgeClient(host, port, timeout=30.0),
                             model_id=scenario.model)
            r.ensure_open()
            runners.append(r)
        out: list = [None] * n
        errors: list = []
        barrier = threading.Barrier(n)

        def client(k: int):
            try:
                trace, at = scenario.trace(k)
                if at:
                    raise ValueError("check_real: each real device plays its trace from its start")
                cmap = planning.config_map(trace)
                barrier.wait(60)
                out[k] = live.play(runners[k], planning.planner, trace, target_s=scenario.target_s,
                                   frame_s=scenario.frame_s, frames=scenario.frames, rtt_s=scenario.rtt_s,
                                   config_map=cmap, inputs=[study.x])
            except BaseException as e:  # noqa: BLE001 - reported by the caller
                errors.append(e)

        threads = [threading.Thread(target=client, args=(k,), name=f"client{k}") for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scenario.frames * scenario.frame_s * 20 + 120)
        if errors:
            raise errors[0]
        return out
    finally:
        for r in runners:
            r.close()
        for p in procs:
            p.close()


def check_real(scenario: Scenario, ns=(1, 2), *, progress: bool = True) -> list[RealCheck]:
    """Run ``scenario`` for real with ``n`` devices for each ``n`` in ``ns`` (an edge server
    subprocess on 127.0.0.1 and ``n`` concurrent clients), simulate the same devices with the
    costs the real clients planned with, and compare each device's latency."""
    from .edge import ServerProcess
    from .edgent import Study

    out = []
    with ServerProcess("--soc", scenario.edge, "--workers", str(scenario.workers)) as server, \
            Study(scenario.model, device=scenario.device, edge=scenario.edge, rtt_s=scenario.rtt_s,
                  progress=progress) as study:
        for n in ns:
            study.remeasure()
            planning = Planning(scenario, study.costs.host)
            if progress:
                print(f"[simulate] {n} real device(s) through {server.address}, {scenario.frames} frames each",
                      file=sys.stderr, flush=True)
            real = _real_run(study, planning, server.address, scenario, n)
            sim = simulate(planning, n)
            chosen = {k: [f.plan for f in real[k]] for k in range(n)}
            replay = simulate(planning, n, plans=lambda k, f, est: chosen[k][f])
            for k in range(n):
                rl = np.array([f.measured_s for f in real[k]]) * 1e3
                sl = sim.latencies(k) * 1e3
                out.append(RealCheck(n, k, scenario.traces[k % len(scenario.traces)], len(rl), float(rl.mean()),
                                     float(sl.mean()), float(np.median(rl)), float(np.median(sl)),
                                     float(replay.latencies(k).mean() * 1e3),
                                     float(np.mean([f.edge_wait_s for f in sim.frames[k]]) * 1e3),
                                     float(np.mean([a == b.plan for a, b in zip(chosen[k], sim.frames[k])])),
                                     sum(1 for f in real[k] if f.fallback)))
    return out


def format_real(rows) -> str:
    lines = [f"{'N':>2} {'dev':>3} {'trace':<20} {'frames':>6} {'real mean':>10} {'sim mean':>9} {'err':>7} "
             f"{'replay':>8} {'err':>7} {'real p50':>9} {'sim p50':>8} {'sim edge wait':>13} {'same plan':>9} "
             f"{'fallbacks':>9}"]
    for r in rows:
        lines.append(f"{r.n:>2} {r.device:>3} {r.trace:<20} {r.frames:>6} {r.real_mean_ms:>8.1f}ms "
                     f"{r.sim_mean_ms:>7.1f}ms {100 * r.error:>+6.1f}% {r.replay_mean_ms:>6.1f}ms "
                     f"{100 * r.replay_error:>+6.1f}% {r.real_p50_ms:>7.1f}ms {r.sim_p50_ms:>6.1f}ms "
                     f"{r.sim_edge_wait_ms:>11.1f}ms {100 * r.same_plan:>8.0f}% {r.fallbacks:>9}")
    lines.append("real: coinfer edge-server and concurrent clients playing their traces live; sim: SimPy with the "
                 "costs the clients planned with; replay: SimPy with the plans the real clients chose")
    return "\n".join(lines)


# -- the command line ----------------------------------------------------------------------------

def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="N devices sharing one edge server, simulated with SimPy (needs "
                       "coinfer[sim,edgent]); --check-real compares with the real edge server")
    p.add_argument("--devices", default="1,2,4,8,16", help="numbers of devices, comma-separated (default 1,2,4,8,16)")
    p.add_argument("--model", default="branchy_alexnet")
    p.add_argument("--device", default="nexus5_cpu", help="device cost profile (default nexus5_cpu: Guo's phone, "
                   "0.2 GFLOP/s)")
    p.add_argument("--edge", default="cloud_cpu", help="edge cost profile (default cloud_cpu: Guo's server CPU, "
                   "7.4 GFLOP/s)")
    p.add_argument("--workers", type=int, default=1, help="the edge's worker threads (default 1)")
    p.add_argument("--target", default="300ms", help="latency target (default 300ms)")
    p.add_argument("--frame-ms", type=float, default=150.0, help="one frame per device every this many ms "
                   "(default 150)")
    p.add_argument("--frames", type=int, default=100, help="frames per device (default 100)")
    p.add_argument("--rtt", default="20ms", help="links' round-trip time (default 20ms)")
    p.add_argument("--traces", default=",".join(DEFAULT_TRACES),
                   help="device k plays trace k mod len(traces): shipped names or files")
    p.add_argument("--check-real", action="store_true", help="also run N=1 and N=2 for real (edge server "
                   "subprocess on 127.0.0.1 and concurrent clients) and compare")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")


def cli_main(args) -> int:
    from ...hw.sim import SimPyMissing
    from .edgent import parse_time

    try:
        simpy()
    except SimPyMissing as e:
        print(error_line("simulate", e), file=sys.stderr)
        return 2
    try:
        from ..edgent.dynamic import _ruptures

        _ruptures()
    except ImportError:
        print("coinfer simulate: the devices plan with Edgent's dynamic mode, which segments traces with "
              "ruptures: pip install 'coinfer[sim]'", file=sys.stderr)
        return 2
    try:
        ns = [int(v) for v in args.devices.split(",") if v.strip()]
        if not ns or min(ns) < 1:
            raise ValueError(f"--devices must list numbers >= 1, got {args.devices!r}")
        sc = Scenario(model=args.model, device=args.device, edge=args.edge, target_s=parse_time(args.target, "--target"),
                      frame_s=args.frame_ms / 1e3, frames=args.frames, rtt_s=parse_time(args.rtt, "--rtt"),
                      workers=args.workers, traces=tuple(t.strip() for t in args.traces.split(",") if t.strip()))
        from ...hw.profile import get_profile

        get_profile(sc.device), get_profile(sc.edge)
        for k in range(len(sc.traces)):
            sc.trace(k)
        planning = Planning(sc)
    except (ValueError, OSError) as e:
        print(error_line("simulate", e), file=sys.stderr)
        return 2
    results = scale_out(planning, ns)
    doc = {"scenario": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sc.__dict__.items()},
           "results": [{**r.summary(), "devices": r.per_device()} for r in results]}
    if args.check_real:
        rows = check_real(sc, progress=not args.quiet)
        doc["real"] = [r.as_json() for r in rows]
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(format_table(results))
        if args.check_real:
            print(format_real(rows))
    return 0
