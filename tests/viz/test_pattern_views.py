"""Views read a head through head/rows/pooled: Patterns held whole (a short prompt's, or a plain array
given to a view) answers them as the blocks of the array, and the grid's pooled thumbnails equal the
tiles it drew from the whole array on short prompts."""
from __future__ import annotations

import numpy as np
import pytest

from model.core.patterns import Patterns, as_patterns
from viz import head_grid


def _old_thumbnails(attention: np.ndarray, cell: int) -> np.ndarray:
    """The grid's tiles as they were drawn from the whole (L, H, T, T) array: the reference."""
    L, H, T, _ = attention.shape
    inner = cell - 2
    starts = np.floor(np.arange(inner) * T / inner).astype(np.int64)

    def pool(a, reduce):
        if T <= inner:
            return a[..., starts, :][..., :, starts]
        return reduce.reduceat(reduce.reduceat(a, starts, axis=-2), starts, axis=-1)

    rows = attention / np.maximum(attention.max(axis=-1, keepdims=True), 1e-9)
    weights = np.clip(pool(rows, np.maximum), 0, 1)
    masked = pool(np.triu(np.ones((T, T), dtype=bool), k=1), np.logical_and)
    rgb = np.where(masked[..., None], head_grid._MASKED, head_grid._LOW + weights[..., None] * (head_grid._HIGH - head_grid._LOW))
    tiles = np.broadcast_to(head_grid._BORDER, (L, H, cell, cell, 3)).copy()
    tiles[:, :, 1:-1, 1:-1] = rgb.astype(np.uint8)
    return tiles.transpose(1, 2, 0, 3, 4).reshape(H * cell, L * cell, 3)


@pytest.mark.parametrize("n_tokens", [9, 20, 34])
def test_pooled_thumbnails_equal_the_whole_array_tiles_on_short_prompts(capture_builder, n_tokens) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(n_tokens)], n_layers=2, n_heads=3)
    assert np.array_equal(head_grid.thumbnails(cap.attention), _old_thumbnails(np.asarray(cap.attention), head_grid.CELL))


def test_long_thumbnails_mark_the_same_masked_blocks(capture_builder) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(100)], n_layers=1, n_heads=2)
    new, old = head_grid.thumbnails(cap.attention), _old_thumbnails(np.asarray(cap.attention), head_grid.CELL)
    grey = np.all(old == head_grid._MASKED.astype(np.uint8), axis=-1)
    assert np.array_equal(np.all(new == head_grid._MASKED.astype(np.uint8), axis=-1), grey)


@pytest.mark.parametrize(("n_tokens", "size"), [(10, 16), (50, 16), (64, 16)])
def test_whole_patterns_pool_as_block_mean_and_max(capture_builder, n_tokens, size) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(n_tokens)], n_layers=1, n_heads=1)
    source, head = cap.attention, cap.attention[0, 0]
    starts = np.floor(np.arange(size) * n_tokens / size).astype(int)
    ends = np.append(starts[1:], n_tokens) if n_tokens > size else starts + 1
    mean, top = source.pooled(0, 0, size), source.pooled(0, 0, size, "max")
    for i, j in [(0, 0), (size - 1, 0), (size - 1, size - 1), (size // 2, 3)]:
        block = head[starts[i]:ends[i], starts[j]:ends[j]]
        assert mean[i, j] == pytest.approx(block.mean(), abs=1e-6) and top[i, j] == pytest.approx(block.max())
    assert np.array_equal(source.rows(0, 0, 3, 7), head[3:7]) and np.array_equal(source.head(0, 0), head)


def test_as_patterns_keeps_patterns_and_wraps_an_array(synthetic_capture) -> None:
    array = np.asarray(synthetic_capture.attention)
    wrapped = as_patterns(array)
    assert isinstance(wrapped, Patterns) and as_patterns(wrapped) is wrapped
    assert wrapped.shape[:3] == (2, 3, len(synthetic_capture.tokens)) and np.array_equal(wrapped.head(1, 2), array[1, 2])
