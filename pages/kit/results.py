"""Results derived from a capture (logit lens, head statistics, one layer's queries and keys, ablated
logits, induction scores): one process-wide, byte-bounded LRU shared by every session.

Pages reach it only through `derived(kind, key, compute)`; the cache is the generic one (model/engine/lru.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from model.core.keys import cache_key
from model.core.settings import settings
from model.engine.lru import BoundedLRU

T = TypeVar("T")


def nbytes(value: Any) -> int:
    """Bytes held by a result: an array, a string, a dataclass of arrays or a dict of them."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, str):  # e.g. a PNG data URI
        return len(value)
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    return 0


@st.cache_resource(show_spinner=False)
def result_cache() -> BoundedLRU:
    """The one derived-result cache of the process, bounded by XRAY_RESULTS_MB (every result together;
    one ablated pass at 512 tokens is ~100 MB); a result larger than the budget is not kept."""
    return BoundedLRU(settings().results_mb * 2**20, size=nbytes)


def derived(kind: str, key: str, compute: Callable[[], T]) -> T:
    """A result of `kind` ("lens", "ablation"...) for a plain-string key, computed once per process."""
    return result_cache().get_or_compute(cache_key(kind, key), compute)
