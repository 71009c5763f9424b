"""The ``coinfer`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from .messages import error_line


def _cmd_kernels(args) -> int:
    from ..progress import Progress
    from . import kernels as ks

    layers = ks.LAYERS
    if args.layers:
        wanted = [s.strip() for s in args.layers.split(",") if s.strip()]
        layers = [lay for lay in layers if any(w in lay.name for w in wanted)]
        if not layers:
            print(f"coinfer kernels: no layer matches {args.layers!r}; known: "
                  + ", ".join(lay.name for lay in ks.LAYERS), file=sys.stderr)
            return 2
    layouts = ["buffer", "image"] if args.layout == "both" else [args.layout]
    try:
        import onnxruntime  # noqa: F401
        have_ort = not args.no_ort
    except ImportError:
        have_ort = False
    rows = []
    peak = ks.peak()
    with Progress(len(layers), "kernels", enabled=not args.quiet) as prog:
        for lay in layers:
            prog.step(f"{lay.name} (compiling on first use)" if not rows else lay.name)
            inputs = ks.make_inputs(lay)
            row = {"layer": lay.name, "shape": lay.describe(), "gflop": lay.flops() / 1e9}
            ort_fn = ks.ort_runner(lay, inputs) if have_ort else None
            runners = {lo: ks.ours_runner(lay, inputs, lo) for lo in layouts}
            if ort_fn is not None:
                runners["ort"] = ort_fn
            sec = ks.time_interleaved(runners, min_time=args.min_time)
            for lo in layouts:
                row[f"{lo}_ms"] = sec[lo] * 1e3
                row[f"{lo}_gflops"] = lay.flops() / sec[lo] / 1e9
                row[f"{lo}_peak"] = row[f"{lo}_gflops"] / peak["peak_gflops"]
            if ort_fn is not None:
                row["ort_ms"] = sec["ort"] * 1e3
                row["ort_gflops"] = lay.flops() / sec["ort"] / 1e9
                for lo in layouts:
                    row[f"{lo}_vs_ort"] = row[f"{lo}_gflops"] / row["ort_gflops"]
            rows.append(row)
    if args.json:
        print(json.dumps({"isa": peak["isa"], "peak": peak, "layers": rows}, indent=2))
        return 0
    _print_kernel_table(rows, layouts, have_ort, ks, peak)
    return 0


def _print_kernel_table(rows, layouts, have_ort, ks, peak) -> None:
    from ..costs.measure import geomean

    print(ks.describe_peak(peak))
    head = f"{'layer':<28} {'shape':<28}"
    for lo in layouts:
        head += f" {lo + ' ms':>10} {'GFLOP/s':>8} {'%peak':>6}"
    if have_ort:
        head += f" {'ort ms':>9} {'GFLOP/s':>8}" + "".join(f" {lo + '/ort':>11}" for lo in layouts)
    if have_ort:
        print("buffer/ort, image/ort: speed ratios (onnxruntime's time / ours); above 1x coinfer is faster")
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['layer']:<28} {r['shape']:<28}"
        for lo in layouts:
            line += f" {r[lo + '_ms']:>10.3f} {r[lo + '_gflops']:>8.1f} {100 * r[lo + '_peak']:>5.0f}%"
        if have_ort:
            line += f" {r['ort_ms']:>9.3f} {r['ort_gflops']:>8.1f}" + "".join(
                f" {r[lo + '_vs_ort']:>10.2f}x" for lo in layouts)
        print(line)
    conv = [r for r in rows if r["layer"] in {lay.name for lay in ks.CONV_LAYERS}]
    if conv:
        print("-" * len(head))
        for lo in layouts:
            g = geomean(r[lo + "_gflops"] for r in conv)
            msg = (f"conv geomean {lo}: {g:.1f} GFLOP/s ({100 * g / peak['peak_gflops']:.0f}% of the "
                   f"{peak['isa']} FMA peak) over {len(conv)} layers")
            if have_ort:
                msg += f", {geomean(r[lo + '_vs_ort'] for r in conv):.2f}x onnxruntime (1 thread)"
            print(msg)


def _cmd_run(args) -> int:
    import numpy as np

    from ...hw import SoC
    from ..coexec.strategies import STRATEGIES
    from .coexec import format_table, load_model, run_strategies

    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    _writable("--output", args.output)
    _writable("--trace", args.trace)
    graph = load_model(args.model, input_size=args.input_size)
    strategies = list(STRATEGIES) if args.strategy == "all" else [args.strategy]
    in_name = graph.inputs[0]
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except OSError as e:
            raise ValueError(f"--input: cannot read {args.input!r}: {e.strerror or e}") from None
        except ValueError:  # a pickle, or not an .npy file at all
            raise ValueError(f"--input: {args.input!r} is not a float32 .npy array file") from None
        if not isinstance(x, np.ndarray):
            raise ValueError(f"--input: {args.input!r} is an .npz archive; give one float32 .npy array")
        if x.dtype != np.float32 or x.shape != graph.shape(in_name):
            print(f"coinfer run: --input must hold float32 {graph.shape(in_name)}, got {x.dtype} {x.shape}",
                  file=sys.stderr)
            return 2
    else:
        x = np.random.default_rng(args.seed).standard_normal(graph.shape(in_name), dtype=np.float32)
    from ...hw.profile import profiles

    if args.soc not in profiles():
        print(f"coinfer run: unknown --soc {args.soc!r}; choose from {', '.join(sorted(profiles()))}",
              file=sys.stderr)
        return 2
    # The emulated SoC, with this host's throughput measured once per machine (cached).
    profile = profiles()[args.soc].on_host()
    with SoC.host() as soc:
        results, outputs, _ = run_strategies(graph, soc, strategies, x, repeat=args.repeat,
                                             progress=not args.quiet, trace_path=args.trace, profile=profile,
                                             python_path=not args.native_only)
    if args.output:
        np.save(args.output, np.asarray(outputs[strategies[0]]), allow_pickle=False)
    if args.json:
        print(json.dumps({"model": graph.name, "soc": args.soc,
                          "strategies": [r.as_json() for r in results]}, indent=2))
    else:
        print(format_table(graph.name, args.soc, results))
    return 0


def _cmd_predict(args) -> int:
    from ...hw.profile import profiles
    from . import predict as study

    if args.soc not in profiles():
        print(f"coinfer predict: unknown --soc {args.soc!r}; choose from {', '.join(sorted(profiles()))}",
              file=sys.stderr)
        return 2
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    if args.samples < 10:
        print(f"coinfer predict: --samples must be >= 10, got {args.samples}", file=sys.stderr)
        return 2
    models = [m for m in args.models.split(",") if m] if args.models is not None else list(study.MODELS)
    from .. import zoo

    bad = [m for m in models if m not in zoo.names()]
    if bad:  # before the measuring pass, not after it
        raise ValueError(f"--models: unknown zoo model(s) {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(zoo.names())}")
    doc = study.run(args.samples, soc_name=args.soc, models=models, repeat=args.repeat, progress=not args.quiet,
                    seed=args.seed, refresh=args.refresh, plan_check=not args.no_plan_check)
    if args.json:
        print(json.dumps(study.as_json(doc), indent=2))
    else:
        print(study.format_report(doc))
    return 0


def _cmd_edgent(args) -> int:
    from .edgent import cli_main

    return cli_main(args)


def _cmd_edge_server(args) -> int:
    from ..edge.server import main as serve

    return serve(args)


def _cmd_cloud_vs_device(args) -> int:
    from .cloud_vs_device import cli_main

    return cli_main(args)


def _cmd_simulate(args) -> int:
    from .simulate import cli_main

    return cli_main(args)


def _cmd_sweep(args) -> int:
    from .sweep import cli_main

    return cli_main(args)


class _Parser(argparse.ArgumentParser):
    """argparse with coinfer's error wording: one line naming the subcommand, exit status 2
    (argparse's own prints the whole usage block first).  Subcommand parsers are of this
    class too (argparse makes them with the parent's class)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="coinfer", description="Heterogeneous deep-learning inference with real kernels.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernels", help="time coinfer's kernels on the benchmark layers against onnxruntime (1 thread)")
    k.add_argument("--layout", choices=["buffer", "image", "both"], default="buffer")
    k.add_argument("--layers", default="", help="comma-separated substrings of layer names to run")
    k.add_argument("--min-time", type=float, default=0.2, help="seconds per timing round (default 0.2)")
    k.add_argument("--no-ort", action="store_true", help="skip the onnxruntime peer")
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")
    k.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    k.set_defaults(func=_cmd_kernels)
    r = sub.add_parser("run", help="run a model on the emulated SoC under each strategy, side by side")
    r.add_argument("model", help="zoo name (alexnet, nin, squeezenet, vgg16, resnet18, mobilenet_v1, "
                   "yolov2_tiny) or a .onnx file")
    r.add_argument("--strategy", default="all",
                   choices=["cpu", "gpu", "mulayer", "codl-nochain", "codl", "all"])
    r.add_argument("--soc", default="host", help="the SoC to emulate: host (this machine) or a cost profile "
                   "(snapdragon855, raspberry_pi, desktop_edge, nexus5_cpu, ...; an unknown name lists them); plans "
                   "are made for it and each run is replayed under it")
    r.add_argument("--repeat", type=int, default=5, help="timed runs per strategy (median reported)")
    r.add_argument("--input", help="float32 .npy input (default: seeded random)")
    r.add_argument("--output", help="save the (first) strategy's output as .npy")
    r.add_argument("--trace", help="write a Chrome/Perfetto trace JSON of the (first) strategy's last run")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.add_argument("--input-size", type=int, default=None, help="zoo models: input side (default: the model's)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--native-only", action="store_true",
                   help="skip the runs of each plan on the Python path (py ms, py gap us)")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(func=_cmd_run)
    q = sub.add_parser("predict", help="measure sampled ops, fit the latency predictors (codl, flops, edgent, "
                       "forest) and score them on held-out ops and whole models")
    q.add_argument("--samples", type=int, default=600, help="sampled ops to measure (default 600; cached per host)")
    q.add_argument("--soc", default="host", help="the SoC whose whole-model latency is predicted (default host)")
    q.add_argument("--models", default=None, help="comma-separated zoo models for the whole-model check "
                   "(default alexnet,squeezenet,vgg16,resnet18,mobilenet_v1; empty: none)")
    q.add_argument("--repeat", type=int, default=5, help="timed runs per plan (median reported)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--refresh", action="store_true", help="measure the dataset again instead of reading the cache")
    q.add_argument("--no-plan-check", action="store_true", help="skip the predicted-vs-measured-choice plan check")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.add_argument("--quiet", action="store_true", help="no progress on stderr")
    q.set_defaults(func=_cmd_predict)
    from .edgent import add_parser as add_edgent

    add_edgent(sub)
    sub.choices["edgent"].set_defaults(func=_cmd_edgent)
    from ..edge.server import add_parser as add_edge_server

    add_edge_server(sub)
    sub.choices["edge-server"].set_defaults(func=_cmd_edge_server)
    from .cloud_vs_device import add_parser as add_cloud_vs_device

    add_cloud_vs_device(sub)
    sub.choices["cloud-vs-device"].set_defaults(func=_cmd_cloud_vs_device)
    from .simulate import add_parser as add_simulate
    from .sweep import add_parser as add_sweep

    add_simulate(sub)
    sub.choices["simulate"].set_defaults(func=_cmd_simulate)
    add_sweep(sub)
    sub.choices["sweep"].set_defaults(func=_cmd_sweep)
    for cmd in sub.choices.values():  # every subcommand takes --debug after its name too
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the traceback of an error")
    return p


def _writable(option: str, path) -> None:
    """Raise ValueError naming ``option`` when ``path``'s directory does not exist, before any work."""
    import os

    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{option}: directory {os.path.dirname(os.path.abspath(path))!r} does not exist")


def main(argv=None) -> int:
    """Run one subcommand; its exit status.

    Bad input (a model that does not load, a plan that cannot be made, a run
    that fails) prints one line naming the cause on stderr and returns 2;
    ``--debug`` (before or after the subcommand) lets the traceback through.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse's own message would name only "coinfer", not the subcommand
        parser.exit(2, f"coinfer {args.command}: unrecognized arguments: {' '.join(extra)} "
                       f"(see coinfer {args.command} --help)\n")
    if getattr(args, "debug", False):
        return args.func(args)
    try:
        return args.func(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - the one place errors become an exit status
        # ValueError/TypeError/OSError name a mistake in the input (the message says which);
        # anything else may be a fault in coinfer, whose traceback --debug shows.
        hint = "" if isinstance(e, (ValueError, TypeError, OSError)) else " (run with --debug for the traceback)"
        print(error_line(args.command, e, hint), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
