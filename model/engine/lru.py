"""A thread-safe least-recently-used cache bounded by bytes, which
computes each missing key once however many threads ask for it at the same time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")


def _nbytes(value) -> int:
    return int(value.nbytes)


class BoundedLRU(Generic[V]):
    """Values evicted oldest-first once their total size passes `budget_bytes`. A value larger than
    the whole budget is returned but not kept."""

    def __init__(self, budget_bytes: int, size: Callable[[V], int] = _nbytes) -> None:
        self.budget_bytes = int(budget_bytes)
        self._size = size
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()  # key -> (value, bytes)
        self._total = 0
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, tuple[threading.Lock, int]] = {}  # key -> (lock, waiters)
        self.computed = 0  # values actually computed (tests count these)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._total

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Hashable) -> V | None:
        """The value for key (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def values(self) -> Iterator[V]:
        """A snapshot of the values, least recently used first (for lookups by content)."""
        with self._lock:
            return iter([value for value, _ in self._items.values()])

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for key, else compute it once: concurrent callers of one key wait for the
        first and share its value; other keys compute in parallel (the cache lock is not held)."""
        value = self.get(key)
        if value is not None:
            return value
        key_lock = self._enter(key)
        try:
            with key_lock:
                value = self.get(key)
                if value is None:
                    value = compute()
                    with self._lock:
                        self.computed += 1
                    self.put(key, value)
        finally:
            self._leave(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        """Keep value under key (replacing any), then evict least-recently-used to fit the bounds."""
        nbytes = int(self._size(value))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old[1]
            if nbytes > self.budget_bytes:
                return
            self._items[key] = (value, nbytes)
            self._total += nbytes
            while len(self._items) > 1 and self._total > self.budget_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._total -= evicted

    def _enter(self, key: Hashable) -> threading.Lock:
        with self._lock:
            lock, waiters = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, waiters + 1)
            return lock

    def _leave(self, key: Hashable) -> None:
        with self._lock:
            lock, waiters = self._key_locks[key]
            if waiters == 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, waiters - 1)
