"""Every head's pooled overview at once (the head grid's thumbnails): one head per task, spread over
the cores for a long prompt's queries and keys, where each head is computed again from them (at
2,000 tokens 270 heads took 3.9 s on one core of this 2-core machine, 2.3 s on two); whole patterns
of a short prompt are only read, on this thread."""
from __future__ import annotations

import numpy as np

from ..core.patterns import Patterns
from ..engine.threads import in_workers, long_work_threads


def pooled_heads(attention: Patterns, size: int, reduce: str = "max") -> np.ndarray:
    """(L, H, size, size) float32: `attention.pooled(layer, head, size, reduce)` of every head."""
    L, H = attention.n_layers, attention.n_heads(0)
    out = np.empty((L, H, size, size), dtype=np.float32)

    def work(index: int) -> None:
        out[index // H, index % H] = attention.pooled(index // H, index % H, size, reduce)

    in_workers(work, range(L * H), 1 if attention.full is not None else long_work_threads())
    return out
