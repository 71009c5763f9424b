"""Latency-predictor study: codl, flops, edgent and forest side by side with the published figures.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/test_predict.py --benchmark-only

A thin wrapper over :func:`coinfer.graph.studies.predict.run` (what ``coinfer
predict`` prints): ``COINFER_PREDICT_SAMPLES`` sampled ops (default 600;
the dataset is cached per host, so a second run only fits and scores) and the
whole-model check on five zoo models.  The table gives each method's share of
held-out ops within ±10%, RMSPE and model bytes per processor, and its
whole-model accuracy, beside CoDL's published 84-86% and nn-Meter's 99%;
every figure goes to ``benchmark.extra_info``.
"""
import os

from coinfer.graph.studies import predict as study

SAMPLES = int(os.environ.get("COINFER_PREDICT_SAMPLES", str(study.DEFAULT_SAMPLES)))
DOC: dict = {}


def test_predictors(benchmark, study_table):
    study_table("latency predictors vs CoDL (84-86% within ±10%) and nn-Meter (99%)",
                lambda: study.format_report(DOC).splitlines() if DOC else [])
    doc = benchmark.pedantic(lambda: study.run(SAMPLES, progress=False), rounds=1, iterations=1)
    DOC.update(doc)
    for m in doc["methods"]:
        key = f"{m['name']}_{m['processor']}"
        benchmark.extra_info[f"{key}_within_10pct"] = m["within_10pct"]
        benchmark.extra_info[f"{key}_rmspe"] = m["rmspe"]
        benchmark.extra_info[f"{key}_model_bytes"] = m["model_bytes"]
    for name, s in doc["whole_model_scores"].items():
        benchmark.extra_info[f"{name}_models_within_10pct"] = s["within_10pct"]
    benchmark.extra_info["published"] = study.PUBLISHED
    assert {m["name"] for m in doc["methods"]} >= {"codl", "flops", "edgent"}
