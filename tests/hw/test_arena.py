"""Arena planning and arena memory."""
import gc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.graph.studies import arena as workloads
from coinfer.hw.arena import Arena, lower_bound, naive_bytes, plan_offsets
from coinfer.hw.arena_plan import greedy_by_size


def _assert_valid(tensors, offsets, total, alignment):
    assert len(offsets) == len(tensors)
    for i, (size, first, last) in enumerate(tensors):
        assert offsets[i] % alignment == 0
        assert 0 <= offsets[i] and offsets[i] + size <= total
        for j in range(i):
            s2, f2, l2 = tensors[j]
            if size and s2 and first <= l2 and f2 <= last:
                assert offsets[i] + size <= offsets[j] or offsets[j] + s2 <= offsets[i], (i, j)


lifetime = st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 12)).map(
    lambda t: (t[0], t[1], t[1] + t[2])
)


@given(st.lists(lifetime, max_size=40), st.sampled_from([1, 8, 64, 256]))
def test_plan_never_overlaps_live_tensors(tensors, alignment):
    offsets, total = plan_offsets(tensors, alignment)
    _assert_valid(tensors, offsets, total, alignment)
    assert lower_bound(tensors, alignment) <= total <= naive_bytes(tensors, alignment)


@given(st.lists(lifetime, min_size=1, max_size=25))
def test_plan_without_search_is_valid(tensors):
    offsets, total = plan_offsets(tensors, 64, search=0)
    _assert_valid(tensors, offsets, total, 64)
    g_offsets, g_total = greedy_by_size(tensors, 64)
    _assert_valid(tensors, g_offsets, g_total, 64)
    assert plan_offsets(tensors, 64)[1] <= total <= g_total


def test_bounds_by_hand():
    # Two tensors alive together, one alone later: the bound is the pair.
    ts = [(100, 0, 1), (64, 1, 2), (300, 3, 3)]
    assert lower_bound(ts, 64) == 320
    assert naive_bytes(ts, 64) == 128 + 64 + 320
    offsets, total = plan_offsets(ts, 64)
    assert total == 320
    _assert_valid(ts, offsets, total, 64)
    assert plan_offsets([], 64) == ([], 0)


@pytest.mark.parametrize("name", ["alexnet", "squeezenet", "vgg16"])
def test_networks_plan_near_lower_bound(name):
    ts = workloads.networks()[name]
    offsets, total = plan_offsets(ts)
    _assert_valid(ts, offsets, total, 64)
    assert total <= 1.05 * lower_bound(ts)


@pytest.mark.parametrize(
    "bad, needle",
    [
        ([(10, 0, 1), (-1, 0, 0)], "tensor 1 has negative size"),
        ([(10, 3, 1)], "tensor 0 has last_use 1 before first_use 3"),
        ([(10, 0, 1), (10, 0)], "tensor 1 must be a 3-tuple"),
        ([(10, 0, 1), (10, 0, 1), (1.5, 0, 1)], "tensor 2 must hold three ints"),
        ([(True, 0, 1)], "tensor 0 must hold three ints"),
        ([5], "tensor 0 must be a 3-tuple"),
    ],
)
def test_bad_tensors_are_refused_by_index(bad, needle):
    for f in (plan_offsets, lower_bound, naive_bytes, Arena):
        with pytest.raises(ValueError, match=needle):
            f(bad)


@pytest.mark.parametrize("alignment", [0, 3, -64, 48])
def test_bad_alignment(alignment):
    with pytest.raises(ValueError, match="power of two"):
        plan_offsets([(1, 0, 0)], alignment)


def test_arena_views_in_both_layouts():
    n, c, h, w = 1, 6, 5, 7
    buf_bytes = 4 * n * c * h * w
    img_bytes = 4 * n * h * ((c + 3) // 4) * w * 4
    size = max(buf_bytes, img_bytes)
    with Arena([(size, 0, 1), (size, 1, 2), (size, 2, 3)]) as arena:
        assert arena.used_bytes == arena.lower_bound
        assert arena.naive_bytes >= arena.used_bytes
        x = arena.view(0, (n, c, h, w), layout="buffer")
        y = arena.view(1, (n, c, h, w), layout="image")
        z = arena.view(2, (n, h, 2, w, 4))
        assert x.shape == (n, c, h, w) and x.dtype == np.float32
        assert y.shape == (n, h, 2, w, 4) and z.shape == y.shape
        for v in (x, y, z):
            assert v.flags.c_contiguous and v.flags.writeable
            assert v.ctypes.data % 64 == 0
        x[...] = 1.0
        y[...] = 2.0
        assert (x == 1.0).all()  # live together, so disjoint
        z[...] = 3.0  # tensor 2 may reuse tensor 0's bytes: x is dead by then
        assert (y == 2.0).all()


def test_oversize_view_is_refused():
    with Arena([(400, 0, 0)]) as arena:
        arena.view(0, (100,))
        with pytest.raises(ValueError, match="tensor 0 needs 404 bytes"):
            arena.view(0, (101,))
        with pytest.raises(ValueError, match="tensor 0 needs 800 bytes"):
            arena.view(0, (100,), np.float64)
        with pytest.raises(ValueError, match="out of range"):
            arena.view(1, (1,))
        with pytest.raises(ValueError, match="NCHW"):
            arena.view(0, (2, 2), layout="image")


def test_close_refuses_views_and_unmaps_after_last_view():
    arena = Arena([(256, 0, 0), (256, 0, 0)])
    v = arena.view(1, (64,))
    v[:] = 7.0
    arena.close()
    assert arena.closed
    with pytest.raises(ValueError, match="closed"):
        arena.view(0, (64,))
    assert arena.mapped  # the live view keeps the block mapped
    assert (v == 7.0).all()
    del v
    gc.collect()
    assert not arena.mapped
    arena.close()  # twice is harmless


def test_close_without_views_unmaps_at_once():
    arena = Arena([(64, 0, 0)])
    arena.close()
    gc.collect()
    assert not arena.mapped


def test_empty_arena():
    with Arena([]) as arena:
        assert arena.used_bytes == 0 and len(arena) == 0
        assert arena.nbytes == 64
