"""The pool reuses a large buffer only once no array over it is alive, keeps its idle buffers within
budget, and a capture on recycled memory equals one on fresh memory."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from model.engine import array_pool, language_model
from model.engine.array_pool import ArrayPool


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _pool(budget: int = 2**30) -> ArrayPool:
    return ArrayPool(idle_budget=lambda: budget, pooled_bytes=1)


VIEWS = {
    "a slice": lambda a: a[1:],
    "a transpose": lambda a: a.T,
    "a tensor's slice": lambda a: torch.from_numpy(a)[2:],
    "the numpy of a tensor of a strided view": lambda a: torch.from_numpy(a[::2]).numpy(),
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_buffer_comes_back_only_when_its_last_view_dies(view):
    pool = _pool()
    first = pool.empty(4, 8)
    address = _address(first)
    survivor = view(first)
    del first
    gc.collect()
    assert pool.idle_bytes == 0
    other = pool.empty(4, 8)
    assert _address(other) != address and pool.reused == 0
    del survivor
    gc.collect()
    assert pool.idle_bytes == 4 * 8 * 4
    assert _address(pool.empty(4, 8)) == address and pool.reused == 1


def test_writes_to_a_reused_buffer_never_reach_a_live_array():
    pool = _pool()
    kept = pool.empty(64, 16)
    kept[...] = 1.0
    view = kept[10:20]
    del kept
    gc.collect()
    fresh = [pool.empty(64, 16) for _ in range(3)]
    for array in fresh:
        array[...] = 7.0
    assert (view == 1.0).all()


def test_a_request_takes_the_smallest_buffer_it_nearly_fills():
    pool = _pool()
    small, big = pool.empty(1000), pool.empty(1060)  # 1,000 floats fit in either within 1/16
    small_at, big_at = _address(small), _address(big)
    del small, big
    gc.collect()
    near = pool.empty(990)  # 990 of 1,000: 1 % to spare
    assert _address(near) == small_at
    assert _address(pool.empty(1000)) == big_at  # 1,000 of 1,060: 6 % to spare


def test_a_request_none_fits_gives_back_every_idle_buffer():
    pool = _pool()
    a, b = pool.empty(1000), pool.empty(2000)
    del a, b
    gc.collect()
    assert pool.idle_bytes == 3000 * 4
    half = pool.empty(500)  # half of the smallest: too much left over to take either
    assert pool.idle_bytes == 0 and pool.reused == 0 and half.shape == (500,)


def test_idle_buffers_stay_within_the_budget():
    pool = _pool(budget=2500 * 4)
    arrays = [pool.empty(1000) for _ in range(3)]
    del arrays
    gc.collect()
    assert pool.idle_bytes == 2000 * 4  # the oldest given back went first


def test_small_arrays_are_not_pooled():
    pool = ArrayPool(idle_budget=lambda: 2**30)  # the real threshold
    small = pool.empty(1000)
    del small
    gc.collect()
    assert pool.idle_bytes == 0
    assert pool.pooled_bytes == array_pool.POOLED_BYTES


@pytest.fixture
def recycling(monkeypatch) -> ArrayPool:
    """Every capture array pooled, however small (tiny models' arrays are KBs)."""
    pool = _pool()
    monkeypatch.setattr(array_pool, "POOL", pool)
    return pool


@pytest.mark.parametrize("long", [False, True])
def test_a_capture_on_recycled_memory_equals_one_on_fresh(tiny_lm, recycling, monkeypatch, long):
    """The second prompt's capture runs on the first's buffers (dropped) and equals its capture on fresh
    memory; an earlier capture still held is untouched by it. `long`: queries and keys, not whole patterns."""
    if long:
        monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    one, two = list(range(3, 30)), list(range(40, 67))
    held = tiny_lm.capture_ids(one)
    held_residual = held.residual.copy()
    tiny_lm.capture_ids(two)  # dropped: its buffers go idle
    gc.collect()
    assert recycling.idle_bytes > 0
    recycled = tiny_lm.capture_ids(two)
    assert recycling.reused >= 4  # the stream, both writes and (long) the queries or (short) the patterns
    np.testing.assert_array_equal(held.residual, held_residual)
    monkeypatch.setattr(array_pool, "POOL", ArrayPool(idle_budget=lambda: 0))  # fresh memory, nothing kept
    fresh = tiny_lm.capture_ids(two)
    for name in ("residual", "attn_out", "mlp_out"):
        np.testing.assert_array_equal(getattr(recycled, name), getattr(fresh, name))
    np.testing.assert_array_equal(np.asarray(recycled.attention), np.asarray(fresh.attention))
