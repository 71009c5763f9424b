"""Latency predictors fitted on the dataset, saved as JSON, and a cost source built on them.

:func:`fit` makes a :class:`Predictor` of one method (``codl``, ``flops``,
``edgent``, ``forest``; features in :mod:`.features`) for both processors of
the host from a :class:`~.dataset.Dataset`: per processor, per mode (alone,
concurrent) and per feature family one model.

- The linear methods (``codl``, ``flops``, ``edgent``) fit non-negative
  coefficients by least squares on the *relative* error (each sample's
  equation divided by its measured time), as the ±10% metric counts error.
- ``forest`` is nn-Meter's black box (MobiSys 2021): one scikit-learn random
  forest per family on log seconds, exported to JSON as its trees' arrays and
  evaluated without scikit-learn (fitting needs ``pip install 'coinfer[predict]'``).

Sharing operations are fitted from the same dataset, linear in bytes
(transforms both ways, map, unmap), plus the sync and the per-task dispatch
seconds.  :meth:`Predictor.to_json` holds everything; ``model_bytes`` is the
size of one processor's part of that JSON.

:class:`PredictedCosts` is a :class:`~.source.CostSource` over a predictor:
``compute(op, proc, region, concurrent)`` for ``cpu`` (buffers), ``gpu``
(images) and ``gpu_buffer`` (the CPU's buffer kernels on the GPU's thread:
on the host, the same kernels on another core), each plus the dispatch of a
task.  Measured times refine it online (:meth:`PredictedCosts.observe`): an
op's later predictions are scaled by the running ratio of measured to
predicted seconds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..ops import ADD, CONCAT, CONV, ELEMENTWISE, FAMILY_DEPTHWISE, FAMILY_ELTWISE, FAMILY_FC, GLOBALAVGPOOL, LRN, POOLS
from . import features as F
from .sampling import describe, dims

METHODS = tuple(F.METHODS)
PROCESSORS = {"cpu": "buffer", "gpu": "image"}
MODES = ("alone", "concurrent")
SHARING = ("transform_to_buffer", "transform_to_image", "map", "unmap")
#: The issue's accuracy bound: |predicted - measured| / measured <= 10%.
BOUND = 0.10
#: The measured time a predictor learns and is scored on: the fastest step of the native
#: timings (dataset v4: each op run back to back in C, in three rounds seconds apart).  The
#: same 150 samples timed twice on the shared 2-core test host agree within ±10% more often
#: for it than for the median (cpu / gpu alone 89 / 81% vs 84 / 79%, concurrent 79 / 76% vs
#: 67 / 68%), and codl fitted on it scores higher (300 samples, AVX-512, 4 splits).  The
#: in-model correction (:func:`fit_inmodel`) maps it to a kernel's median time inside a model run.
TARGET = "min_seconds"


# ---------------------------------------------------------------------------
# Fitting


def nnls_relative(x: np.ndarray, y: np.ndarray, iters: int = 50) -> np.ndarray:
    """Coefficients b >= 0 minimising sum(((x @ b) - y) / y)^2 (an active-set loop of
    least-squares solves: features whose coefficient goes negative are dropped)."""
    a = x / y[:, None]
    t = np.ones_like(y)
    top = np.abs(a).max(axis=0)
    scale = np.where(top > 0, top, 1.0)
    a = a / scale
    # A feature that is zero on every sample gets no coefficient (a solver's round-off on an
    # all-zero column, divided by a tiny scale, once gave 1e14 s per float).
    active = top > 0
    b = np.zeros(x.shape[1])
    for _ in range(iters):
        if not active.any():
            break
        sol, *_ = np.linalg.lstsq(a[:, active], t, rcond=None)
        if (sol >= 0).all():
            b[:] = 0
            b[active] = sol
            break
        idx = np.flatnonzero(active)
        active[idx[np.argmin(sol)]] = False
    return b / scale


class LinearModel:
    """``t = sum(coef[f] * feature[f])`` over named features."""

    def __init__(self, names, coef):
        self.names, self.coef = list(names), [float(c) for c in coef]

    @classmethod
    def fit(cls, feats: list, ys: np.ndarray) -> "LinearModel":
        names = sorted({k for f in feats for k in f})
        x = np.array([[f.get(k, 0.0) for k in names] for f in feats], np.float64)
        return cls(names, nnls_relative(x, ys))

    def predict(self, f: dict) -> float:
        return sum(c * f.get(k, 0.0) for k, c in zip(self.names, self.coef))

    def to_json(self) -> dict:
        return {"kind": "linear", "features": self.names, "coef": [float(f"{c:.6g}") for c in self.coef]}


class ForestModel:
    """A random forest on log seconds, as arrays per tree (evaluated without scikit-learn)."""

    def __init__(self, names, trees):
        self.names, self.trees = list(names), trees

    @classmethod
    def fit(cls, feats: list, ys: np.ndarray, seed: int = 0) -> "ForestModel":
        try:
            from sklearn.ensemble import RandomForestRegressor
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the forest predictor needs scikit-learn: pip install 'coinfer[predict]'") from e
        names = sorted({k for f in feats for k in f})
        x = np.array([[f.get(k, 0.0) for k in names] for f in feats], np.float64)
        rf = RandomForestRegressor(n_estimators=30, min_samples_leaf=2, max_features=0.6, random_state=seed)
        rf.fit(x, np.log(ys))
        trees = []
        for est in rf.estimators_:
            t = est.tree_
            trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                          "feature": t.feature.tolist(),
                          "threshold": [float(f"{v:.7g}") for v in t.threshold],
                          "value": [float(f"{v:.7g}") for v in t.value[:, 0, 0]]})
        return cls(names, trees)

    def predict(self, f: dict) -> float:
        x = [f.get(k, 0.0) for k in self.names]
        s = 0.0
        for t in self.trees:
            i = 0
            left, right, feat, thr = t["left"], t["right"], t["feature"], t["threshold"]
            while left[i] != -1:
                i = left[i] if x[feat[i]] <= thr[i] else right[i]
            s += t["value"][i]
        return math.exp(s / len(self.trees))

    def to_json(self) -> dict:
        return {"kind": "forest", "features": self.names, "trees": self.trees}


def _model_from_json(doc: dict):
    if doc["kind"] == "linear":
        return LinearModel(doc["features"], doc["coef"])
    return ForestModel(doc["features"], doc["trees"])


def fit_sharing(dataset) -> dict:
    """{kind: (fixed s, s per byte)} for transforms, map and unmap; ``sync`` and
    ``dispatch_cpu``/``dispatch_gpu`` seconds."""
    out = {}
    for kind in SHARING:
        rows = dataset.sharing(kind)
        if not rows:
            out[kind] = [0.0, 0.0]
            continue
        x = np.array([[1.0, r["bytes"]] for r in rows])
        y = np.array([r["seconds"] for r in rows])
        b = nnls_relative(x, y)
        out[kind] = [float(b[0]), float(b[1])]
    sync = dataset.sharing("sync")
    out["sync"] = float(np.median([r["seconds"] for r in sync])) if sync else 0.0
    for p in PROCESSORS:
        d = [r["seconds"] for r in dataset.sharing("dispatch") if r["processor"] == p]
        out[f"dispatch_{p}"] = float(np.median(d)) if d else 0.0
    return out


def _region(r: dict) -> tuple:
    return (r["r0"], r["r1"], r["c0"], r["c1"])


def _traced(rows, exclude) -> list:
    """Traced rows not of the models in ``exclude`` (a gap row's model is ``model/plan``)."""
    return [r for r in rows if (r.get("model") or "").split("/")[0] not in exclude]


def fit_gaps(dataset, exclude=(), runtime: str = "native") -> tuple[dict, list, list]:
    """(gaps, main_wake, host_copy) from the traced runs' ``gap`` rows (see
    :mod:`coinfer.graph.coexec.timeline`): the median gap of each dispatch path,
    ``main_wake`` as (fixed s, s per task) and the host copies as (fixed s, s per byte).

    Only the runs dispatched by ``runtime`` (``native``: the executor's default, a native
    program whose gaps are about 1 µs; ``python``: the interpreted path, tens of µs) count,
    when the dataset has any; the gaps of one path say nothing of the other's."""
    from ..coexec.timeline import DEFAULT_GAPS, DEFAULT_HOST_COPY

    if runtime not in ("native", "python"):
        raise ValueError(f"fit_gaps: runtime must be 'native' or 'python', got {runtime!r}")
    rows = _traced(dataset.sharing("gap"), exclude)
    if any(r.get("split") == runtime for r in rows):
        rows = [r for r in rows if r.get("split") == runtime]
    gaps = dict(DEFAULT_GAPS)
    for path in DEFAULT_GAPS:
        v = [r["seconds"] for r in rows if r["mode"] == path]
        if v:
            gaps[path] = float(np.median(v))
    wake = [r for r in rows if r["mode"] == "main_wake"]
    main_wake = [gaps["main_wake"], 0.0]
    if len({r["bytes"] for r in wake}) > 1:
        b = nnls_relative(np.array([[1.0, r["bytes"]] for r in wake]), np.array([r["seconds"] for r in wake]))
        main_wake = [float(b[0]), float(b[1])]
    copies = [r for r in rows if r["mode"] in ("host_in", "host_out") and r["seconds"] > 0]
    host_copy = list(DEFAULT_HOST_COPY)
    if len({r["bytes"] for r in copies}) > 1:
        b = nnls_relative(np.array([[1.0, r["bytes"]] for r in copies]), np.array([r["seconds"] for r in copies]))
        host_copy = [float(b[0]), float(b[1])]
    return gaps, main_wake, host_copy


#: Ops whose band of output rows reads the same share of the input rows (a 4-D output) ...
_ROW_SHARE = frozenset({CONV, LRN, CONCAT}) | POOLS | ELEMENTWISE
#: ... and those (with depthwise convs) whose band of output channels reads the same share
#: of the input channels; the others read every input channel.
_CHANNEL_SHARE = frozenset({GLOBALAVGPOOL, LRN, CONCAT}) | POOLS | ELEMENTWISE


def io_bytes(desc: dict, region) -> tuple[float, float]:
    """(activation bytes read and written, weight bytes read) by ``region`` of the op ``desc``:
    a height band reads its share of the input rows, a channel band all of them (but for the
    ops of ``_CHANNEL_SHARE`` and depthwise convs, which read their share)."""
    r0, r1, c0, c1 = region
    n = desc["n"]
    rows = max(0, r1 - r0) / max(1, desc["oh"])
    chans = max(0, c1 - c0)
    out = n * chans * max(0, r1 - r0) * desc["ow"] if desc["oh"] * desc["ow"] > 1 else n * chans
    ins = n * desc["c"] * desc["h"] * desc["w"] * max(1, desc["inputs"] if desc["type"] == ADD else 1)
    if desc["type"] in _ROW_SHARE and desc["oh"] > 1:
        ins *= rows
    if F.family(desc) == FAMILY_DEPTHWISE or desc["type"] in _CHANNEL_SHARE:
        ins *= chans / max(1, desc["oc"])
    weight = dims(desc).weight_shape
    w = chans * math.prod(weight[1:]) if weight else 0.0
    return 4.0 * (ins + out), 4.0 * w


#: Features of the in-model correction: the kernel alone (warm, predicted), the bytes it
#: moves and the weight bytes it reads, and a constant.
INMODEL_FEATURES = ("pred", "io", "w", "one")


class Predictor:
    """One method's models for both processors (see the module docstring)."""

    def __init__(self, method: str, isa: str, models: dict, sharing: dict, meta: dict | None = None, *,
                 inmodel: dict | None = None, gaps: dict | None = None, main_wake=None, host_copy=None):
        if method not in METHODS:
            raise ValueError(f"Predictor: method must be one of {METHODS}, got {method!r}")
        self.method, self.isa = method, isa
        self.models = models  # processor -> mode -> family -> model
        self.sharing = sharing
        self.meta = dict(meta or {})
        self.inmodel = inmodel or {}  # processor -> family -> LinearModel over INMODEL_FEATURES
        self.gaps = dict(gaps or {})  # dispatch path -> seconds (coinfer.graph.coexec.timeline)
        self.main_wake = list(main_wake) if main_wake is not None else None
        self.host_copy = list(host_copy) if host_copy is not None else None
        self._feat = F.METHODS[method]

    # -- prediction -----------------------------------------------------------
    def features(self, desc: dict, region, layout: str) -> tuple[str, dict]:
        return self._feat(desc, region, layout, self.isa)

    def op_seconds(self, desc: dict, region, processor: str, concurrent: bool = False) -> float:
        """Predicted seconds of ``region`` of the op ``desc`` on ``processor`` ('cpu' on
        buffers, 'gpu' on images), alone or with the other processor busy, as the
        dataset times it: called in a loop, its data warm."""
        fam, f = self.features(desc, region, PROCESSORS[processor])
        by_mode = self.models[processor]
        fams = by_mode["concurrent" if concurrent and by_mode.get("concurrent") else "alone"]
        m = fams.get(fam) or fams.get(FAMILY_ELTWISE) or next(iter(fams.values()))
        return max(0.0, m.predict(f))

    def inmodel_features(self, desc: dict, region, processor: str, concurrent: bool = False) -> tuple[str, dict]:
        io, w = io_bytes(desc, region)
        return F.family(desc), {"pred": self.op_seconds(desc, region, processor, concurrent), "io": io, "w": w,
                                "one": 1.0}

    def model_seconds(self, desc: dict, region, processor: str, concurrent: bool = False) -> float:
        """Predicted seconds of the kernel call as it runs inside a model (the in-model
        correction fitted on traced runs, when there is one for the op's family)."""
        fam, f = self.inmodel_features(desc, region, processor, concurrent)
        m = self.inmodel.get(processor, {}).get(fam)
        return f["pred"] if m is None else max(0.0, m.predict(f))

    # -- persistence ------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": "coinfer-predictor", "version": 2, "method": self.method, "isa": self.isa,
                "meta": self.meta, "sharing": self.sharing, "gaps": self.gaps, "main_wake": self.main_wake,
                "host_copy": self.host_copy,
                "models": {p: {mode: {fam: m.to_json() for fam, m in fams.items()} for mode, fams in by.items()}
                           for p, by in self.models.items()},
                "inmodel": {p: {fam: m.to_json() for fam, m in fams.items()} for p, fams in self.inmodel.items()}}

    @classmethod
    def from_json(cls, doc: dict) -> "Predictor":
        if doc.get("format") != "coinfer-predictor" or doc.get("version") != 2:
            raise ValueError("Predictor.from_json: not a coinfer predictor (format/version)")
        models = {p: {mode: {fam: _model_from_json(m) for fam, m in fams.items()} for mode, fams in by.items()}
                  for p, by in doc["models"].items()}
        inmodel = {p: {fam: _model_from_json(m) for fam, m in fams.items()} for p, fams in doc["inmodel"].items()}
        return cls(doc["method"], doc["isa"], models, doc["sharing"], doc.get("meta"), inmodel=inmodel,
                   gaps=doc.get("gaps"), main_wake=doc.get("main_wake"), host_copy=doc.get("host_copy"))

    def save(self, path) -> int:
        """Write the JSON; returns its size in bytes."""
        text = json.dumps(self.to_json(), separators=(",", ":"))
        Path(path).write_text(text)
        return len(text.encode())

    @classmethod
    def load(cls, path) -> "Predictor":
        return cls.from_json(json.loads(Path(path).read_text()))

    def model_bytes(self, processor: str) -> int:
        """Bytes of the compact JSON of ``processor``'s models."""
        doc = {mode: {fam: m.to_json() for fam, m in fams.items()} for mode, fams in self.models[processor].items()}
        doc["inmodel"] = {fam: m.to_json() for fam, m in self.inmodel.get(processor, {}).items()}
        return len(json.dumps(doc, separators=(",", ":")).encode())

    def refit_runtime(self, dataset, exclude=()) -> "Predictor":
        """A copy whose in-model correction and dispatch terms are fitted on ``dataset``'s
        traced runs, leaving out the models named in ``exclude`` (to predict one of them
        from the others)."""
        gaps, wake, copy = fit_gaps(dataset, exclude)
        return Predictor(self.method, self.isa, self.models, self.sharing, self.meta,
                         inmodel=fit_inmodel(self, dataset, exclude), gaps=gaps, main_wake=wake, host_copy=copy)


