"""The hardware model's C layer: cache maintenance, arena blocks, the flag wait."""
import numpy as np
import pytest

from coinfer.hw import memory as M


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_cache_maintenance_returns_bytes():
    a = rand(7, 3, 4, 5)
    assert M.cache_clean(a) == a.nbytes
    assert M.cache_flush(a) == a.nbytes
    assert M.cache_clean(np.zeros(0, np.float32)) == 0
    assert M.cache_flush(np.zeros((2, 0), np.float32)) == 0
    view = a[:, 1:3]  # non-contiguous: the span from its first to its last element
    span = (view.size and (view[-1, -1, -1:].ctypes.data + 4 - view.ctypes.data))
    assert M.cache_clean(view) == span
    assert M.cache_flush(view) == span
    b = np.zeros(10, np.uint8)
    assert M.cache_clean(b) == 10



def test_cache_maintenance_rejects_non_arrays():
    with pytest.raises(TypeError):
        M.cache_clean([1, 2])


def test_block_map_and_flag_wait():
    p = M.map_block(4096)
    assert p is not None
    released = []
    buf = M.block_buffer(p, 4096, lambda q: (M.unmap_block(q, 4096), released.append(1)))
    assert buf.nbytes == 4096 and not buf.any()
    del buf
    import gc
    gc.collect()
    assert released == [1]
    assert M.map_block(0) is None
    flag = M.new_flag()
    assert not M.spin_wait(flag, 1e-4)
    flag[0] = 1
    assert M.spin_wait(flag, 0.0)
