"""The Edgent study: static plans, bandwidth and target sweeps, trace-driven episodes.

``Study(model, device="raspberry_pi", edge="desktop_edge", rtt_s=0.02)`` loads
a branchy model with its trained weights, starts the co-inference runtime,
measures every op on both sides (:class:`MeasuredSideCosts`) and builds the
planners: Edgent's over every exit, cut and the chosen directions, and
Neurosurgeon's (last exit, device-first).  The CLI (``coinfer edgent``) and
``bench/test_edgent.py`` call it.  ``packed=True`` runs and times the ops on
weights packed once per model (:class:`~coinfer.graph.edgent.runtime.CoRunner`),
as the edge client and server do; the emulated study keeps the interpreter's
path, on which its costs and frames agree.

Strategies, each as a plan (exit, cut, direction) at a bandwidth:

- ``device-only``: the whole model on the device (last exit, edge-first cut 0);
- ``edge-only``: the whole model on the edge (last exit, edge-first cut N);
- ``neurosurgeon``: the last exit, device-first, the fastest cut;
- ``edgent``: the static planner (best accuracy meeting the target).

A strategy's accuracy at a target is its exit's accuracy if it meets the
target, else 0.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ...hw.link import BandwidthTrace, Link, load_shipped, shipped, trace_named
from ..costs.measure import samples
from ..costs.sides import MeasuredSideCosts
from ..edgent import runtime
from ..edgent.cut import DIRECTIONS
from ..edgent.exits import check_exits
from ..edgent.models import MODELS, build
from ..edgent.static import StaticPlanner
from ..progress import Progress
from .messages import error_line

SWEEP_STRATEGIES = ("device-only", "edge-only", "neurosurgeon", "edgent")
#: Host-speed factors the dynamic configuration map is built for (see ConfigurationMap).
SPEEDS = tuple(np.round(np.geomspace(0.6, 2.5, 16), 3))


def parse_time(text, option: str = "a time") -> float:
    """``"300ms"``, ``"0.3s"``, ``"300"`` (ms) -> seconds; a ValueError names ``option``."""
    s = str(text).strip().lower()
    try:
        if s.endswith("ms"):
            v = float(s[:-2]) / 1e3
        elif s.endswith("s"):
            v = float(s[:-1])
        else:
            v = float(s) / 1e3
    except ValueError:
        raise ValueError(f"{option} must look like '300ms' or '0.3s', got {text!r}") from None
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{option} must be >= 0, got {text!r}")
    return v


def brute_force(planner: StaticPlanner, bandwidth_bps: float, target_s: float, rtt_s: float) -> int:
    """The static rule, candidate by candidate in plain Python (the planner's check)."""
    best = None
    for i, c in enumerate(planner.candidates(bandwidth_bps, rtt_s)):
        key = (c.predicted_s <= target_s, c.accuracy if c.predicted_s <= target_s else -c.predicted_s,
               -c.predicted_s if c.predicted_s <= target_s else c.accuracy, -i)
        if best is None or key > best[0]:
            best = (key, i)
    return best[1]


@dataclass
class StaticResult:
    model: str
    bandwidth_bps: float
    target_s: float
    decision: object
    emulated_s: float
    candidates: list

    def as_json(self) -> dict:
        d = self.decision
        return {"model": self.model, "bandwidth_bps": self.bandwidth_bps, "target_ms": self.target_s * 1e3,
                "decision_ms": d.decision_s * 1e3,
                "plan": {"exit": d.exit, "cut": d.cut, "direction": d.direction, "predicted_ms": d.predicted_s * 1e3,
                         "emulated_ms": self.emulated_s * 1e3, "accuracy": d.accuracy},
                "candidates": [c.as_json() for c in self.candidates]}


class Study:
    def __init__(self, model: str, *, device="raspberry_pi", edge="desktop_edge", rtt_s: float = 0.02,
                 directions=DIRECTIONS, repeats: int = 20, progress: bool = True, packed: bool = False):
        if model not in MODELS:
            raise ValueError(f"coinfer edgent: unknown model {model!r}; branchy models: {', '.join(MODELS)}")
        self.graph = build(model)
        self.model, self.rtt_s, self.progress = model, float(rtt_s), progress
        self.device, self.edge = device, edge
        self.directions, self.repeats = directions, repeats
        self.runner = runtime.CoRunner(self.graph, device, edge, packed=packed)
        try:
            self.last = len(check_exits(self.graph)) - 1
            self.n_ops = len(self.runner.placement(self.last, 0, "edge-first").ops)
            self.remeasure()
            self.x = self.sample_input()
        except BaseException:
            self.runner.close()
            raise

    def remeasure(self) -> None:
        """Measure every op again and rebuild the planners.  The host's speed drifts
        with what else runs on it, so an experiment plans with costs measured just
        before it."""
        self.costs = MeasuredSideCosts(self.runner, repeats=self.repeats, progress=self.progress)
        self.planner = StaticPlanner(self.graph, self.costs, directions=self.directions)
        self.neurosurgeon = StaticPlanner(self.graph, self.costs, directions=("device-first",), exits=[self.last])

    def close(self):
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sample_input(self, i: int = 0) -> np.ndarray:
        """A held-out digit if the data package is installed, else a seeded random input."""
        try:
            from ..edgent import data

            x, _ = data.split("test", self.model)
            return x[i:i + 1]
        except Exception:
            g = self.graph
            return np.random.default_rng(i).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)

    # -- static ---------------------------------------------------------------
    def emulate(self, plan, bandwidth_bps: float, runs: int = 5) -> float:
        """Median emulated seconds of ``plan`` over ``runs`` real runs at a fixed bandwidth."""
        link = Link(bandwidth_bps, self.rtt_s)
        # One warm-up run: a plan's first run after idling is not its typical one.
        return float(np.median(samples(lambda: self.runner.run(self.x, plan, link).emulated_s, repeats=runs,
                                       warmup=1)))

    def static(self, bandwidth_bps: float, target_s: float, runs: int = 5) -> StaticResult:
        """The static plan for one bandwidth and target, with its emulated latency."""
        self.planner.plan(bandwidth_bps, target_s, self.rtt_s)  # first call: numpy's own warm-up
        d = self.planner.plan(bandwidth_bps, target_s, self.rtt_s)
        return StaticResult(self.model, bandwidth_bps, target_s, d, self.emulate(d, bandwidth_bps, runs),
                            self.planner.candidates(bandwidth_bps, self.rtt_s))

    def decision_time(self, bandwidth_bps: float, target_s: float, n: int = 2000) -> float:
        """Median seconds of one static decision over ``n`` calls."""
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.planner.plan(bandwidth_bps, target_s, self.rtt_s)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    def check_static(self, bandwidths, targets) -> list:
        """The planner against brute force at every bandwidth x target, per direction set."""
        rows = []
        for dirs in (("edge-first",), ("device-first",), DIRECTIONS):
            pl = StaticPlanner(self.graph, self.costs, directions=dirs)
            for b in bandwidths:
                for t in targets:
                    d = pl.plan(b, t, self.rtt_s)
                    rows.append({"directions": "+".join(dirs), "bandwidth_bps": b, "target_s": t,
                                 "plan": d.key, "met": d.met, "equal": d.index == brute_force(pl, b, t, self.rtt_s),
                                 "decision_s": d.decision_s})
        return rows

    def strategy_plan(self, name: str, bandwidth_bps: float, target_s: float):
        if name == "device-only":
            return (self.last, 0, "edge-first")
        if name == "edge-only":
            return (self.last, self.n_ops, "edge-first")
        if name == "neurosurgeon":
            return self.neurosurgeon.plan(bandwidth_bps, target_s, self.rtt_s).key
        if name == "edgent":
            return self.planner.plan(bandwidth_bps, target_s, self.rtt_s).key
        raise ValueError(f"unknown strategy {name!r}")

    def predicted(self, plan, bandwidth_bps: float) -> float:
        return float(self.planner.latencies(bandwidth_bps, self.rtt_s)[self.planner.index(*plan)])

    def sweep_bandwidth(self, bandwidths, target_s: float, emulate: bool = False) -> dict:
        """{strategy: [(bandwidth, plan, predicted s, emulated s or None)]}."""
        out = {s: [] for s in SWEEP_STRATEGIES}
        for b in bandwidths:
            for s in SWEEP_STRATEGIES:
                p = self.strategy_plan(s, b, target_s)
                out[s].append((b, p, self.predicted(p, b), self.emulate(p, b, 1) if emulate else None))
        return out

    def sweep_target(self, bandwidth_bps: float, targets) -> dict:
        """{strategy: [(target, plan, predicted s, accuracy if met else 0)]}."""
        out = {s: [] for s in SWEEP_STRATEGIES}
        for t in targets:
            for s in SWEEP_STRATEGIES:
                p = self.strategy_plan(s, bandwidth_bps, t)
                lat = self.predicted(p, bandwidth_bps)
                out[s].append((t, p, lat, self.planner.exit_accuracy[p[0]] if lat <= t else 0.0))
        return out

    # -- episodes -------------------------------------------------------------
    def states_for(self, trace: BandwidthTrace, k: int = 6):
        """Bandwidth states from the shipped traces other than ``trace`` (leave one out)."""
        from ..edgent.dynamic import BandwidthStates

        others = [load_shipped(n) for n in shipped() if n != trace.name]
        return BandwidthStates.fit(others, k)

    def episode(self, trace: BandwidthTrace, *, target_s: float, frames: int, frame_s: float | None = None,
                strategies=runtime.STRATEGIES, k_states: int = 6, runs: int = 3) -> dict:
        """Every strategy over ``frames`` frames of ``trace`` (each frame the median of
        ``runs`` real runs): {strategy: [FrameRecord]}."""
        from ..edgent.dynamic import ConfigurationMap

        frame_s = trace.duration / frames if frame_s is None else frame_s
        self.remeasure()
        cmap = None
        if "edgent-dynamic" in strategies:
            cmap = ConfigurationMap(self.planner, self.states_for(trace, k_states), target_s=target_s,
                                    frame_s=frame_s, rtt_s=self.rtt_s, speeds=SPEEDS)
        planners = {"all": self.planner, "neurosurgeon": self.neurosurgeon}
        every = max(1, frames // 20)
        done = [0]
        with Progress(-(-frames // every), f"episode {trace.name}", enabled=self.progress) as prog:
            def tick():
                done[0] += 1
                if done[0] % every == 0 or done[0] == frames:
                    prog.step(f"frame {done[0]}/{frames}, {len(strategies)} strategies each")

            out = runtime.run_episodes(self.runner, trace, strategies, target_s=target_s, frame_s=frame_s,
                                       frames=frames, planners=planners, rtt_s=self.rtt_s, config_map=cmap,
                                       inputs=[self.x], runs=runs, progress=tick)
        self.config_map = cmap
        return out


def format_candidates(res: StaticResult) -> str:
    d = res.decision
    lines = [f"{'exit':>4} {'cut':>4} {'direction':<13} {'predicted ms':>13} {'accuracy':>9}"]
    for c in res.candidates:
        mark = " <" if (c.exit, c.cut, c.direction) == d.key else ""
        lines.append(f"{c.exit + 1:>4} {c.cut:>4} {c.direction:<13} {c.predicted_s * 1e3:>13.2f} "
                     f"{100 * c.accuracy:>8.2f}%{mark}")
    verdict = "predicted to meet the target" if d.met else "NO candidate is predicted to meet the target; this is the fastest"
    lines.append(f"plan: exit {d.exit + 1}, cut {d.cut}, {d.direction}: predicted {d.predicted_s * 1e3:.2f} ms, "
                 f"emulated {res.emulated_s * 1e3:.2f} ms, accuracy {100 * d.accuracy:.2f}% ({verdict}); "
                 f"decision {d.decision_s * 1e6:.0f} us")
    return "\n".join(lines)


def format_summaries(trace_name: str, target_s: float, summaries) -> str:
    head = (f"{'strategy':<16} {'frames':>6} {'met':>6} {'met %':>6} {'acc %':>7} {'exit acc %':>10} "
            f"{'mean ms':>8} {'p95 ms':>8} {'switches':>8} {'|em-pred|':>9}")
    lines = [f"trace {trace_name}, target {target_s * 1e3:.0f} ms", head, "-" * len(head)]
    for s in summaries:
        lines.append(f"{s.name:<16} {s.frames:>6} {s.met_frames:>6} {100 * s.deadline_met:>5.1f}% "
                     f"{100 * s.mean_accuracy:>6.2f}% {100 * s.exit_accuracy:>9.2f}% {s.mean_ms:>8.1f} "
                     f"{s.p95_ms:>8.1f} {s.switches:>8} {100 * s.mean_abs_err:>8.1f}%")
    return "\n".join(lines)


# -- figures --------------------------------------------------------------------

def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("coinfer edgent --plot needs matplotlib: pip install 'coinfer[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _line_figure(plt, path: str, series: dict, x, y, hline=None, **axes) -> str:
    """One line per strategy: ``series`` {name: rows}, ``x(row)``, ``y(row)``; saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in series.items():
        ax.plot([x(r) for r in rows], [y(r) for r in rows], marker=".", label=name)
    if hline is not None:
        ax.axhline(hline, color="grey", ls="--", label="target")
    ax.set(**axes)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_static(study: Study, out_dir, target_s: float, bandwidth_bps: float) -> list:
    """Edgent's two static figures: latency vs bandwidth (50 kbit/s - 1.5 Mbit/s) and
    accuracy vs target (100 - 1000 ms).  Returns the paths."""
    import os

    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    sw = study.sweep_bandwidth(np.linspace(50e3, 1.5e6, 30), target_s)
    p1 = _line_figure(plt, os.path.join(out_dir, f"{study.model}_latency_vs_bandwidth.png"), sw,
                      lambda r: r[0] / 1e3, lambda r: r[2] * 1e3, hline=target_s * 1e3,
                      xlabel="bandwidth (kbit/s)", ylabel="predicted latency (ms)", yscale="log",
                      title=f"{study.model}: latency vs bandwidth (target {target_s * 1e3:.0f} ms)")
    st = study.sweep_target(bandwidth_bps, np.linspace(0.1, 1.0, 19))
    p2 = _line_figure(plt, os.path.join(out_dir, f"{study.model}_accuracy_vs_target.png"), st,
                      lambda r: r[0] * 1e3, lambda r: 100 * r[3], xlabel="latency target (ms)",
                      ylabel="accuracy (%, 0 if late)",
                      title=f"{study.model}: accuracy vs target at {bandwidth_bps / 1e3:.0f} kbit/s")
    return [p1, p2]


def plot_episode(study: Study, out_dir, trace: BandwidthTrace, target_s: float, records: dict,
                 suffix: str = "") -> str:
    """The episode timeline: bandwidth, the plan in force, latency against the deadline."""
    import os

    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    fig, axs = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    t = np.array([r.t_s for r in next(iter(records.values()))])
    axs[0].step(trace.times, trace.mbps, where="post", color="k", lw=0.8)
    axs[0].set(ylabel="bandwidth (Mbit/s)", title=f"{study.model} on {trace.name}, target {target_s * 1e3:.0f} ms")
    def position(plan):  # the exit, plus 0.8 x the share of its layers on the edge
        sides = study.runner.placement(*plan).sides
        return plan[0] + 1 + 0.8 * sides.count("edge") / len(sides)

    for k, (s, recs) in enumerate(records.items()):
        axs[1].step(t, [position(r.plan) + 0.02 * k for r in recs], where="post", label=s)
        axs[2].plot(t, [r.emulated_s * 1e3 for r in recs], ".", ms=3, label=s)
    axs[1].set(ylabel="plan in force: exit\n+ 0.8 x share of layers on the edge")
    axs[2].axhline(target_s * 1e3, color="grey", ls="--", label="deadline")
    axs[2].set(ylabel="emulated latency (ms)", xlabel="time (s)", yscale="log")
    axs[2].legend(fontsize=7)
    axs[1].legend(fontsize=7)
    p = os.path.join(out_dir, f"{study.model}_{trace.name}_timeline{suffix}.png")
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def table_one(model: str):
    """BranchyNet Table I on the held-out split, measured now with coinfer's kernels."""
    from ..edgent import data
    from ..edgent.exits import evaluate

    x, y = data.split("test", model)
    return evaluate(build(model), x, y)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the command line -------------------------------------------------------------

def add_parser(sub) -> None:
    """``coinfer edgent``'s arguments (called by :func:`coinfer.graph.studies.cli.build_parser`)."""
    e = sub.add_parser("edgent", help="device-edge co-inference with early exits: a static plan, or an episode "
                       "over a bandwidth trace")
    e.add_argument("model", help=f"branchy model: {', '.join(MODELS)}")
    e.add_argument("--bandwidth", default="500kbps", help="static plan: link bandwidth (e.g. 500kbps, 1.5Mbps)")
    e.add_argument("--target", default="300ms", help="latency target (e.g. 300ms)")
    e.add_argument("--direction", default="both", choices=["edge-first", "device-first", "both"],
                   help="which side runs the first part of a split plan (default: both, the planner picks)")
    e.add_argument("--device", default="raspberry_pi", help="device cost profile")
    e.add_argument("--edge", default="desktop_edge", help="edge cost profile (an emulated edge), or HOST:PORT of "
                   "a `coinfer edge-server` (real co-inference over TCP; the server's --soc is the edge's profile)")
    e.add_argument("--rtt", default="20ms", help="link round-trip time (default 20ms)")
    e.add_argument("--trace", help="run an episode over this bandwidth trace (a 'time_s Mbit/s' file, or the "
                   "name of a shipped trace)")
    e.add_argument("--frames", type=int, default=100, help="episode frames (default 100)")
    e.add_argument("--frame-ms", type=float, default=None,
                   help="one frame every this many ms (default: the frames spread over the whole trace)")
    e.add_argument("--json", action="store_true", help="print JSON instead of tables")
    e.add_argument("--plot", metavar="DIR", help="write PNG figures to DIR (needs coinfer[plot])")
    e.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r = e.add_argument_group("with --edge HOST:PORT")
    r.add_argument("--repeat", type=int, default=5, help="frames to measure the static plan over (median; default 5)")
    r.add_argument("--edge-timeout", default="5s", help="bound on each wait for the server (default 5s); then the "
                   "frame falls back to device-only")
    r.add_argument("--speedup", type=float, default=1.0, help="live episode: play the trace this many times "
                   "faster than real time (default 1)")


def cli_main(args) -> int:
    import json

    from ...hw.link import parse_rate

    try:
        target = parse_time(args.target, "--target")
        rtt = parse_time(args.rtt, "--rtt")
        bandwidth = parse_rate(args.bandwidth)
        if args.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {args.frames}")
        trace = None
        if args.trace:
            trace = trace_named(args.trace)
    except (ValueError, OSError) as e:
        print(error_line("edgent", e), file=sys.stderr)
        return 2
    if args.plot:
        try:
            _pyplot()
        except ImportError as e:
            print(error_line("edgent", e), file=sys.stderr)
            return 2
    if trace is not None:
        from ..edgent.dynamic import _ruptures

        try:
            _ruptures()
        except ImportError as e:
            print(error_line("edgent", e), file=sys.stderr)
            return 2
    dirs = DIRECTIONS if args.direction == "both" else (args.direction,)
    from ...hw.profile import profiles

    if args.edge not in profiles():  # an edge server's address
        from .edge import cli_remote

        try:
            return cli_remote(args, target=target, rtt=rtt, bandwidth=bandwidth, trace=trace, dirs=dirs)
        except (ValueError, OSError, RuntimeError) as e:
            print(error_line("edgent", e), file=sys.stderr)
            return 2
    try:
        study = Study(args.model, device=args.device, edge=args.edge, rtt_s=rtt, directions=dirs,
                      progress=not args.quiet)
    except ValueError as e:
        print(error_line("edgent", e), file=sys.stderr)
        return 2
    with study:
        if trace is None:
            res = study.static(bandwidth, target)
            if args.json:
                print(json.dumps(res.as_json(), indent=1))
            else:
                print(f"model {study.model}: device {args.device}, edge {args.edge}, "
                      f"{bandwidth / 1e3:g} kbit/s, RTT {rtt * 1e3:g} ms, target {target * 1e3:g} ms")
                print(format_candidates(res))
            if args.plot:
                for p in plot_static(study, args.plot, target, bandwidth):
                    log(f"wrote {p}")
            return 0
        frame_s = None if args.frame_ms is None else args.frame_ms / 1e3
        recs = study.episode(trace, target_s=target, frames=args.frames, frame_s=frame_s)
        sums = [runtime.summarize(s, r) for s, r in recs.items()]
        if args.json:
            print(json.dumps({"strategies": [s.as_json() for s in sums]}, indent=1))
        else:
            print(format_summaries(trace.name, target, sums))
            print("acc %: the exit's accuracy if the frame met the deadline, else 0; exit acc %: of the exits used. "
                  "|em-pred|: mean |emulated - predicted| / emulated.")
            print("configuration map (states from the other shipped traces):")
            print(study.config_map.table())
        if args.plot:
            log(f"wrote {plot_episode(study, args.plot, trace, target, recs)}")
            for p in plot_static(study, args.plot, target, bandwidth):
                log(f"wrote {p}")
    return 0
