"""Features of one op region for each latency predictor.

Every function takes a description (:func:`~.sampling.describe`), a region
``(r0, r1, c0, c1)`` of the output and the kernel ``layout``, and returns
``(family, {feature: value})``; a predictor fits one model per family.

- :func:`codl`: CoDL's analytic terms (MobiSys 2022, Sec. 5: model the
  non-linear structure of the kernel, regress the rest linearly), here from
  *coinfer's* kernels.  Conv (both layouts) runs register tiles of MR output
  pixels by 16 or 32 channels (``coinfer.kernels.target.conv_tiles``: 8x32
  and 12x16 with AVX-512, 6x16 with AVX2), so its terms are the tiles each
  kind of tile computes, rounded up at the region's ends (partial tiles along
  pixels, a last 16-channel group along channels), times the reduction length
  (one broadcast and 1-2 FMAs a step); the padded, stride-split input planes
  built per call (buffer: direct conv reads planes, not an im2col matrix; a
  1x1 stride-1 conv reads its input in place) or the zero-padded input rows
  (image); and a per-call constant (argument checks, dispatch).  The window
  ops (depthwise conv, pools) run 16-float vectors along a row of a plane
  (buffer) or a row of texels (image): vectors x taps, vectors, rows, input
  floats, or outputs x taps where they take their scalar loop.  FC
  is weight bytes streamed; element-wise ops, LRN and softmax their elements.
- :func:`flops`: μLayer's FLOPs-linear predictor: one family, ``flops``.
- :func:`edgent`: Edgent's Table I per layer type (conv: input feature-map
  size and (filter/stride)^2 x filters; relu, LRN, dropout: input size; pool,
  FC: input and output size), the op's whole-op prediction scaled by the
  region's share of the output.
- :func:`raw`: the description and region as numbers (the forest's input).
"""
from __future__ import annotations

import math

from ...kernels.target import conv_tiles
from ..ops import (ADD, CONCAT, CONV, FAMILY_CONV, FAMILY_DEPTHWISE, FAMILY_ELTWISE, FAMILY_FC, FAMILY_GLOBALPOOL,
                   FAMILY_LRN, FAMILY_POOL, FAMILY_SOFTMAX, FC, GLOBALAVGPOOL, LRN, POOLS)
from .sampling import DESC_KEYS, family
from .sampling import flops as _desc_flops

__all__ = ["family", "codl", "flops", "edgent", "raw", "op_flops", "region_share", "METHODS", "RAW_KEYS"]

#: Floats that stay in one core's L2 (2 MB on Zen 4; 1 MB on many AVX2 parts) and in the
#: shared L3: data beyond them streams from the next level, a cost linear in its bytes.
L2_FLOATS = 256 * 1024
L3_FLOATS = 4 * 1024 * 1024


def _beyond(floats: float, traffic: float) -> tuple[float, float]:
    """``traffic`` charged once past L2 and once more past L3, by the size of the data ``floats``."""
    return (traffic if floats > L2_FLOATS else 0.0), (traffic if floats > L3_FLOATS else 0.0)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _region_dims(desc: dict, region) -> tuple[int, int]:
    """(rows, channels) the region covers."""
    r0, r1, c0, c1 = region
    return max(0, r1 - r0), max(0, c1 - c0)


