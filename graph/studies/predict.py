"""The latency-predictor study (``coinfer predict``, ``bench/test_predict.py``).

1. The dataset: ``samples`` sampled ops and the sharing operations measured on
   this host (:mod:`coinfer.graph.costs.dataset`; cached per host, so a later
   run reuses it), split 70/30 by op instance.
2. Every method (``codl``, ``flops``, ``edgent``, ``forest``;
   :mod:`coinfer.graph.costs.predictor`) fitted on the training split and
   scored on the held-out split per processor: the share within ±10% and the
   RMSPE (nn-Meter's metrics), and the size of its JSON model.
3. Whole models: for each model the ``cpu``, ``gpu`` and ``codl`` plans
   (``codl`` planned from the ``codl`` predictor alone, no measuring pass)
   run on this host; each method predicts each plan's latency (compute,
   sharing and dispatch) and compares it with the measured median.  On the
   host the prediction prices the plan's compiled program task by task
   (:func:`coinfer.graph.coexec.timeline.predict`), with the in-model
   correction and dispatch gaps fitted on the traced runs of the *other*
   models (leave one model out); with ``soc`` other than ``host`` the chain
   cost model (:mod:`coinfer.graph.coexec.costmodel`) prices it under the
   profile, against the median emulated latency (the replay).  The predictors
   price the host at its quiet speed (the dataset's samples are brought to it by
   the speed probe); a shared host runs slower while its neighbours are busy,
   so on the host each prediction is scaled by the speed probe's slowdown timed
   just before and after the model's runs (``predicted_quiet_ms``: unscaled).
   ``queued_share`` is the share of the model's runs during which the processor
   threads were ready but waited on a run queue: a co-executed plan needs both
   cores, and on a shared 2-core host its measured median swings with that.
4. The plan check: the predictor's ``codl`` plan against the plan ``codl``
   chooses by measuring its close candidates, both timed interleaved.

Published peers (REFERENCES.md): CoDL's predictor 84-86% within ±10% on
Snapdragon SoCs, nn-Meter 99.0% (CPU) and 99.1% (GPU); μLayer's FLOPs-linear
predictor about 7-10%.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ...hw import host as hw_host
from ...hw.profile import get_profile
from ..costs import dataset as ds_mod
from ..costs import predictor as P

MODELS = ("alexnet", "squeezenet", "vgg16", "resnet18", "mobilenet_v1")
PLAN_STRATEGIES = ("cpu", "gpu", "codl")
#: Published accuracy (share within ±10%) of the peers, for the side-by-side table.
PUBLISHED = {"CoDL (MobiSys 2022)": "84-86%", "nn-Meter (MobiSys 2021)": "99.0% CPU, 99.1% GPU",
             "muLayer FLOPs-linear (per CoDL)": "7-10%"}
DEFAULT_SAMPLES = 600
#: Speed probes per processor thread before the first model (they find its quiet speed).
PROBE_WARMUP = 20
#: Speed probes per thread whose median gives the slowdown before or after a model's runs.
PROBE_TIMES = 3


def _methods() -> tuple:
    try:
        import sklearn  # noqa: F401

        return P.METHODS
    except ImportError:
        return tuple(m for m in P.METHODS if m != "forest")


def fit_all(dataset, *, methods=None, seed: int = 0) -> tuple[dict, list]:
    """(predictors fitted on the training split by method, score rows on the held-out split)."""
    train, test = dataset.split(0.3, seed=seed)
    preds, rows = {}, []
    for m in methods or _methods():
        p = P.fit(m, train, seed=seed)
        preds[m] = p
        for proc in P.PROCESSORS:
            s = P.score(P.op_errors(p, test, proc, "alone"))
            c = P.score(P.op_errors(p, test, proc, "concurrent"))
            rows.append({"name": m, "processor": proc, "within_10pct": s["within_10pct"], "rmspe": s["rmspe"],
                         "model_bytes": p.model_bytes(proc), "n": s["n"],
                         "concurrent_within_10pct": c["within_10pct"], "concurrent_rmspe": c["rmspe"]})
    return preds, rows


def plan_seconds(view, plan, costs) -> float:
    """A plan's predicted seconds under ``costs``: a buffer-only one-processor plan is its
    ops' CPU compute; any other goes through the chain cost model."""
    from ..coexec import chains as chain_search

    if plan.shared_layout == "buffer" and all(c.ratio == 0.0 and not c.split for c in plan.chains):
        return sum(costs.compute(op, "cpu", (0, op.out_rows, 0, op.out_channels)) for op in view.ops)
    return chain_search.plan_cost(view, plan.chains, costs)


