"""Argument checks shared by the image kernels (on top of ``kernels.args``).

An image activation is ``(N, H, CB, W, 4)`` float32 with ``CB = ceil(C/4)``.
The image does not record the true channel count ``C``; ops that need it take
it as an argument and check it fits: ``4*CB - 3 <= C <= 4*CB``.
"""
from __future__ import annotations

import numpy as np

from .. import args as _args


def image(op: str, name: str, a) -> np.ndarray:
    """A 5-D float32 image ``(N, H, CB, W, 4)`` with no empty axis, C-contiguous."""
    a = _args.array(op, name, a, 5)
    if a.shape[4] != 4:
        raise ValueError(f"{op}: {name} must be an image (N, H, CB, W, 4), got last axis {a.shape[4]}")
    if min(a.shape) < 1:
        raise ValueError(f"{op}: {name} must have no empty axis, got shape {a.shape}")
    return a


def integer(op: str, name: str, v, minimum: int = 1) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def channels_of(op: str, name: str, c, blocks: int, default: int | None = None) -> int:
    """The true channel count ``c`` of a tensor with ``blocks`` channel blocks (``None`` -> default)."""
    if c is None:
        if default is None:
            raise TypeError(f"{op}: {name} is required (the true channel count)")
        return default
    c = integer(op, name, c)
    if not 4 * blocks - 3 <= c <= 4 * blocks:
        raise ValueError(
            f"{op}: {name}={c} does not fit {blocks} channel blocks "
            f"(expected {4 * blocks - 3}..{4 * blocks})"
        )
    return c


def flag(op: str, name: str, v) -> bool:
    if not isinstance(v, (bool, np.bool_, int, np.integer)) or v not in (0, 1):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return bool(v)


def block_region(op: str, channels, blocks: int, c: int | None = None) -> tuple[int, int]:
    """``channels=(c0, c1)`` -> channel blocks ``[b0, b1)`` of a tensor with ``blocks`` blocks.

    Both ends are multiples of 4, except that c1 may end inside the last block:
    at the true channel count ``c`` when it is known, anywhere in it otherwise.
    ``None`` is every block.
    """
    if channels is None:
        return 0, blocks
    if not (isinstance(channels, (tuple, list)) and len(channels) == 2) or not all(
        isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)) for e in channels
    ):
        raise TypeError(f"{op}: channels must be a pair of ints (start, stop), got {channels!r}")
    c0, c1 = int(channels[0]), int(channels[1])
    hi = 4 * blocks
    if not 0 <= c0 <= c1 <= hi:
        raise ValueError(f"{op}: channels must satisfy 0 <= start <= stop <= {hi}, got {channels!r}")
    tail_ok = c1 > 4 * (blocks - 1) if c is None else c1 == c
    if c0 % 4 or (c1 % 4 and not tail_ok):
        tail = "end inside the last block" if c is None else f"be the channel count {c}"
        raise ValueError(f"{op}: channels ends must be multiples of 4 (stop may {tail}), got {channels!r}")
    return c0 // 4, (c1 + 3) // 4


def bias_vector(op: str, bias, oc: int, blocks: int) -> np.ndarray:
    """Bias ``(oc,)`` float32 (or ``None``) -> zero-padded ``(4*blocks,)`` float32 (the checked
    bias itself when it fills the blocks)."""
    if bias is not None and oc == 4 * blocks:
        return _args.bias(op, bias, oc)
    padded = np.zeros(4 * blocks, np.float32)
    padded[:oc] = _args.bias(op, bias, oc)
    return padded
