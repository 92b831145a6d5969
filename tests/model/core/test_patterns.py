"""Patterns on demand (model/core/patterns.py): each head's pattern from its queries, keys and recipe
equals the textbook softmax, any band of rows and the pooled overview equal slices and block means of
the whole pattern, and one head at 4,096 tokens never allocates the (heads, T, T) patterns."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.core.patterns import ROW_CHUNK, Patterns, Recipe

H, KV, HD = 4, 2, 8
RECIPES = {
    "causal": Recipe(scaling=HD ** -0.5),
    "window": Recipe(scaling=HD ** -0.5, window=5),
    "softcap": Recipe(scaling=0.5, softcap=1.5),
    "sinks": Recipe(scaling=HD ** -0.5, window=7, sinks=np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)),
    "full": Recipe(scaling=HD ** -0.5, causal=False),
}


def _patterns(recipe: Recipe, n: int, seed: int = 0, heads: int = H, kv: int = KV, hd: int = HD) -> Patterns:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(heads, n, hd)).astype(np.float32) * 2
    k = rng.normal(size=(kv, n, hd)).astype(np.float32) * 2
    return Patterns((q,), (k,), (recipe,))


def _textbook(p: Patterns, head: int) -> np.ndarray:
    """(T, T) the pattern written out in float64, the whole score matrix at once."""
    recipe, q = p.recipes[0], p.queries[0][head].astype(np.float64)
    k = p.keys[0][head // (H // KV)].astype(np.float64)
    s = q @ k.T * recipe.scaling
    if recipe.softcap is not None:
        s = np.tanh(s / recipe.softcap) * recipe.softcap
    i, j = np.indices(s.shape)
    hidden = (j > i) if recipe.causal else np.zeros(s.shape, dtype=bool)
    if recipe.window is not None:
        hidden |= i - j >= recipe.window
    s = np.where(hidden, -np.inf, s)
    sink = -np.inf if recipe.sinks is None else float(recipe.sinks[head])
    top = np.maximum(s.max(axis=1, keepdims=True), sink)
    e = np.exp(s - top)
    return e / (e.sum(axis=1, keepdims=True) + np.exp(sink - top))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_head_equals_the_textbook_softmax(name):
    p = _patterns(RECIPES[name], 37)
    for head in range(H):
        np.testing.assert_allclose(p.head(0, head), _textbook(p, head), atol=1e-6)


def test_grouped_heads_read_their_shared_key_head():
    """Query heads 0 and 1 share kv head 0: with equal queries their patterns are equal; head 2's differs."""
    p = _patterns(RECIPES["causal"], 12)
    q = p.queries[0].copy()
    q[1], q[2] = q[0], q[0]
    same = Patterns((q,), p.keys, p.recipes)
    np.testing.assert_array_equal(same.head(0, 0), same.head(0, 1))
    assert np.abs(same.head(0, 0) - same.head(0, 2)).max() > 1e-3


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_rows_are_slices_of_the_head_across_chunks(name):
    n = ROW_CHUNK + 90
    p = _patterns(RECIPES[name], n, heads=2, kv=1)
    whole = p.head(0, 1)
    for start, stop in [(0, 1), (3, 40), (ROW_CHUNK - 5, ROW_CHUNK + 7), (n - 3, n), (0, n)]:
        np.testing.assert_allclose(p.rows(0, 1, start, stop), whole[start:stop], atol=1e-6)  # a chunk: ~1 ulp


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_layer_rows_over_the_first_keys_are_slices_of_all_keys(name):
    n = ROW_CHUNK + 90
    p = _patterns(RECIPES[name], n)
    whole = p.layer_rows(0, 0, n)  # (H, n, n)
    for start, stop, keys in [(0, 40, 40), (0, ROW_CHUNK + 10, ROW_CHUNK + 10), (10, 30, 50), (5, 60, 12)]:
        np.testing.assert_allclose(p.layer_rows(0, start, stop, keys=keys), whole[:, start:stop, :keys], atol=1e-6)


def _block_reduce(whole: np.ndarray, size: int, ufunc: np.ufunc) -> np.ndarray:
    """viz/head_grid's pooling of the whole pattern (the same bins)."""
    n = whole.shape[0]
    starts = np.floor(np.arange(size) * n / size).astype(np.int64)
    return ufunc.reduceat(ufunc.reduceat(whole, starts, axis=0), starts, axis=1), np.diff(np.append(starts, n))


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize(("n", "size"), [(700, 34), (700, 64), (300, 299), (20, 34), (3 * ROW_CHUNK + 10, 2)])
def test_pooled_is_the_block_mean_or_max_of_the_whole_pattern(n, size, name):
    """Each recipe hides other cells (a window clips the band's first pixel column): the hidden ones
    weigh 0 in the mean and the max, as in the whole pattern. A pixel row longer than a chunk of rows
    (the last case) is computed a chunk at a time."""
    p = _patterns(RECIPES[name], n, heads=2, kv=1)
    whole = p.head(0, 1)
    if n <= size:  # nearest-neighbour up, as the grid does
        starts = np.floor(np.arange(size) * n / size).astype(np.int64)
        np.testing.assert_array_equal(p.pooled(0, 1, size), whole[starts][:, starts])
        return
    sums, counts = _block_reduce(whole, size, np.add)
    np.testing.assert_allclose(p.pooled(0, 1, size), sums / np.outer(counts, counts), atol=1e-6)
    np.testing.assert_allclose(p.pooled(0, 1, size, "max"), _block_reduce(whole, size, np.maximum)[0], atol=1e-6)


PEAK = """
import resource
import sys

import numpy as np

from model.core.patterns import Patterns, Recipe

n, heads = 4096, 8
rng = np.random.default_rng(0)
p = Patterns((rng.normal(size=(heads, n, 16)).astype(np.float32),), (rng.normal(size=(2, n, 16)).astype(np.float32),),
             (Recipe(scaling=0.25),))
Patterns((p.queries[0][:, :300],), (p.keys[0][:, :300],), p.recipes).head(0, 0)  # torch loads, kernels warm up
peak = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]  # KiB
p.pooled(0, 5, 64)
peak.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
p.head(0, 5)
peak.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(peak[1] - peak[0], peak[2] - peak[0])
"""


def test_one_head_at_4096_tokens_never_builds_every_heads_pattern():
    """Peak memory of a fresh interpreter, torch's allocations included (tracemalloc sees only numpy's)."""
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    pooled, head = (int(kib) * 1024 for kib in out.stdout.split())
    one, heads = 4096 * 4096 * 4, 8  # one head's (T, T) float32: 64 MiB; every head's: 512 MiB
    assert head < 2 * one <= heads * one / 4  # the answer and one chunk's scratch
    assert pooled < one / 2  # a band of rows at a time: no (T, T) at all


def test_patterns_hold_only_queries_and_keys():
    p = _patterns(RECIPES["causal"], 50)
    assert p.nbytes == (H + KV) * 50 * HD * 4


def test_mismatched_queries_and_keys_are_refused():
    q, k = np.zeros((4, 5, 8), np.float32), np.zeros((3, 5, 8), np.float32)
    with pytest.raises(ValueError, match="pair up"):
        Patterns((q,), (k,), (Recipe(scaling=1.0),))