def whole_models(preds: dict, *, models=MODELS, soc_name: str = "host", repeat: int = 5, progress: bool = True,
                 plan_check: bool = True, dataset=None) -> tuple[list, list]:
    """(model rows, plan-check rows): see the module docstring, items 3 and 4.  With
    ``dataset`` (its traced runs), each model is predicted by predictors whose runtime
    terms leave that model's traces out."""
    from ...hw import SoC
    from ..coexec import timeline
    from ..coexec.lower import prepare
    from ..coexec.view import view_of
    from ..coexec.strategies import measure_plans, plan_codl, sample_input
    from ..costs.emulated import EmulatedCosts
    from .coexec import load_model, run_strategies

    from ..costs.measure import SpeedProbe, waited

    profile = get_profile(soc_name).on_host()
    rows, checks = [], []
    probe = SpeedProbe(ds_mod.PROBE_CALLS)
    with SoC.host() as soc:
        def slowdown() -> float:
            """Both threads' median of PROBE_TIMES probes over the fastest probe seen there (as
            the dataset brings its samples to the quiet speed)."""
            def one():
                return float(np.median([probe.slowdown(probe()) for _ in range(PROBE_TIMES)]))

            return sum(soc[p].submit(one, op="probe").result(timeout=60)[0] for p in ("cpu", "gpu")) / 2

        for _ in range(PROBE_WARMUP):
            slowdown()
        for name in models:
            if progress:
                print(f"[predict] {name}: plan from the codl predictor, run {', '.join(PLAN_STRATEGIES)}",
                      file=sys.stderr)
            g = load_model(name)
            own = {m: (p.refit_runtime(dataset, exclude=(name,)) if dataset is not None else p)
                   for m, p in preds.items()}
            host_costs = {m: P.PredictedCosts(p) for m, p in own.items()}
            costs = {m: (c if profile.name == "host" else EmulatedCosts(c, profile)) for m, c in host_costs.items()}
            x = sample_input(g)
            before = slowdown()
            w0 = {p: soc[p].submit(waited, op="waited").result(timeout=60)[0] for p in ("cpu", "gpu")}
            t0 = time.perf_counter()
            results, _, _ = run_strategies(g, soc, list(PLAN_STRATEGIES), x, repeat=repeat, progress=False,
                                           costs=host_costs["codl"], verify=False, profile=profile)
            span = time.perf_counter() - t0
            # Seconds the processor threads were ready to run but waited on a run queue, as a
            # share of the model's runs (planning included): other work taking the cores.
            queued = sum(soc[p].submit(waited, op="waited").result(timeout=60)[0] - w0[p]
                         for p in ("cpu", "gpu")) / (2 * span)
            speed = 0.5 * (before + slowdown()) if profile.name == "host" else 1.0
            view = view_of(g)
            for r in results:
                measured = r.median_ms if profile.name == "host" else r.emulated_ms
                for m, c in costs.items():
                    t = (timeline.predict(g, r.plan, c, view=view).total_s if profile.name == "host"
                         else plan_seconds(view, r.plan, c))
                    rows.append({"model": name, "strategy": r.name, "method": m, "predicted_ms": 1e3 * t * speed,
                                 "predicted_quiet_ms": 1e3 * t, "slowdown": speed, "queued_share": queued,
                                 "measured_ms": measured})
            if plan_check and profile.name == "host":
                prepared = prepare(g)
                chosen = plan_codl(g, host_costs["codl"], verify_on=soc, prepared=prepared, x=x)
                ours = next(r.plan for r in results if r.name == "codl")
                t_ours, t_chosen = measure_plans(g, soc, [ours, chosen], x, prepared=prepared)
                checks.append({"model": name, "predicted_plan_ms": 1e3 * t_ours, "measured_choice_ms": 1e3 * t_chosen,
                               "ratio": t_ours / t_chosen, "measured_choice": chosen.notes.get("chosen")})
    return rows, checks


