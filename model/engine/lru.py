"""A thread-safe least-recently-used cache bounded by bytes, which computes each missing key once
however many threads ask for it at the same time.

cachetools keeps the values: `LRUCache(maxsize, getsizeof)` bounds them by bytes and evicts the least
recently used, and `cached(..., condition=...)` makes concurrent callers of one key wait for the first
while other keys compute in parallel. What it lacks, and this adds: one lock around every use of the
cache (LRUCache alone is not thread-safe), a compute function given per call rather than one decorated
function, and a count of the values actually computed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from cachetools import LRUCache, cached

V = TypeVar("V")


def _nbytes(value) -> int:
    return int(value.nbytes)


class BoundedLRU(Generic[V]):
    """Values evicted oldest-first once their total size passes `budget_bytes`. A value larger than
    the whole budget is returned but not kept."""

    def __init__(self, budget_bytes: int, size: Callable[[V], int] = _nbytes) -> None:
        self.budget_bytes = int(budget_bytes)
        self._cache: LRUCache[Hashable, V] = LRUCache(self.budget_bytes, getsizeof=lambda v: int(size(v)))
        self._lock = threading.Condition()  # guards the cache; waiters for a key being computed wait on it
        self._cached = cached(self._cache, key=lambda key, compute: key, condition=self._lock)(self._compute)
        self.computed = 0  # values actually computed (tests count these)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def get(self, key: Hashable) -> V | None:
        """The value for key (now the most recently used), or None."""
        with self._lock:
            return self._cache.get(key)

    def values(self) -> Iterator[V]:
        """A snapshot of the values, in the order they were stored (for lookups by content)."""
        with self._lock:
            return iter(list(self._cache.values()))

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for key, else compute it once: concurrent callers of one key wait for the
        first and share its value; other keys compute in parallel (the cache lock is not held)."""
        return self._cached(key, compute)

    def put(self, key: Hashable, value: V) -> None:
        """Keep value under key (replacing any), then evict least-recently-used to fit the budget."""
        with self._lock:
            self._cache.pop(key, None)
            try:
                self._cache[key] = value
            except ValueError:  # larger than the whole budget: not kept
                pass

    def make_room(self, nbytes: int, keep: V | None = None) -> None:
        """Evict least-recently-used values until `nbytes` more fit, before the value that needs them is
        computed (they would go after it anyway): its work reuses their memory instead of growing the
        process. `keep` (the value that work starts from) stays, now the most recently used. Nothing is
        evicted for a value larger than the whole budget, which is never kept."""
        with self._lock:
            if nbytes > self.budget_bytes:
                return
            while self._cache.currsize + nbytes > self.budget_bytes:
                if len(self._cache) == 1 and keep is not None and next(iter(self._cache.values())) is keep:
                    return
                key, value = self._cache.popitem()
                if value is keep:
                    self._cache[key] = value

    def _compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        value = compute()
        with self._lock:
            self.computed += 1
        return value
