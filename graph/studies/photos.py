"""Real photos for the cloud-vs-device study (Guo 2018), from files inside PyPI packages.

Guo rescaled 15 photos in three groups of size 2160x3840, 1080x1920 and
540x960 to the models' 224x224 input.  Nothing is downloaded here: the photos
are the sample images that ship inside the scikit-learn and scikit-image
wheels, read as files (no data-fetching code runs):

==============  ===============  ==========================================
name            package          file (in the installed package)
==============  ===============  ==========================================
``china``       scikit-learn     ``sklearn/datasets/images/china.jpg``
``flower``      scikit-learn     ``sklearn/datasets/images/flower.jpg``
``astronaut``   scikit-image     ``skimage/data/astronaut.png``
``coffee``      scikit-image     ``skimage/data/coffee.png``
``chelsea``     scikit-image     ``skimage/data/chelsea.png``
``rocket``      scikit-image     ``skimage/data/rocket.jpg``
``motorcycle``  scikit-image     ``skimage/data/motorcycle_left.png``
==============  ===============  ==========================================

:func:`prepare` takes the first ``n`` that are installed, crops each to 16:9
around its centre, **upscales** it to 3840x2160 (group 1; the originals are
300-640 pixels wide, so the 4K photos carry no more detail than those) with
Pillow's Lanczos filter, then makes groups 2 and 3 by downscaling the 4K
image 2x and 4x, as Guo did, and JPEG-encodes every one at
:data:`JPEG_QUALITY`.  Guo's group-1 JPEGs were 785-2599 KB.

:func:`decode` is Pillow's JPEG decode to an (H, W, 3) uint8 array;
:func:`to_input` turns it into the model's (1, 3, 224, 224) float32 input:
NCHW in [0, 1], then coinfer's area-resize kernel
(:func:`coinfer.kernels.buffer.resize`, ``mode="area"``).

Pillow and one of the two packages are in the ``guo`` extra
(``pip install 'coinfer[guo]'``).
"""
from __future__ import annotations

import importlib.util
import io
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["SOURCES", "GROUPS", "JPEG_QUALITY", "Photo", "available", "prepare", "decode", "to_input",
           "MissingExtra"]

#: (name, package, path inside the package).
SOURCES = (
    ("china", "sklearn", ("datasets", "images", "china.jpg")),
    ("flower", "sklearn", ("datasets", "images", "flower.jpg")),
    ("astronaut", "skimage", ("data", "astronaut.png")),
    ("coffee", "skimage", ("data", "coffee.png")),
    ("chelsea", "skimage", ("data", "chelsea.png")),
    ("rocket", "skimage", ("data", "rocket.jpg")),
    ("motorcycle", "skimage", ("data", "motorcycle_left.png")),
)
#: Guo's photo groups: group -> (height, width).
GROUPS = {1: (2160, 3840), 2: (1080, 1920), 3: (540, 960)}
JPEG_QUALITY = 95
EXTRA_HINT = "pip install 'coinfer[guo]' (onnx, Pillow, scikit-image, scikit-learn, tqdm)"


class MissingExtra(ImportError):
    """A package of the ``guo`` extra is missing; the message says what to install."""


@dataclass(frozen=True)
class Photo:
    name: str
    group: int
    height: int
    width: int
    jpeg: bytes
    upscaled: bool  # group 1 is the source photo upscaled to 4K; groups 2 and 3 are downscaled from it


def _package_dir(pkg: str) -> str | None:
    """The installed package's folder, without importing it."""
    try:
        spec = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def available() -> list:
    """``[(name, path)]`` of the source photos whose package is installed, in :data:`SOURCES` order."""
    out = []
    for name, pkg, rel in SOURCES:
        d = _package_dir(pkg)
        if d is not None and os.path.isfile(os.path.join(d, *rel)):
            out.append((name, os.path.join(d, *rel)))
    return out


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtra(f"the cloud-vs-device study needs Pillow: {EXTRA_HINT}") from None
    return Image


def _crop_16_9(img):
    w, h = img.size
    if w * 9 > h * 16:  # too wide
        cw, ch = h * 16 // 9, h
    else:
        cw, ch = w, w * 9 // 16
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def _jpeg(img, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def prepare(n: int = 5, *, quality: int = JPEG_QUALITY, groups=(1, 2, 3), progress=None) -> list:
    """``n`` photos x ``groups`` as :class:`Photo` s (group-major order within each photo).

    ``progress``: a callable taking a label, called once per photo.  Raises
    :class:`MissingExtra` when Pillow or too few photo packages are installed."""
    Image = _pil()
    if not (isinstance(n, int) and 1 <= n <= len(SOURCES)):
        raise ValueError(f"photos: n must be an int in [1, {len(SOURCES)}], got {n!r}")
    if not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"photos: JPEG quality must be an int in [1, 100], got {quality!r}")
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ValueError(f"photos: groups must be a non-empty subset of {sorted(GROUPS)}, got {list(groups)}")
    found = available()
    if len(found) < n:
        raise MissingExtra(f"photos: {n} photos asked for, {len(found)} found in installed packages "
                           f"({', '.join(f for f, _ in found) or 'none'}): {EXTRA_HINT}")
    out = []
    for name, path in found[:n]:
        if progress is not None:
            progress(name)
        with Image.open(path) as src:
            base = _crop_16_9(src.convert("RGB"))
        h1, w1 = GROUPS[1]
        big = base.resize((w1, h1), Image.Resampling.LANCZOS)
        for g in groups:
            h, w = GROUPS[g]
            img = big if g == 1 else big.resize((w, h), Image.Resampling.LANCZOS)
            out.append(Photo(name, g, h, w, _jpeg(img, quality), upscaled=True))
    return out


def decode(jpeg: bytes) -> np.ndarray:
    """Pillow's decode of a JPEG to an (H, W, 3) uint8 array."""
    Image = _pil()
    with Image.open(io.BytesIO(jpeg)) as img:
        return np.asarray(img.convert("RGB"))


def to_input(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, size, size) float32 in [0, 1]: NCHW, then coinfer's area resize."""
    from ...kernels import buffer

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"photos.to_input: expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    x = np.empty((1, 3, rgb.shape[0], rgb.shape[1]), np.float32)
    np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=x[0], casting="unsafe")
    return buffer.resize(x, (size, size), mode="area")