def _conv_tiles(desc: dict, region, layout: str, isa: str) -> dict:
    """Tiles of each kind, steps of each kind and plane floats of a dense/grouped conv region."""
    wide_mr, wide_lanes, narrow_mr = conv_tiles(isa)
    n, g = desc["n"], desc["groups"]
    nr, _ = _region_dims(desc, region)
    r0, r1, c0, c1 = region
    ow, kh, kw = desc["ow"], desc["kh"], desc["kw"]
    cg, mg = desc["c"] // g, desc["oc"] // g
    k = cg * kh * kw
    wide = narrow = 0  # passes of each tile kind over the region's pixels
    if layout == "buffer":
        for gi in range(g):
            lo, hi = max(c0, gi * mg) - gi * mg, min(c1, gi * mg + mg) - gi * mg
            if lo >= hi:
                continue
            j, j_end = lo // 16, _cdiv(hi, 16)
            while j < j_end:
                if wide_lanes == 32 and j + 1 < j_end:
                    wide += 1
                    j += 2
                else:
                    narrow += 1
                    j += 1
        pix = nr * ow
        wide_t, narrow_t = n * wide * _cdiv(pix, wide_mr), n * narrow * _cdiv(pix, narrow_mr)
        in_place = kh == kw == 1 and desc["sh"] == desc["sw"] == 1 and desc["pt"] == desc["pl"] == 0 \
            and desc["pb"] == desc["pr"] == 0
        hq = nr + (desc["dh"] * (kh - 1)) // desc["sh"]
        wq = ow + (desc["dw"] * (kw - 1)) // desc["sw"]
        planes = 0 if in_place else n * g * cg * desc["sh"] * desc["sw"] * hq * wq
        groups_run = n * sum(1 for gi in range(g) if max(c0, gi * mg) < min(c1, gi * mg + mg))
        # Every pass of a tile kind over the pixels reads the planes (or, in place, the input rows).
        src = planes if planes else n * desc["c"] * nr * desc["w"]
        build_in = n * desc["c"] * desc["h"] * desc["w"] if planes else 0.0
        strided = planes if planes and desc["sw"] > 1 else 0.0
    else:
        b0, b1 = c0 // 4, _cdiv(c1, 4)
        gg, g_end = b0 // 4, _cdiv(b1, 4)
        while gg < g_end:
            if wide_lanes == 32 and gg + 1 < g_end:
                wide += 1
                gg += 2
            else:
                narrow += 1
                gg += 1
        pix = n * nr * ow
        wide_t, narrow_t = wide * _cdiv(pix, wide_mr), narrow * _cdiv(pix, narrow_mr)
        lo = r0 * desc["sh"] - desc["pt"]
        hi = (r1 - 1) * desc["sh"] - desc["pt"] + desc["dh"] * (kh - 1) + 1
        padded = lo < 0 or hi > desc["h"] or desc["pl"] > 0 or desc["pr"] > 0
        planes = n * (hi - lo) * _cdiv(desc["c"], 4) * (desc["w"] + desc["pl"] + desc["pr"]) * 4 if padded else 0
        groups_run = 1
        src = n * (min(hi, desc["h"]) - max(lo, 0)) * _cdiv(desc["c"], 4) * desc["w"] * 4
        build_in, strided = 0.0, 0.0
    passes = wide + narrow
    out = n * nr * ow * max(0, c1 - c0)
    in2, in3 = _beyond(src, src * passes)
    out2, out3 = _beyond(n * desc["oc"] * desc["oh"] * ow, out)
    return {"wide_steps": wide_t * k, "narrow_steps": narrow_t * k, "tiles": wide_t + narrow_t,
            "planes": planes, "groups": groups_run, "in_l2": in2, "in_l3": in3, "out_l2": out2, "out_l3": out3,
            "build_in": build_in, "strided": strided}


def _window_terms(desc: dict, region, layout: str, kh: int, kw: int) -> dict:
    """Vector steps x taps, vector steps, rows and input floats of a window op (depthwise
    conv, pool), or scalar outputs x taps where the kernel takes its scalar loop.

    The window kernels (``kernels/_pool.py``, ``kernels/_depthwise.py``) fold up to 3
    cells wide at column stride 1 or 2 (pools) or any width at column stride 1 or 2
    (depthwise) in 16-float vectors read straight from the input rows (stride 2
    loads two vectors a step; NCHW 3x3 stride-2 planes under 8 outputs wide share a
    vector two at a time); other windows take a scalar loop over outputs and taps."""
    n = desc["n"]
    nr, nc = _region_dims(desc, region)
    cell = 4 if layout == "image" else 1
    planes = _cdiv(nc, 4) if layout == "image" else nc
    rows = n * planes * nr
    sw = desc["sw"]
    vector = sw <= 2 and (desc["type"] == CONV or kw <= 3)
    # 3x3 stride-2 depthwise on NCHW planes under 8 outputs wide runs two planes per vector.
    paired = (desc["type"] == CONV and layout == "buffer" and kh == kw == 3 and desc["sh"] == sw == 2
              and desc["ow"] < 8 and max(1, desc["dh"]) == max(1, desc["dw"]) == 1)
    vec = (n * _cdiv(planes, 2) * nr if paired else rows) * _cdiv(desc["ow"] * cell * sw, 16) if vector else 0
    scalar = 0 if vector else rows * desc["ow"] * cell * kh * kw
    rows_in = min(desc["h"], (nr - 1) * desc["sh"] + (kh - 1) * max(1, desc["dh"]) + 1) if nr else 0
    floats_in = n * planes * rows_in * desc["w"] * cell
    # Depthwise stride 2 loads two vectors a step and picks the even cells: its own cost per tap.
    s2 = sw == 2 and desc["type"] == CONV
    return {"vec_taps": 0 if s2 else vec * kh * kw, "vec_taps_s2": vec * kh * kw if s2 else 0, "vec": vec,
            "rows": rows, "in": floats_in, "scalar_taps": scalar}


