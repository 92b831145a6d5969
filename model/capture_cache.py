"""A thread-safe LRU of Captures with a byte budget: the app's memory stays bounded however many
prompts its users type, and two sessions asking for the same prompt compute it once.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from .capture import Capture
from .settings import load_settings



class CaptureCache:
    """Least-recently-used captures, evicted once their total bytes pass the budget.

    A capture larger than the whole budget is returned but not kept.
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = budget_bytes or load_settings().cache_mb * 2**20
        self._items: OrderedDict[str, Capture] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.computed = 0  # how many captures were actually run (tests count these)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(c.nbytes for c in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Capture | None:
        with self._lock:
            cap = self._items.get(key)
            if cap is not None:
                self._items.move_to_end(key)
            return cap

    def get_or_compute(self, key: str, compute: Callable[[], Capture]) -> Capture:
        """The cached capture for key, else compute it once (concurrent callers wait and share)."""
        cap = self.get(key)
        if cap is not None:
            return cap
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            cap = self.get(key)
            if cap is None:
                cap = compute()
                self.computed += 1
                self._put(key, cap)
        with self._lock:
            self._key_locks.pop(key, None)
        return cap

    def _put(self, key: str, cap: Capture) -> None:
        with self._lock:
            if cap.nbytes > self.budget_bytes:
                return
            self._items[key] = cap
            self._items.move_to_end(key)
            total = sum(c.nbytes for c in self._items.values())
            while total > self.budget_bytes and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                total -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
