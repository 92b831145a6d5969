"""Results derived from a capture (logit lens, head statistics, one layer's queries and keys, ablated
logits, induction scores): one process-wide, byte-bounded LRU shared by every session.

Pages reach it only through `derived(kind, key, compute)`: the cache behind it needs nothing but
`get_or_compute(key, compute)`, so a generic LRU (model/lru.py) can replace `ResultCache`.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

import numpy as np
import streamlit as st

T = TypeVar("T")
BUDGET_BYTES = 512 * 2**20  # every derived result together; one ablated pass at 512 tokens is ~100 MB


def nbytes(value: Any) -> int:
    """Bytes held by the arrays inside a result (an array, a dataclass of arrays or a dict of them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    return 0


class ResultCache:
    """Least-recently-used results, evicted once their arrays pass the byte budget (thread-safe).

    A result larger than the whole budget is returned but not kept."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # results actually computed (tests count these)

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        """The cached result for key, else compute it (outside the lock) and keep it."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        size = nbytes(value)
        with self._lock:
            self.computed += 1
            if size <= self.budget_bytes:
                self._items[key] = (value, size)
                total = sum(s for _, s in self._items.values())
                while total > self.budget_bytes:
                    _, (_, evicted) = self._items.popitem(last=False)
                    total -= evicted
        return value


@st.cache_resource(show_spinner=False)
def result_cache() -> ResultCache:
    """The one derived-result cache of the process."""
    return ResultCache(BUDGET_BYTES)


def derived(kind: str, key: str, compute: Callable[[], T]) -> T:
    """A result of `kind` ("lens", "ablation"...) for a plain-string key, computed once per process."""
    return result_cache().get_or_compute(f"{kind}\x1f{key}", compute)
