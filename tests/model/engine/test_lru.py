"""The generic LRU: bounded by bytes and by entries, least-recently-used out first, one compute per
key however many threads ask at once, and different keys computed in parallel."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model.engine.lru import BoundedLRU


def array(n: int, value: float = 0.0) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)  # 4n bytes


def test_byte_budget_evicts_least_recently_used():
    cache = BoundedLRU(budget_bytes=100)
    for key in "abc":
        cache.get_or_compute(key, lambda: array(10))  # 40 bytes each: two fit
    assert len(cache) == 2 and cache.nbytes == 80 and cache.get("a") is None
    cache.get("b")  # b is now the most recent: c goes next
    cache.get_or_compute("d", lambda: array(10))
    assert cache.get("c") is None and cache.get("b") is not None


def test_counter_counts_computations_not_hits():
    cache = BoundedLRU(budget_bytes=2**20)
    for key in "abc":
        cache.get_or_compute(key, lambda: array(4))
    assert cache.get_or_compute("c", lambda: array(4, 1.0))[0] == 0.0  # cached, not recomputed
    assert len(cache) == 3 and cache.computed == 3


def test_oversized_value_is_returned_not_kept():
    cache = BoundedLRU(budget_bytes=10)
    value = cache.get_or_compute("big", lambda: array(100))
    assert value.size == 100 and len(cache) == 0 and cache.nbytes == 0


def test_custom_size_and_replacing_a_key():
    cache = BoundedLRU(budget_bytes=5, size=len)
    cache.put("x", "abc")
    cache.put("x", "abcd")
    assert cache.nbytes == 4 and cache.get("x") == "abcd"


def test_concurrent_callers_of_one_key_compute_once():
    cache = BoundedLRU(budget_bytes=2**20)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return array(4)

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: cache.get_or_compute("same", slow), range(8)))
    assert len(calls) == 1 and cache.computed == 1 and all(v is values[0] for v in values)


def test_different_keys_compute_in_parallel():
    cache = BoundedLRU(budget_bytes=2**20)
    barrier = threading.Barrier(2, timeout=5)  # breaks (raises) if the two computes were serialized

    def compute():
        barrier.wait()
        return array(4)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda k: cache.get_or_compute(k, compute), ["a", "b"]))
    assert len(cache) == 2


def test_make_room_evicts_least_recently_used_before_a_compute():
    cache = BoundedLRU(budget_bytes=100)
    for key in "abc":
        cache.put(key, array(8))  # 32 bytes each: 96 of 100
    cache.get("a")  # a is now the most recent: b, then c, go first
    cache.make_room(4)
    assert len(cache) == 3  # 4 more bytes fit: nothing goes
    cache.make_room(30)
    assert cache.nbytes == 64 and cache.get("b") is None  # (get would make c the most recent)
    cache.make_room(60)
    assert cache.nbytes == 32 and cache.get("c") is None and cache.get("a") is not None


def test_make_room_keeps_everything_for_a_value_never_kept():
    cache = BoundedLRU(budget_bytes=100)
    cache.put("a", array(8))
    cache.make_room(101)  # larger than the budget: the value will not be kept, so nothing makes way
    assert cache.get("a") is not None


def test_make_room_keeps_the_value_the_work_starts_from():
    """An extension reads its base while it runs: the base stays (now the most recent), the others go."""
    cache = BoundedLRU(budget_bytes=100)
    for key in "abc":
        cache.put(key, array(8))
    base = cache.get("a")
    cache.get("b")
    cache.get("c")  # a is the least recently used
    cache.make_room(30, keep=base)  # one must go: b, the least recent but a
    assert cache.nbytes == 64 and cache.get("b") is None and cache.get("a") is base
    cache.make_room(90, keep=base)  # room for 90 would need a to go too: it stays alone
    assert len(cache) == 1 and cache.get("a") is base