def fit(method: str, dataset, *, seed: int = 0, exclude_models=()) -> Predictor:
    """Fit ``method`` on every op row of ``dataset`` (split it first to score on held-out rows),
    and its in-model correction and dispatch terms on the traced runs of every model
    but ``exclude_models``."""
    if method not in METHODS:
        raise ValueError(f"fit: method must be one of {METHODS}, got {method!r}")
    isa = dataset.meta.get("isa")
    feat = F.METHODS[method]
    models: dict = {}
    for proc, lay in PROCESSORS.items():
        models[proc] = {}
        for mode in MODES:
            groups: dict = {}
            for r in dataset.ops(proc, mode):
                if r[TARGET] <= 0:
                    continue
                fam, f = feat(r, _region(r), lay, isa)
                groups.setdefault(fam, ([], []))
                groups[fam][0].append(f)
                groups[fam][1].append(r[TARGET])
            fams = {}
            for fam, (fs, ys) in sorted(groups.items()):
                ys = np.array(ys)
                fams[fam] = ForestModel.fit(fs, ys, seed) if method == "forest" else LinearModel.fit(fs, ys)
            if fams:
                models[proc][mode] = fams
    pred = Predictor(method, isa, models, fit_sharing(dataset), {"trained_on": dataset.meta})
    return pred.refit_runtime(dataset, exclude_models)


