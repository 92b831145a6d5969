"""What the views read a head's pattern through: `head`, `rows` and `pooled`, as model/core/patterns.py's
Patterns answers them. A capture's full (L, H, T, T) array answers the same way through ArrayPatterns,
so a view written against these three methods works on both and never needs every head at once.
Pure numpy: no torch, no streamlit.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class PatternSource(Protocol):
    """Any head's pattern on demand (model.core.patterns.Patterns, or ArrayPatterns over a full array)."""

    def head(self, layer: int, head: int) -> np.ndarray: ...

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray: ...

    def pooled(self, layer: int, head: int, size: int, reduce: str = "mean") -> np.ndarray: ...


def bins(n: int, size: int) -> np.ndarray:
    """Start index of each of `size` output pixels over n source positions (repeats when n < size)."""
    return np.floor(np.arange(size) * n / size).astype(np.int64)


def pool(a: np.ndarray, size: int, reduce: np.ufunc) -> np.ndarray:
    """Resize the last two axes (..., T, T) -> (..., size, size): block `reduce` down, nearest up."""
    starts = bins(a.shape[-1], size)
    if a.shape[-1] <= size:
        return a[..., starts, :][..., :, starts]
    rows = reduce.reduceat(a, starts, axis=-2)
    return reduce.reduceat(rows, starts, axis=-1)


def block_counts(n: int, size: int) -> np.ndarray:
    """(size,) positions in each pixel's block (1 each when n <= size): what a mean divides by."""
    starts = bins(n, size)
    return np.ones(size) if n <= size else np.diff(np.append(starts, n))


class ArrayPatterns:
    """A read-only PatternSource over a full (L, H, T, T) array: Patterns' answers, from memory."""

    def __init__(self, attention: np.ndarray) -> None:
        self._attention = attention

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._attention.shape)

    def head(self, layer: int, head: int) -> np.ndarray:
        """(T, T) one head, row = query, column = key."""
        return np.asarray(self._attention[layer, head], dtype=np.float32)

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """(stop - start, T) queries [start, stop) over every key."""
        return np.asarray(self._attention[layer, head, start:stop], dtype=np.float32)

    def pooled(self, layer: int, head: int, size: int, reduce: str = "mean") -> np.ndarray:
        """(size, size) block mean (or max) of one head, on Patterns.pooled's bins."""
        pattern = self.head(layer, head)
        if reduce == "max":
            return pool(pattern, size, np.maximum)
        counts = block_counts(pattern.shape[-1], size).astype(np.float32)
        return (pool(pattern, size, np.add) / (counts[:, None] * counts[None, :])).astype(np.float32)


def as_patterns(attention) -> PatternSource:
    """The attention as a PatternSource: itself when it already answers head/rows/pooled, else a view."""
    if all(hasattr(attention, name) for name in ("head", "rows", "pooled")):
        return attention
    return ArrayPatterns(np.asarray(attention))


def dims(source) -> tuple[int, int, int]:
    """(layers, heads, tokens) of a source: its .shape, or Patterns' own counts."""
    shape = getattr(source, "shape", None)
    if shape is not None:
        return int(shape[0]), int(shape[1]), int(shape[2])
    return int(source.n_layers), int(source.n_heads(0)), int(source.n_tokens)
