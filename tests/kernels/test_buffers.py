"""The recycled memory of rnnkit.kernels.buffers is never shared by two live arrays."""

from __future__ import annotations

import numpy as np

from rnnkit.kernels import buffers


def test_memory_is_reused_only_after_every_view_is_gone():
    shape = (64, 300)  # above the pool's size threshold
    a = buffers.empty(shape)
    assert a.shape == shape
    assert a.dtype == np.float32
    assert a.flags.c_contiguous
    assert a.ctypes.data % 64 == 0
    view = a[10:20].T
    address = a.ctypes.data
    del a
    b = buffers.empty(shape)
    assert not np.shares_memory(b, view)  # the view keeps the memory out of reuse
    del view
    c = buffers.empty(shape)
    assert c.ctypes.data == address  # free again: recycled
    assert not np.shares_memory(b, c)
    small = buffers.empty((3, 4))
    assert small.base is None  # small arrays come straight from np.empty


def test_a_frozen_cache_array_keeps_its_memory(kcheck, rng):
    cell = kcheck.CELLS["lstm"]
    inputs = kcheck.make_inputs(rng, cell, 20, 8, 5, 64)
    inputs = {k: v.astype(np.float32) for k, v in inputs.items()}
    y1, _, _, cache = cell.forward(**inputs)
    gates = cache.gates.copy()
    for _ in range(3):  # later calls must not write into memory the cache still holds
        cell.backward(np.ones_like(y1), None, None, cell.forward(**inputs)[-1])
    np.testing.assert_array_equal(cache.gates, gates)
    assert not np.shares_memory(y1, cell.forward(**inputs)[0])