def fit_inmodel(pred: Predictor, dataset, exclude=()) -> dict:
    """{processor: {family: LinearModel}}: the kernel's time inside a model run (``inmodel``
    rows of the traced runs, but those of ``exclude``) in :data:`INMODEL_FEATURES`.

    FC streams weights that a model run leaves cold, beyond what the warm timings saw: its
    terms (the prediction, bytes moved, weight bytes, a constant) are fitted on the relative
    error.  Every other family is the prediction times the median ratio of in-model to
    predicted seconds plus the median remainder (at least 0): one model's odd kernels (e.g.
    a large conv the op model extrapolates to) then move the correction of the others little,
    where a least-squares coefficient followed them (gpu conv 0.77 with vgg16's traces in,
    about 1 for every other model)."""
    out: dict = {}
    for r in _traced(dataset.sharing("inmodel"), exclude):
        if r["seconds"] <= 0 or r["processor"] not in PROCESSORS or r["layout"] != PROCESSORS[r["processor"]]:
            continue
        fam, f = pred.inmodel_features(r, _region(r), r["processor"], r["mode"] == "concurrent")
        out.setdefault(r["processor"], {}).setdefault(fam, ([], []))
        out[r["processor"]][fam][0].append(f)
        out[r["processor"]][fam][1].append(r["seconds"])
    models: dict = {}
    for p, fams in out.items():
        for fam, (fs, ys) in fams.items():
            if len(ys) < len(INMODEL_FEATURES):
                continue
            ys = np.array(ys)
            pr = np.array([f["pred"] for f in fs])
            if fam == FAMILY_FC or not (pr > 0).any():
                coef = nnls_relative(np.array([[f[k] for k in INMODEL_FEATURES] for f in fs]), ys)
            else:
                k = float(np.median(ys[pr > 0] / pr[pr > 0]))
                coef = [k if n == "pred" else 0.0 for n in INMODEL_FEATURES]
                coef[INMODEL_FEATURES.index("one")] = max(0.0, float(np.median(ys - k * pr)))
            models.setdefault(p, {})[fam] = LinearModel(INMODEL_FEATURES, coef)
    return models


