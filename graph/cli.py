"""The ``coinfer`` command line."""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_kernels(args) -> int:
    from . import kernel_study as ks
    from .progress import Progress

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
    with Progress(len(layers), "kernels", enabled=not args.quiet) as prog:
        for lay in layers:
            prog.step(f"{lay.name} (compiling on first use)" if not rows else lay.name)
            inputs = ks.make_inputs(lay)
            row = {"layer": lay.name, "shape": lay.describe(), "gflop": lay.flops() / 1e9}
            ort_fn = ks.ort_runner(lay, inputs) if have_ort else None
            for lo in layouts:
                fn = ks.ours_runner(lay, inputs, lo)
                t = ks.time_call(fn, min_time=args.min_time)
                row[f"{lo}_ms"] = t * 1e3
                row[f"{lo}_gflops"] = lay.flops() / t / 1e9
            if ort_fn is not None:
                t = ks.time_call(ort_fn, min_time=args.min_time)
                row["ort_ms"] = t * 1e3
                row["ort_gflops"] = lay.flops() / t / 1e9
                for lo in layouts:
                    row[f"{lo}_vs_ort"] = row[f"{lo}_gflops"] / row["ort_gflops"]
            rows.append(row)
    if args.json:
        print(json.dumps({"layers": rows}, indent=2))
        return 0
    _print_kernel_table(rows, layouts, have_ort, ks)
    return 0


def _print_kernel_table(rows, layouts, have_ort, ks) -> None:
    head = f"{'layer':<26} {'shape':<28}"
    for lo in layouts:
        head += f" {lo + ' ms':>10} {'GFLOP/s':>8}"
    if have_ort:
        head += f" {'ort ms':>9} {'GFLOP/s':>8}" + "".join(f" {lo + '/ort':>11}" for lo in layouts)
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['layer']:<26} {r['shape']:<28}"
        for lo in layouts:
            line += f" {r[lo + '_ms']:>10.3f} {r[lo + '_gflops']:>8.1f}"
        if have_ort:
            line += f" {r['ort_ms']:>9.3f} {r['ort_gflops']:>8.1f}" + "".join(
                f" {r[lo + '_vs_ort']:>10.2f}x" for lo in layouts)
        print(line)
    conv = [r for r in rows if r["layer"] in {lay.name for lay in ks.CONV_LAYERS}]
    if conv:
        print("-" * len(head))
        for lo in layouts:
            g = ks.geomean(r[lo + "_gflops"] for r in conv)
            msg = f"conv geomean {lo}: {g:.1f} GFLOP/s over {len(conv)} layers"
            if have_ort:
                msg += f", {ks.geomean(r[lo + '_vs_ort'] for r in conv):.2f}x onnxruntime (1 thread)"
            print(msg)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coinfer", description="Heterogeneous deep-learning inference with real kernels.")
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernels", help="time coinfer's kernels on the benchmark layers against onnxruntime (1 thread)")
    k.add_argument("--layout", choices=["buffer", "image", "both"], default="buffer")
    k.add_argument("--layers", default="", help="comma-separated substrings of layer names to run")
    k.add_argument("--min-time", type=float, default=0.2, help="seconds per timing round (default 0.2)")
    k.add_argument("--no-ort", action="store_true", help="skip the onnxruntime peer")
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")
    k.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    k.set_defaults(func=_cmd_kernels)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
