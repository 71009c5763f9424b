"""Register-tiled GEMM micro-kernels and the loop over tiles that drives them.

``C[m, n] (+)= sum_k A[m, k] * B[k, n]`` with row-major ``A`` and ``C``.  The
conv kernels use it with A = weights (rows are output channels, read in place
from the OIHW array), B = input patches and C = the NCHW output (rows are
channels, columns are pixels).  Row ``k`` of B is NR contiguous floats at
``b_off + koff[k]``: a packed im2col panel (``koff[k] = NR * k``), the NCHW
input itself for a 1x1 conv (``koff[k] = k * H * W``), or a shifted window
of a padded input plane (see ``_conv_planes``).

The tile is chosen for the instruction set the module is compiled for
(``coinfer.kernels.target.isa``), so that its accumulators, one row of B and
the broadcast fit the vector registers:

- AVX-512 (32 zmm): ``MR x NR`` = 8 x 32, 16 accumulators of 16 floats; each k
  step loads one row of B (two vectors), broadcasts 8 values of A and issues 16
  fused multiply-adds.
- AVX2 and generic (16 ymm): 6 x 16, the shape of BLIS's Haswell kernel: 12
  ymm accumulators, two for the row of B, one for the broadcast.

Every output is the same sequence of multiply-adds (from the bias, over k in
order) whichever tile computes it, so regions reproduce the whole output bit
for bit on each path.

Tile arguments, all offsets in elements of 1-D arrays:

- ``a, a_off, lda``: row i of the tile's A starts at ``a_off + i * lda``;
  ``mv`` (1..MR) rows are valid, and rows past it repeat row ``mv - 1`` so that
  no read leaves ``a`` (the caller discards their results).
- ``b, b_off, koff``: row k of B starts at ``b_off + koff[k]`` (int64 table).
- ``kc``: the number of k steps.
- ``c, c_off, ldc``: the tile's destination; it must be MR full rows.
- ``first``: start from ``bias[bias_off + i]`` instead of the current C
  (the first k block); ``relu``: max(., 0) before storing (last k block),
  which keeps NaN as NaN (IEEE ``maximum``, like the reference).

Callers pass constants as ``np.int64(...)``: a literal int argument would make
Numba compile one more specialisation of the callee.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..target import isa
from ._conv_simd import FASTMATH, WIDTH, vbroadcast, vfma, vload, vload_first, vmax0, vstore, vstore_first



@njit(nogil=True, fastmath=FASTMATH, cache=True)
def tile_8x32(a, a_off, lda, mv, b, b_off, koff, kc, c, c_off, ldc, bias, bias_off, first, relu):
    """C[0:8, 0:32] of one tile; see the module docstring for the arguments."""
    # Rows past mv repeat the last valid row, so every read stays inside ``a``.
    a0 = a_off + min(0, mv - 1) * lda
    a1 = a_off + min(1, mv - 1) * lda
    a2 = a_off + min(2, mv - 1) * lda
    a3 = a_off + min(3, mv - 1) * lda
    a4 = a_off + min(4, mv - 1) * lda
    a5 = a_off + min(5, mv - 1) * lda
    a6 = a_off + min(6, mv - 1) * lda
    a7 = a_off + min(7, mv - 1) * lda
    if first:
        t = vbroadcast(bias, bias_off + min(0, mv - 1))
        c0a = t; c0b = t
        t = vbroadcast(bias, bias_off + min(1, mv - 1))
        c1a = t; c1b = t
        t = vbroadcast(bias, bias_off + min(2, mv - 1))
        c2a = t; c2b = t
        t = vbroadcast(bias, bias_off + min(3, mv - 1))
        c3a = t; c3b = t
        t = vbroadcast(bias, bias_off + min(4, mv - 1))
        c4a = t; c4b = t
        t = vbroadcast(bias, bias_off + min(5, mv - 1))
        c5a = t; c5b = t
        t = vbroadcast(bias, bias_off + min(6, mv - 1))
        c6a = t; c6b = t
        t = vbroadcast(bias, bias_off + min(7, mv - 1))
        c7a = t; c7b = t
    else:
        c0a = vload(c, c_off + 0 * ldc + 0); c0b = vload(c, c_off + 0 * ldc + 16)
        c1a = vload(c, c_off + 1 * ldc + 0); c1b = vload(c, c_off + 1 * ldc + 16)
        c2a = vload(c, c_off + 2 * ldc + 0); c2b = vload(c, c_off + 2 * ldc + 16)
        c3a = vload(c, c_off + 3 * ldc + 0); c3b = vload(c, c_off + 3 * ldc + 16)
        c4a = vload(c, c_off + 4 * ldc + 0); c4b = vload(c, c_off + 4 * ldc + 16)
        c5a = vload(c, c_off + 5 * ldc + 0); c5b = vload(c, c_off + 5 * ldc + 16)
        c6a = vload(c, c_off + 6 * ldc + 0); c6b = vload(c, c_off + 6 * ldc + 16)
        c7a = vload(c, c_off + 7 * ldc + 0); c7b = vload(c, c_off + 7 * ldc + 16)
    for k in range(kc):
        o = b_off + koff[k]
        ba = vload(b, o)
        bb = vload(b, o + 16)
        t = vbroadcast(a, a0 + k)
        c0a = vfma(t, ba, c0a); c0b = vfma(t, bb, c0b)
        t = vbroadcast(a, a1 + k)
        c1a = vfma(t, ba, c1a); c1b = vfma(t, bb, c1b)
        t = vbroadcast(a, a2 + k)
        c2a = vfma(t, ba, c2a); c2b = vfma(t, bb, c2b)
        t = vbroadcast(a, a3 + k)
        c3a = vfma(t, ba, c3a); c3b = vfma(t, bb, c3b)
        t = vbroadcast(a, a4 + k)
        c4a = vfma(t, ba, c4a); c4b = vfma(t, bb, c4b)
        t = vbroadcast(a, a5 + k)
        c5a = vfma(t, ba, c5a); c5b = vfma(t, bb, c5b)
        t = vbroadcast(a, a6 + k)
        c6a = vfma(t, ba, c6a); c6b = vfma(t, bb, c6b)
        t = vbroadcast(a, a7 + k)
        c7a = vfma(t, ba, c7a); c7b = vfma(t, bb, c7b)
    if relu:
        c0a = vmax0(c0a); c0b = vmax0(c0b)
        c1a = vmax0(c1a); c1b = vmax0(c1b)
        c2a = vmax0(c2a); c2b = vmax0(c2b)
        c3a = vmax0(c3a); c3b = vmax0(c3b)
        c4a = vmax0(c4a); c4b = vmax0(c4b)
        c5a = vmax0(c5a); c5b = vmax0(c5b)
        c6a = vmax0(c6a); c6b = vmax0(c6b)
        c7a = vmax0(c7a); c7b = vmax0(c7b)
    vstore(c, c_off + 0 * ldc + 0, c0a); vstore(c, c_off + 0 * ldc + 16, c0b)
    vstore(c, c_off + 1 * ldc + 0, c1a); vstore(c, c_off + 1 * ldc + 16, c1b)
    vstore(c, c_off + 2 * ldc + 0, c2a); vstore(c, c_off + 2 * ldc + 16, c2b)
    vstore(c, c_off + 3 * ldc + 0, c3a); vstore(c, c_off + 3 * ldc + 16, c3b)
    vstore(c, c_off + 4 * ldc + 0, c4a); vstore(c, c_off + 4 * ldc + 16, c4b)
    vstore(c, c_off + 5 * ldc + 0, c5a); vstore(c, c_off + 5 * ldc + 16, c5b)
    vstore(c, c_off + 6 * ldc + 0, c6a); vstore(c, c_off + 6 * ldc + 16, c6b)
    vstore(c, c_off + 7 * ldc + 0, c7a); vstore(c, c_off + 7 * ldc + 16, c7b)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def tile_6x16(a, a_off, lda, mv, b, b_off, koff, kc, c, c_off, ldc, bias, bias_off, first, relu):
    """C[0:6, 0:16] of one tile (the AVX2 tile); see the module docstring for the arguments."""
    a0 = a_off + min(0, mv - 1) * lda
    a1 = a_off + min(1, mv - 1) * lda
    a2 = a_off + min(2, mv - 1) * lda
    a3 = a_off + min(3, mv - 1) * lda
    a4 = a_off + min(4, mv - 1) * lda
    a5 = a_off + min(5, mv - 1) * lda
    if first:
        c0 = vbroadcast(bias, bias_off + min(0, mv - 1))
        c1 = vbroadcast(bias, bias_off + min(1, mv - 1))
        c2 = vbroadcast(bias, bias_off + min(2, mv - 1))
        c3 = vbroadcast(bias, bias_off + min(3, mv - 1))
        c4 = vbroadcast(bias, bias_off + min(4, mv - 1))
        c5 = vbroadcast(bias, bias_off + min(5, mv - 1))
    else:
        c0 = vload(c, c_off + 0 * ldc)
        c1 = vload(c, c_off + 1 * ldc)
        c2 = vload(c, c_off + 2 * ldc)
        c3 = vload(c, c_off + 3 * ldc)
        c4 = vload(c, c_off + 4 * ldc)
        c5 = vload(c, c_off + 5 * ldc)
    for k in range(kc):
        bv = vload(b, b_off + koff[k])
        c0 = vfma(vbroadcast(a, a0 + k), bv, c0)
        c1 = vfma(vbroadcast(a, a1 + k), bv, c1)
        c2 = vfma(vbroadcast(a, a2 + k), bv, c2)
        c3 = vfma(vbroadcast(a, a3 + k), bv, c3)
        c4 = vfma(vbroadcast(a, a4 + k), bv, c4)
        c5 = vfma(vbroadcast(a, a5 + k), bv, c5)
    if relu:
        c0 = vmax0(c0); c1 = vmax0(c1); c2 = vmax0(c2)
        c3 = vmax0(c3); c4 = vmax0(c4); c5 = vmax0(c5)
    vstore(c, c_off + 0 * ldc, c0)
    vstore(c, c_off + 1 * ldc, c1)
    vstore(c, c_off + 2 * ldc, c2)
    vstore(c, c_off + 3 * ldc, c3)
    vstore(c, c_off + 4 * ldc, c4)
    vstore(c, c_off + 5 * ldc, c5)


# The tile of this instruction set (only it gets compiled); edges run it on a scratch tile.
if isa() == "avx512":
    MR, NR = 8, 32
    tile_full = tile_8x32
else:
    MR, NR = 6, 16
    tile_full = tile_6x16


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def edge_tile(a, a_off, lda, mv, b, b_off, koff, kc, c, c_off, ldc, nv, bias, bias_off, first, relu, tile):
    """A tile with fewer than MR valid rows or NR valid columns, computed in ``tile`` (MR x NR)."""
    if not first:
        for i in range(mv):
            for h in range(0, nv, WIDTH):
                m = min(WIDTH, nv - h)
                vstore_first(tile, i * NR + h, vload_first(c, c_off + i * ldc + h, m), m)
    tile_full(a, a_off, lda, mv, b, b_off, koff, kc, tile, np.int64(0), np.int64(NR), bias, bias_off, first, relu)
    for i in range(mv):
        for h in range(0, nv, WIDTH):
            m = min(WIDTH, nv - h)
            vstore_first(c, c_off + i * ldc + h, vload_first(tile, i * NR + h, m), m)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def gemm_block(a, a_off, lda, m, b, b_off, koff, panel_stride, kc, nc, c, c_off, ldc,
               bias, bias_off, first, relu, tile):
    """``C[0:m, 0:nc] (+)= A[0:m, 0:kc] @ B[0:kc, 0:nc]`` over MR x NR tiles.

    Columns ``[p*NR, p*NR + NR)`` of B start at ``b_off + p * panel_stride``
    (rows at ``koff``).  Every panel must be readable for NR columns.
    ``tile`` is an MR x NR scratch.  The inner loop
    sweeps A's tiles over one panel of B (kc x NR floats), which stays in
    cache meanwhile; A (m x kc) comes from L2.
    """
    for j0 in range(0, nc, NR):
        nv = min(NR, nc - j0)
        bj = b_off + (j0 // NR) * panel_stride
        for i0 in range(0, m, MR):
            mv = min(MR, m - i0)
            ai = a_off + i0 * lda
            ci = c_off + i0 * ldc + j0
            bi = bias_off + i0
            if mv == MR and nv == NR:
                tile_full(a, ai, lda, mv, b, bj, koff, kc, c, ci, ldc, bias, bi, first, relu)
            else:
                edge_tile(a, ai, lda, mv, b, bj, koff, kc, c, ci, ldc, nv, bias, bi, first, relu, tile)