# ---------------------------------------------------------------------------
# Scoring


def score(errors) -> dict:
    """``within_10pct`` (share of |error| <= 10%), ``rmspe`` (root mean square of the
    relative errors) and ``n`` for relative errors (predicted - measured) / measured."""
    e = np.asarray(list(errors), np.float64)
    if e.size == 0:
        return {"within_10pct": float("nan"), "rmspe": float("nan"), "n": 0}
    return {"within_10pct": float(np.mean(np.abs(e) <= BOUND + 1e-12)), "rmspe": float(np.sqrt(np.mean(e * e))),
            "n": int(e.size)}


def op_errors(pred: Predictor, dataset, processor: str, mode: str = "alone") -> list:
    """Relative errors of ``pred`` on ``dataset``'s op rows of one processor and mode."""
    out = []
    for r in dataset.ops(processor, mode):
        t = pred.op_seconds(r, _region(r), processor, mode == "concurrent")
        out.append((t - r[TARGET]) / r[TARGET])
    return out


# ---------------------------------------------------------------------------
# The cost source


class PredictedCosts:
    """A :class:`~.source.CostSource` from a :class:`Predictor` (see the module docstring).

    ``PredictedCosts(predictor, view=None)`` (``view``: the graph's ops, for
    :meth:`throughput`); ``observe(op, proc, region, seconds)`` refines
    later predictions of that op on that processor from a measured time.

    Kernels are priced as they run inside a model (:meth:`Predictor.model_seconds`;
    ``in_model=False``: as timed alone, warm).  For the timeline of a whole run
    (:func:`coinfer.graph.coexec.timeline.predict`) it answers without dispatch
    (:meth:`kernel_seconds`, :meth:`sharing_seconds`) and gives the measured
    dispatch gaps (``gaps``, ``main_wake``, ``host_copy``); for the chain cost
    model each answer adds the gap of its path: a kernel in a command list
    (``step``), a sharing task queued behind the previous one (``next``), a
    sync waking on the other processor (``cross``).
    """

    def __init__(self, predictor: Predictor, view=None, *, in_model: bool = True):
        from ..coexec.timeline import DEFAULT_GAPS

        self.predictor = predictor
        self.in_model = in_model
        self._desc: dict = {}
        self._ratio: dict = {}
        self.gaps = {**DEFAULT_GAPS, **predictor.gaps}
        self.main_wake = predictor.main_wake
        self.host_copy = predictor.host_copy
        for op in (view.ops if view is not None else ()):
            self._describe(op)

    def _describe(self, op) -> dict:
        d = self._desc.get(op.name)
        if d is None or d.get("_shape") != op.out_shape:
            d = describe(op)
            d["_shape"] = op.out_shape
            self._desc[op.name] = d
        return d

    # -- without dispatch (the timeline) ---------------------------------------
    def kernel_seconds(self, op, proc, region, concurrent: bool = False) -> float:
        """Seconds of the kernel call for ``region`` of ``op`` on ``proc`` (cpu, gpu, gpu_buffer)."""
        if region[1] <= region[0] or region[3] <= region[2]:
            return 0.0
        if proc == "gpu" and not op.on_image:
            return float("inf")
        side = "cpu" if proc in ("cpu", "gpu_buffer") else "gpu"
        d = self._describe(op)
        p = self.predictor
        t = p.model_seconds(d, region, side, concurrent) if self.in_model else p.op_seconds(d, region, side,
                                                                                          concurrent)
        return t * self._ratio.get((op.name, proc), 1.0)

    def sharing_seconds(self, kind: str, nbytes: int) -> float:
        """Seconds of a sharing task (``transform_to_buffer``, ``transform_to_image``, ``map``,
        ``unmap``, ``sync``) of ``nbytes``, without its dispatch."""
        if kind == "sync":
            return 0.0  # a sync runs nothing: its cost is its thread's wake-up (the cross gap)
        if not nbytes:
            return 0.0
        a, b = self.predictor.sharing.get(kind, (0.0, 0.0))
        return a + b * nbytes

    # -- the CostSource protocol (the chain cost model) -------------------------
    def compute(self, op, proc, region, concurrent: bool = False) -> float:
        t = self.kernel_seconds(op, proc, region, concurrent)
        return t + self.gaps["step"] if t else 0.0

    def observe(self, op, proc: str, region, seconds: float, weight: float = 0.5) -> None:
        """Fold a measured time of ``region`` of ``op`` on ``proc`` into later predictions
        (an exponential moving average of measured / predicted, weight ``weight``)."""
        key = (op.name, proc)
        old = self._ratio.pop(key, 1.0)
        base = self.kernel_seconds(op, proc, region)
        if base > 0 and seconds > 0:
            self._ratio[key] = (1 - weight) * old + weight * (seconds / base)
        else:
            self._ratio[key] = old

    def transform(self, nbytes: int) -> float:
        # Both directions cost about the same; the model prices their mean.
        if not nbytes:
            return 0.0
        return 0.5 * (self.sharing_seconds("transform_to_buffer", nbytes)
                      + self.sharing_seconds("transform_to_image", nbytes)) + self.gaps["next"]

    def map(self, nbytes: int) -> float:
        return self.sharing_seconds("map", nbytes) + self.gaps["next"] if nbytes else 0.0

    def unmap(self, nbytes: int) -> float:
        return self.sharing_seconds("unmap", nbytes) + self.gaps["next"] if nbytes else 0.0

    def sync(self) -> float:
        return self.gaps["cross"]

    def throughput(self, key: str) -> float:
        """FLOPs per second of a processor's kernels over the ops predicted so far (muLayer's ratio)."""
        side = "gpu" if key == "gpu" else "cpu"
        descs = [d for d in self._desc.values()]
        if not descs:
            return 0.0
        t = sum(self.predictor.op_seconds(d, (0, d["oh"], 0, d["oc"]), side) for d in descs)
        f = sum(F.op_flops(d) for d in descs)
        return f / t if t > 0 else 0.0
