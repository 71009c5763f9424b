"""The predictor's noise floor and its error per op family (run through /work/tools/timed).

    python bench/predict_noise.py [N] [--cache]

Measures the same ``N`` sampled ops twice (seed 0, no traced models), and prints:

- the noise floor: the held-out samples' second timing scored as a prediction of
  their first (:func:`coinfer.graph.studies.predict.noise_floor`), per processor
  and mode: no predictor beats that share on this host;
- the ``codl`` predictor fitted on the first timing's training split, scored per
  processor, mode and op family on the held-out split of the first timing and of
  the second.

``--cache``: also trace the zoo's models and store the first timing plus the
traces as this host's cached dataset of ``N`` samples, so ``coinfer predict
--samples N`` reuses it.
"""
from __future__ import annotations

import json
import sys
import time

from coinfer.graph.costs import dataset as D
from coinfer.graph.costs import predictor as P
from coinfer.graph.studies import predict as S
from coinfer.hw import SoC
from coinfer.hw import host as hw_host


def main(argv) -> int:
    n = int(next((a for a in argv if a.isdigit()), S.DEFAULT_SAMPLES))
    t0 = time.perf_counter()
    with SoC.host() as soc:
        first = D.collect(n, soc, seed=0, models=())
        t1 = time.perf_counter()
        second = D.collect(n, soc, seed=0, models=())
        t2 = time.perf_counter()
        traces = D._time_models(soc, D.TRACE_MODELS, 3, True, D._Quiet(soc)) if "--cache" in argv \
            else []
    print(f"measured {n} samples in {t1 - t0:.0f} s and again in {t2 - t1:.0f} s", file=sys.stderr)
    host = hw_host.host_id()
    for name, d in (("first", first), ("second", second)):
        d.save(hw_host.cache_dir() / f"noise-{name}-{host.isa}-n{n}.csv")
    if traces:
        full = D.Dataset(first.rows + traces, {**first.meta, "models": ",".join(D.TRACE_MODELS)})
        path = full.save(hw_host.cache_path("dataset", host, ".csv", f"v{D.VERSION}-n{n}-s0-r7"))
        print(f"cached dataset with traces: {path}", file=sys.stderr)
    floor = S.noise_floor(first, second)
    train, test = first.split(0.3, seed=0)
    _, test2 = second.split(0.3, seed=0)
    pred = P.fit("codl", train)
    doc = {"isa": host.isa, "samples": n, "noise_floor": floor,
           "codl_first": S.errors_by_family(pred, test), "codl_second": S.errors_by_family(pred, test2)}
    print("noise floor (second timing vs first, held-out samples):")
    for r in floor:
        print(f"  {r['processor']:<4} {r['mode']:<11} {100 * r['within_10pct']:5.1f}% within ±10%  "
              f"RMSPE {r['rmspe']:.3f}  n={r['n']}")
    for key in ("codl_first", "codl_second"):
        print(f"codl per family ({key.split('_')[1]} timing of the held-out samples):")
        for r in doc[key]:
            print(f"  {r['processor']:<4} {r['mode']:<11} {r['family']:<11} {100 * r['within_10pct']:5.1f}%  "
                  f"RMSPE {r['rmspe']:.3f}  n={r['n']}")
    print(json.dumps(doc), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
