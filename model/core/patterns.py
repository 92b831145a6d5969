"""Attention patterns on demand: what recomputes every head's pattern exactly, O(T x head_dim) per
layer, instead of the patterns themselves, O(heads x T^2) per layer (1.5 GB at 1,024 tokens).

A head's pattern is softmax(q.k * scaling, softcapped, masked, next to its sink) with the queries and
keys its attention function received (after rotary embeddings). Rows are computed a chunk at a time,
so asking for one head at T tokens allocates O(T^2) once and never (heads, T, T). Importing this
costs no torch (views import it cheaply); computing rows loads it, to use eager's own float32
operations. model/engine/qk_recording.py fills one during a pass.

A Patterns may instead hold the whole (L, H, T, T) array (`Patterns.of_array`): families whose
attention cannot be recomputed (it runs inside their own modules), and short prompts, whose capture
keeps eager's own patterns. Both answer the same API, and index like the (L, H, T, T) array they
stand for (`p[l]`, `p[l, h]`, `np.asarray(p)`), materializing at most MATERIALIZE_BUDGET bytes.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import XrayError

ROW_CHUNK = 256  # query rows computed at once: a (256, T) block of scores, ~4 MB at 4,096 tokens
MATERIALIZE_BUDGET = 256 * 2**20  # bytes: the most `np.asarray(patterns)` or `p[l]` builds at once


@dataclass(frozen=True, eq=False)
class Recipe:
    """How one layer turns its queries and keys into weights, as its attention function was told."""

    scaling: float  # the factor on q.k
    causal: bool = True  # a query sees no key after it
    window: int | None = None  # a query sees only the `window` keys up to itself (sliding-window layers)
    softcap: float | None = None  # scores become tanh(s / softcap) * softcap before the mask (Gemma 2)
    sinks: np.ndarray | None = field(default=None, repr=False)  # (H,) learned sink logit per head (gpt-oss)

    def span(self, start: int, stop: int, n_keys: int) -> tuple[int, int]:
        """The keys [lo, hi) that any query in [start, stop) may see."""
        hi = stop if self.causal else n_keys
        lo = max(0, start - self.window + 1) if self.window is not None and self.causal else 0
        return lo, hi

    def hidden(self, start: int, stop: int, lo: int, hi: int) -> np.ndarray:
        """(stop - start, hi - lo) bool: True where the mask hides key (column) from query (row)."""
        offset = np.arange(start, stop, dtype=np.int32)[:, None] - np.arange(lo, hi, dtype=np.int32)[None, :]
        hidden = offset < 0 if self.causal else np.zeros(offset.shape, dtype=bool)
        return hidden | (offset >= self.window) if self.window is not None else hidden


@dataclass(frozen=True, eq=False)
class Patterns:
    """Every layer's queries, keys and recipe for one prompt, any head's pattern on demand; or (`full`)
    the whole patterns themselves. float32, read-only."""

    queries: tuple[np.ndarray, ...]  # per layer (H, T, hd) as the attention function received them
    keys: tuple[np.ndarray, ...]  # per layer (KV, T, hd); query head h reads kv head h // (H // KV)
    recipes: tuple[Recipe, ...]  # per layer
    full: np.ndarray | None = field(default=None, repr=False)  # (L, H, T, T) instead of the three above

    def __post_init__(self) -> None:
        if not len(self.queries) == len(self.keys) == len(self.recipes):
            raise ValueError("Patterns needs one query array, key array and recipe per layer")
        if self.full is not None and (self.queries or self.full.ndim != 4 or self.full.dtype != np.float32):
            raise ValueError("Patterns holds either queries and keys or one (L, H, T, T) float32 array")
        for q, k in zip(self.queries, self.keys):
            if q.shape[1:] != k.shape[1:] or q.shape[0] % k.shape[0]:
                raise ValueError(f"queries {q.shape} and keys {k.shape} do not pair up")
            q.setflags(write=False)
            k.setflags(write=False)
        if self.full is not None:
            self.full.setflags(write=False)

    @classmethod
    def of_array(cls, full: np.ndarray) -> Patterns:
        """The whole (L, H, T, T) patterns, kept as they are (they take O(L x H x T^2))."""
        return cls((), (), (), full=np.asarray(full, dtype=np.float32))

    @property
    def n_layers(self) -> int:
        return len(self.queries) if self.full is None else int(self.full.shape[0])

    @property
    def n_tokens(self) -> int:
        if self.full is not None:
            return int(self.full.shape[2])
        return int(self.queries[0].shape[1]) if self.queries else 0

    def n_heads(self, layer: int) -> int:
        return int(self.queries[layer].shape[0] if self.full is None else self.full.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held: what a cache budgets (O(layers x T x head_dim), or the whole patterns')."""
        if self.full is not None:
            return int(self.full.nbytes)
        return int(sum(q.nbytes + k.nbytes for q, k in zip(self.queries, self.keys)))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(L, H, T, T): the shape of the array these patterns stand for."""
        T = self.n_tokens
        return self.n_layers, self.n_heads(0) if self.n_layers else 0, T, T

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.n_layers

    def layer(self, layer: int) -> np.ndarray:
        """(H, T, T) every head of one layer: for short prompts (a view of the whole array if held)."""
        if self.full is not None:
            return self.full[layer]
        H, T = self.n_heads(layer), self.n_tokens
        _within_budget(H * T * T * 4, f"layer {layer}'s {H} heads")
        return self.layer_rows(layer, 0, T)

    def __getitem__(self, index: Any) -> np.ndarray:
        """Index like the (L, H, T, T) array: p[l] and p[l, h, ...] build one layer or one head; any
        other index reads the whole array (within the budget)."""
        if self.full is not None:
            return self.full[index]
        if isinstance(index, (int, np.integer)):
            return self.layer(int(index))
        if isinstance(index, tuple) and len(index) >= 2 and all(isinstance(i, (int, np.integer)) for i in index[:2]):
            return self.head(int(index[0]), int(index[1]))[index[2:]]
        if isinstance(index, tuple) and index and isinstance(index[0], (int, np.integer)):
            return self.layer(int(index[0]))[index[1:]]
        return self.__array__()[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole (L, H, T, T) array; an XrayError naming the caller when it exceeds the budget."""
        if self.full is not None:
            return self.full.astype(dtype or np.float32, copy=bool(copy))
        L, H, T, _ = self.shape
        _within_budget(L * H * T * T * 4, "every head's whole pattern")
        whole = np.stack([self.layer(layer) for layer in range(L)])
        return whole if dtype is None else whole.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """The whole array in `dtype` (a copy), as ndarray.astype gives it: for views written for arrays."""
        return self.__array__(dtype, copy=True)

    def prefix(self, n: int) -> Patterns:
        """The patterns of the first n tokens (causal layers: their rows never see later keys)."""
        if self.full is not None:
            return Patterns.of_array(self.full[:, :, :n, :n].copy())
        if not all(r.causal for r in self.recipes):
            raise ValueError("only causal patterns have a prefix of their own")
        return Patterns(tuple(q[:, :n].copy() for q in self.queries), tuple(k[:, :n].copy() for k in self.keys),
                        self.recipes)

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """(stop - start, T) the weights of queries [start, stop) over every key; zero where hidden."""
        if self.full is not None:
            return self.full[layer, head, start:stop].copy()
        return self._rows(layer, [head], start, stop)[0]

    def layer_rows(self, layer: int, start: int, stop: int, keys: int | None = None) -> np.ndarray:
        """(H, stop - start, keys) every head's rows [start, stop) of one layer over the first `keys`
        keys (default: all T), computed together."""
        if self.full is not None:
            return self.full[layer, :, start:stop, :keys].copy()
        return self._rows(layer, list(range(self.n_heads(layer))), start, stop, keys)

    def _rows(self, layer: int, heads: list[int], start: int, stop: int, keys: int | None = None) -> np.ndarray:
        """(len(heads), stop - start, keys or T) a chunk of query rows at a time; zero where hidden."""
        T = self.n_tokens
        width = T if keys is None else keys
        out = np.zeros((len(heads), stop - start, width), dtype=np.float32)
        for first in range(start, stop, ROW_CHUNK):
            last = min(stop, first + ROW_CHUNK)
            lo, hi = self.recipes[layer].span(first, last, T)
            kept = min(hi, width)
            if kept > lo:
                block = self._block(layer, heads, first, last, lo, hi)
                out[:, first - start:last - start, lo:kept] = block[..., :kept - lo]
        return out

    def head(self, layer: int, head: int) -> np.ndarray:
        """(T, T) one head's whole pattern, row = query, column = key."""
        return self.rows(layer, head, 0, self.n_tokens)

    def pooled(self, layer: int, head: int, size: int, reduce: str = "mean") -> np.ndarray:
        """(size, size) overview of one head: each pixel the mean (or max) of its block of the pattern,
        blocks as in viz/head_grid (nearest-neighbour up when T < size). Computed a band of rows at a time,
        over the keys the band's queries may see only (the hidden rest weighs 0 in a mean or a max)."""
        T = self.n_tokens
        starts = pixel_starts(T, size)
        if T <= size:
            return self.head(layer, head)[starts][:, starts]
        ufunc = np.add if reduce == "mean" else np.maximum
        ends = np.append(starts[1:], T)
        out = np.empty((size, size), dtype=np.float32)
        for first, last in _bands(starts, ends):
            start, stop = int(starts[first]), int(ends[last - 1])
            band = np.zeros((stop - start, size), dtype=np.float32)  # the band's rows over its pixel columns
            for top in range(start, stop, ROW_CHUNK):  # one pixel row may span several chunks (past ~8,700 tokens)
                bottom = min(stop, top + ROW_CHUNK)
                lo, hi, block = self._visible(layer, head, top, bottom)
                seen = np.flatnonzero((ends > lo) & (starts < hi))  # pixel columns that reach into [lo, hi)
                edges = np.maximum(starts[seen], lo) - lo  # strictly increasing: only the first can be clipped
                band[top - start:bottom - start, seen[0]:seen[-1] + 1] = ufunc.reduceat(block, edges, axis=1)
            out[first:last] = ufunc.reduceat(band, starts[first:last] - start, axis=0)
        if reduce == "mean":
            counts = (ends - starts).astype(np.float32)
            out /= counts[:, None] * counts[None, :]
        return out

    def _visible(self, layer: int, head: int, start: int, stop: int) -> tuple[int, int, np.ndarray]:
        """The keys [lo, hi) queries [start, stop) may see, and their weights (stop - start, hi - lo)."""
        if self.full is not None:
            return 0, self.n_tokens, self.full[layer, head, start:stop]
        lo, hi = self.recipes[layer].span(start, stop, self.n_tokens)
        return lo, hi, self._block(layer, [head], start, stop, lo, hi)[0]

    def _block(self, layer: int, heads: list[int], start: int, stop: int, lo: int, hi: int) -> np.ndarray:
        """(heads, stop - start, hi - lo) weights of queries [start, stop) over keys [lo, hi) with eager's
        own float32 operations in its order (q.k, * scaling, softcap, mask, softmax with the sink's column):
        the same bits as the family's pattern. torch loads on first use, not on import."""
        import torch

        recipe = self.recipes[layer]
        scores = self._scores(layer, heads, start, stop, lo, hi)
        if recipe.sinks is None:
            return torch.softmax(scores, dim=-1).numpy()
        sink = torch.from_numpy(recipe.sinks[heads].astype(np.float32))[:, None, None]  # (h, 1, 1) per head
        combined = torch.cat([scores, sink.expand(-1, stop - start, 1)], dim=-1)  # the sink's logit joins each row
        combined = combined - combined.max(dim=-1, keepdim=True).values
        return torch.softmax(combined, dim=-1)[..., :-1].numpy()


    def _scores(self, layer: int, heads: list[int], start: int, stop: int, lo: int, hi: int):
        """(heads, stop - start, hi - lo) torch float32 scores, masked to -inf where hidden, eager's way."""
        import torch

        recipe, q = self.recipes[layer], self.queries[layer]
        kv = np.asarray(heads) // (q.shape[0] // self.keys[layer].shape[0])  # each query head's kv head
        queries = torch.from_numpy(q[heads, start:stop])  # (h, R, hd) a copy: fancy indexing
        keys = torch.from_numpy(self.keys[layer][kv, lo:hi])  # (h, K, hd)
        scores = torch.matmul(queries, keys.transpose(1, 2)).mul_(recipe.scaling)  # (h, R, K); in place, the same bits
        if recipe.softcap is not None:
            scores = torch.tanh(scores / recipe.softcap) * recipe.softcap
        # A causal mask without a window hides nothing left of the first query: mask only the columns from it
        # (the same cells, without building and applying a mask over the whole band).
        first = max(lo, min(start, hi)) if recipe.causal and recipe.window is None else lo
        scores[..., first - lo:].masked_fill_(torch.from_numpy(recipe.hidden(start, stop, first, hi)), -torch.inf)
        return scores