def codl(desc: dict, region, layout: str, isa: str) -> tuple[str, dict]:
    """CoDL-style analytic terms of coinfer's kernels (see the module docstring)."""
    fam = family(desc)
    nr, nc = _region_dims(desc, region)
    n = desc["n"]
    plane = desc["oh"] * desc["ow"]
    if fam == FAMILY_CONV:
        return fam, {"one": 1.0, **_conv_tiles(desc, region, layout, isa)}
    if fam in (FAMILY_DEPTHWISE, FAMILY_POOL):
        return fam, {"one": 1.0, **_window_terms(desc, region, layout, desc["kh"], desc["kw"])}
    if fam == FAMILY_GLOBALPOOL:
        planes = _cdiv(nc, 4) if layout == "image" else nc
        cell = 4 if layout == "image" else 1
        return fam, {"one": 1.0, "in": n * planes * desc["h"] * desc["w"] * cell, "planes": n * planes}
    if fam == FAMILY_FC:
        return fam, _fc_terms(desc, nc, layout)
    out = n * nr * nc * (desc["ow"] if desc["oh"] > 1 or desc["ow"] > 1 else 1)
    if plane > 1 and nr:
        out = n * nc * nr * desc["ow"]
    rows = n * nc * max(nr, 1)
    if fam == FAMILY_LRN:
        return fam, {"one": 1.0, "out": out, "window": out * desc["size"], "rows": rows}
    if fam == FAMILY_SOFTMAX:
        whole = n * desc["c"] * desc["h"] * desc["w"]
        return fam, {"one": 1.0, "elems": whole, "vectors": n * desc["h"] * desc["w"]}
    moved = out * (1 + max(1, desc["inputs"]))  # floats read and written
    whole = n * desc["oc"] * max(1, plane) * (1 + max(1, desc["inputs"]))
    l2, l3 = _beyond(whole, moved)
    f = {"one": 1.0, "out": out, "in": out * max(1, desc["inputs"]), "rows": rows,
         "runs": _eltwise_runs(desc, region, layout), "in_l2": l2, "in_l3": l3}
    if desc["type"] == CONCAT and layout == "image":
        f["lanes"] = n * max(1, nr) * desc["ow"] * _unaligned_channels(desc)
    return _eltwise_kind(desc), f


def _unaligned_channels(desc: dict) -> int:
    """Channels an image concat copies lane by lane (``kernels/image/elementwise.py``): those of
    an input placed off a texel boundary, and the last partial texel of each other input.  The
    inputs are taken as equal parts with the remainder on the last (as :func:`~.sampling.build`
    makes them, and the zoo's concats are)."""
    k = max(1, desc["inputs"])
    part = desc["c"] // k
    slow = 0
    for i in range(k):
        p = part + (desc["c"] - part * k if i == k - 1 else 0)
        slow += p if (i * part) % 4 else p % 4
    return slow