def run(samples: int = DEFAULT_SAMPLES, *, soc_name: str = "host", models=MODELS, repeat: int = 5,
        progress: bool = True, seed: int = 0, refresh: bool = False, plan_check: bool = True) -> dict:
    """The whole study; returns the ``coinfer predict --json`` document (plus details)."""
    get_profile(soc_name)  # an unknown name fails before any measuring
    # Traced runs feed the whole-model terms (in-model correction, dispatch gaps): none without models.
    data, path, measured_now = ds_mod.cached(samples, seed=seed, progress=progress, refresh=refresh,
                                             models=ds_mod.TRACE_MODELS if models else ())
    preds, methods = fit_all(data, seed=seed)
    for m, p in preds.items():
        p.save(hw_host.cache_path(f"predictor-{m}", hw_host.host_id(), ".json", f"n{samples}-s{seed}"))
    model_rows, checks = whole_models(preds, models=models, soc_name=soc_name, repeat=repeat, progress=progress,
                                      plan_check=plan_check, dataset=data) if models else ([], [])
    by_method = {}
    for r in model_rows:
        e = (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
        by_method.setdefault(r["method"], []).append(e)
    return {"soc": soc_name, "isa": data.meta.get("isa"), "host": hw_host.host_id().as_json(),
            "dataset": {"path": str(path), "measured_now": measured_now, "samples": samples,
                        "rows": len(data.rows)},
            "methods": methods,
            "models": [r for r in model_rows if r["method"] == "codl"],
            "models_by_method": model_rows,
            "whole_model_scores": {m: P.score(e) for m, e in by_method.items()},
            "plan_check": checks}


def noise_floor(first, second, *, seed: int = 0) -> list:
    """The ceiling no predictor beats on this host: the held-out op rows of ``first`` (its
    :meth:`~coinfer.graph.costs.dataset.Dataset.split` with ``seed``) timed again in
    ``second`` (the same samples, e.g. the same ``seed`` measured twice), scored as a
    prediction of the first timing.  Rows: {processor, mode, within_10pct, rmspe, n}."""
    _, test = first.split(0.3, seed=seed)
    again = {(ds_mod._instance_key(r), r["processor"], r["mode"]): r[P.TARGET] for r in second.ops()}
    out = []
    for proc in P.PROCESSORS:
        for mode in P.MODES:
            e = [(again[k] - r[P.TARGET]) / r[P.TARGET] for r in test.ops(proc, mode)
                 for k in [(ds_mod._instance_key(r), proc, mode)] if k in again and r[P.TARGET] > 0]
            out.append({"processor": proc, "mode": mode, **P.score(e)})
    return out


def errors_by_family(pred, test) -> list:
    """``pred``'s held-out op errors per processor, mode and feature family:
    rows {processor, mode, family, within_10pct, rmspe, n}."""
    from ..costs import features as F

    out = []
    for proc in P.PROCESSORS:
        for mode in P.MODES:
            fams: dict = {}
            for r in test.ops(proc, mode):
                t = pred.op_seconds(r, P._region(r), proc, mode == "concurrent")
                fams.setdefault(F.family(r), []).append((t - r[P.TARGET]) / r[P.TARGET])
            out += [{"processor": proc, "mode": mode, "family": f, **P.score(e)} for f, e in sorted(fams.items())]
    return out


def format_report(doc: dict) -> str:
    """The accuracy table (method x processor: ops, whole models), the peers' figures,
    the whole-model rows of the codl predictor and the plan check."""
    lines = [f"latency predictors on {doc['host']['isa']} ({doc['host']['cpu']}, {doc['host']['clock_ghz']:.2f} GHz),"
             f" soc {doc['soc']}; dataset {doc['dataset']['samples']} sampled ops "
             f"({'measured now' if doc['dataset']['measured_now'] else 'cached'}: {doc['dataset']['path']})"]
    head = (f"{'method':<8} {'processor':<9} {'ops ±10%':>9} {'RMSPE':>7} {'conc. ±10%':>11} {'model bytes':>12} "
            f"{'models ±10%':>12} {'models RMSPE':>13}")
    lines += [head, "-" * len(head)]
    for r in doc["methods"]:
        w = doc["whole_model_scores"].get(r["name"], {})
        lines.append(f"{r['name']:<8} {r['processor']:<9} {100 * r['within_10pct']:>8.1f}% {r['rmspe']:>7.3f} "
                     f"{100 * r['concurrent_within_10pct']:>10.1f}% {r['model_bytes']:>12d} "
                     f"{100 * w.get('within_10pct', float('nan')):>11.1f}% {w.get('rmspe', float('nan')):>13.3f}")
    lines.append("published: " + "; ".join(f"{k} {v}" for k, v in PUBLISHED.items()))
    lines.append("ops: held-out sampled ops alone (conc.: with the other processor busy); models: every "
                 "(model, strategy) plan of both processors together")
    if doc["models"]:
        lines.append(f"{'model':<13} {'strategy':<9} {'predicted ms':>13} {'measured ms':>12} {'error':>7} "
                     f"{'slowdown':>9} {'quiet ms':>9} {'queued':>7}")
        for r in doc["models"]:
            e = (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
            lines.append(f"{r['model']:<13} {r['strategy']:<9} {r['predicted_ms']:>13.2f} {r['measured_ms']:>12.2f} "
                         f"{100 * e:>+6.1f}% {r.get('slowdown', 1.0):>9.2f} {r.get('predicted_quiet_ms', 0.0):>9.2f} "
                         f"{100 * r.get('queued_share', 0.0):>6.1f}%")
    for c in doc["plan_check"]:
        lines.append(f"plan check {c['model']}: codl from the predictor {c['predicted_plan_ms']:.2f} ms vs the "
                     f"measured choice ({c['measured_choice']}) {c['measured_choice_ms']:.2f} ms: "
                     f"{c['ratio']:.3f}x")
    return "\n".join(lines)


def as_json(doc: dict) -> dict:
    """The issue's JSON shape: soc, isa, methods[{name, processor, within_10pct, rmspe,
    model_bytes}], models[{model, strategy, predicted_ms, measured_ms}] (and the details)."""
    out = dict(doc)
    out["models"] = [{k: r[k] for k in ("model", "strategy", "predicted_ms", "measured_ms", "predicted_quiet_ms",
                                            "slowdown", "queued_share") if k in r} for r in doc["models"]]
    return out