def pixel_starts(n: int, size: int) -> np.ndarray:
    """First of n positions in each of `size` pixels (repeats when n < size): the one binning of every
    overview and thumbnail."""
    return np.floor(np.arange(size) * n / size).astype(np.int64)


def as_patterns(attention: Patterns | np.ndarray) -> Patterns:
    """Patterns as they are; a plain (L, H, T, T) array (a test's, a view's input) held whole."""
    return attention if isinstance(attention, Patterns) else Patterns.of_array(np.asarray(attention))


def _within_budget(nbytes: int, what: str) -> None:
    """An XrayError when building `what` would take more than the budget, naming the code that asked."""
    if nbytes <= MATERIALIZE_BUDGET:
        return
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    caller = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
    raise XrayError(f"{caller} asked for {what} at once ({nbytes / 2**20:,.0f} MB, more than the "
                    f"{MATERIALIZE_BUDGET / 2**20:.0f} MB budget): this view needs a window of rows or a "
                    "pooled overview (Patterns.rows, Patterns.pooled) at this prompt length.")


def _bands(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive pixel rows [first, last) grouped so that each band spans at most ROW_CHUNK positions
    (at least one pixel row, which alone may be longer): one chunk of rows each, never a full chunk and
    a sliver."""
    bands, first = [], 0
    for i in range(1, len(starts)):
        if ends[i] - starts[first] > ROW_CHUNK:
            bands.append((first, i))
            first = i
    bands.append((first, len(starts)))
    return bands