def _fc_terms(desc: dict, nc: int, layout: str) -> dict:
    """FC streams its weights: multiply-adds, those whose weights sit past L2 / L3 (the
    timings are warm, so smaller weights stay cached), the blocks of outputs the kernel
    computes together (``kernels/buffer/fc.py``: 8 outputs by 4 inputs; images: 4 outputs,
    one texel), and the reduction's tail past the last 16-float vector, taken a float a step."""
    n, k = desc["n"], desc["c"]
    macs = n * k * nc
    w2, w3 = _beyond(k * nc, k * nc)
    block = 4 if layout == "image" else 8
    return {"one": 1.0, "macs": macs, "out": n * nc, "in": n * k, "w_l2": w2 * n, "w_l3": w3 * n,
            "blocks": _cdiv(n, 4) * _cdiv(nc, block), "tail": n * nc * (k % 16)}


def _eltwise_kind(desc: dict) -> str:
    """The element-wise kernel a description runs: ``eltwise`` (relu, clip and the copies),
    ``eltwise_add`` (two inputs a step) or ``eltwise_concat`` (block copies); each its own model."""
    return {ADD: FAMILY_ELTWISE + "_add", CONCAT: FAMILY_ELTWISE + "_concat"}.get(desc["type"], FAMILY_ELTWISE)


def _eltwise_runs(desc: dict, region, layout: str) -> int:
    """Contiguous runs the element-wise kernels loop over (``kernels/buffer/elementwise.py``,
    ``kernels/image/elementwise.py``): the whole tensor is one run (concat: one per input and
    image); a region of a buffer one run per (image, channel) plane, of an image one per
    (image, row); an image concat copies each input's channels row by row."""
    nr, nc = _region_dims(desc, region)
    n, k = desc["n"], max(1, desc["inputs"])
    rows = nr if desc["oh"] > 1 or desc["ow"] > 1 else 1
    whole = (nr >= desc["oh"] or desc["oh"] <= 1) and nc >= desc["oc"]
    concat = desc["type"] == CONCAT
    if layout == "image" and concat:
        return n * k * max(1, rows)
    if whole:
        return n * k if concat else 1
    return n * max(1, rows) if layout == "image" else n * nc


def region_share(desc: dict, region) -> float:
    nr, nc = _region_dims(desc, region)
    return (nr / max(1, desc["oh"])) * (nc / max(1, desc["oc"]))


def op_flops(desc: dict) -> float:
    """FLOPs of the whole op (the op table's rule, :func:`~.sampling.flops`)."""
    return float(_desc_flops(desc))


def flops(desc: dict, region, layout: str, isa: str) -> tuple[str, dict]:
    """μLayer's predictor: time linear in the region's FLOPs."""
    return "all", {"one": 1.0, "flops": op_flops(desc) * region_share(desc, region)}


def edgent(desc: dict, region, layout: str, isa: str) -> tuple[str, dict]:
    """Edgent's Table I features per layer type, scaled by the region's share."""
    t = desc["type"]
    s = region_share(desc, region)
    size_in = desc["n"] * desc["c"] * desc["h"] * desc["w"]
    size_out = desc["n"] * desc["oc"] * desc["oh"] * desc["ow"]
    if t == CONV:
        fam = family(desc)
        return fam, {"one": s, "in": size_in * s,
                     "filters": (desc["kh"] / desc["sh"]) ** 2 * desc["oc"] * s}
    if t == FC or t == GLOBALAVGPOOL or t in POOLS:
        return (FAMILY_FC if t == FC else FAMILY_POOL), {"one": s, "in": size_in * s, "out": size_out * s}
    return (FAMILY_LRN if t == LRN else "other"), {"one": s, "in": size_in * s}


RAW_KEYS = tuple(k for k in DESC_KEYS) + ("rows", "chans", "share", "flops", "log_flops")


def raw(desc: dict, region, layout: str, isa: str) -> tuple[str, dict]:
    """The description and region as numbers, per family (nn-Meter-style black box)."""
    nr, nc = _region_dims(desc, region)
    f = op_flops(desc) * region_share(desc, region)
    x = {k: float(desc[k]) for k in DESC_KEYS}
    x.update(rows=nr, chans=nc, share=region_share(desc, region), flops=f, log_flops=math.log1p(f))
    return family(desc), x


METHODS = {"codl": codl, "flops": flops, "edgent": edgent, "forest": raw}
