"""Keeping, during a pass, what recomputes every layer's attention patterns exactly (model/core/patterns.py):
the queries and keys each attention function received and its recipe, read from the call itself (the
scaling it was given, its softcap and sinks, what its mask hides), not from a table of families.

Each layer's recipe is checked as it is heard: the family's own eager attention, rerun in float32 on a
few query rows (the first and the last), must give the weights the recipe gives. A call the recipe
cannot follow (a mask that adds a bias such as ALiBi, a position bias, an unknown argument that moves
the scores, attention computed outside transformers' interface) leaves a `problem` and nothing is
kept from then on: the caller refuses or keeps the full patterns, never shows a wrong number.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import torch

from ..core.patterns import Patterns, Recipe
from . import array_pool
from .attention import FAST, Call, family_eager, listening
from .layout import Layout

PROBE_ROWS = 8  # query rows at each end of the prompt on which the family's eager checks the recipe
TOLERANCE = 1e-5  # our float32 softmax against the family's: rounding is ~1e-7, a wrong recipe far more
SCORE_BIASES = ("position_bias",)  # arguments the sdpa kernel adds to the scores (T5-style biases)


class _Refused(Exception):
    """A call the recipe cannot follow; the message says why."""


class PatternRecording:
    """For one pass: every layer's queries, keys and recipe, or the reason they cannot rebuild its
    patterns. Pass `hooks` to `LanguageModel.forward` under FAST or LISTEN. A single sequence by
    default; `row` keeps the first `n_tokens` positions of one row of a right-padded batch (a causal
    row's own positions never see the padding after them); `past` says how many cached positions come
    before the queries (their keys arrive already rotated, in the cache)."""

    def __init__(self, n_layers: int, row: int | None = None, n_tokens: int | None = None, past: int = 0,
                 length: int | None = None) -> None:
        """`length`: the positions a pass that comes in chunks hears in all (each chunk's queries go to their
        place; each layer's keys are the last chunk's, which cover every position)."""
        self.row, self.n_tokens, self.past, self.length = row, n_tokens, past, length
        self.queries: list[np.ndarray | None] = [None] * n_layers
        self._block: np.ndarray | None = None  # (L, H, n, hd): every layer's queries in one allocation
        self._heard = [0] * n_layers  # query positions each layer has heard so far (chunks)
        self.keys: list[np.ndarray | None] = [None] * n_layers
        self.recipes: list[Recipe | None] = [None] * n_layers
        self._problem: str | None = None
        self._masks: dict[int, tuple[torch.Tensor, tuple[bool, int | None]]] = {}  # id -> (mask, reading)

    def _query_slot(self, call: Call, query: np.ndarray, offset: int) -> np.ndarray:
        """The layer's queries so far (this call's at `offset`) in their place in one block for all layers,
        allocated at the first layer: one mapping the allocator returns whole, not one buffer per layer
        between the pass's own (per-layer buffers kept the freed activations around them from going back)."""
        H, n, hd = query.shape
        shape = (H, self.length or n, hd)
        if self._block is None:
            self._block = array_pool.empty(len(self.queries), *shape)
        elif self._block.shape[1:] != shape:  # layers of different shapes: each keeps its own
            if self.length:
                raise _Refused("its layers' queries differ in shape, which a pass in chunks cannot place")
            return query.copy()
        slot = self._block[call.layer]
        slot[:, offset:offset + n] = query
        return slot[:, :offset + n]

    def hooks(self, layout: Layout) -> AbstractContextManager[None]:
        return listening(layout, self.hear)

    @property
    def problem(self) -> str | None:
        """Why the patterns cannot be rebuilt from what was kept; None when every layer was kept."""
        if self._problem is None and any(q is None for q in self.queries):
            return ("this family computes attention inside its own modules instead of through transformers' "
                    "attention interface, so the queries and keys it used cannot be kept")
        if self._problem is None and self.length and any(heard != self.length for heard in self._heard):
            return f"a pass in chunks reached its layers' attention for {sorted(set(self._heard))} of {self.length} positions"
        return self._problem

    def _kept(self) -> tuple[list[np.ndarray], list[np.ndarray], list[Recipe]]:
        """Every layer's queries, keys and recipe; a ValueError naming the problem when there is one
        (no problem means every layer was heard)."""
        if self.problem is not None:
            raise ValueError(self.problem)
        return ([q for q in self.queries if q is not None], [k for k in self.keys if k is not None],
                [r for r in self.recipes if r is not None])

    def result(self) -> Patterns:
        """What was kept, as plain data."""
        queries, keys, recipes = self._kept()
        return Patterns(tuple(queries), tuple(keys), tuple(recipes))

    def extended(self, base: Patterns) -> Patterns:
        """The patterns of base's first `past` tokens and this pass's: the prefix's queries from base, every
        key from this pass (the cached ones included), base's recipes (a pass over one new query cannot
        tell a causal mask from none)."""
        queries, keys, _ = self._kept()
        joined = tuple(np.concatenate([q[:, :self.past], new], axis=1) for q, new in zip(base.queries, queries))
        return Patterns(joined, tuple(keys), base.recipes)

    @staticmethod
    def together(recordings: list[PatternRecording]) -> Callable[[Layout], AbstractContextManager[None]]:
        """Hooks for one pass that every recording hears (a batch's rows: one listener per module)."""
        def hear(call: Call) -> None:
            for recording in recordings:
                recording.hear(call)
        return lambda layout: listening(layout, hear)

    def hear(self, call: Call) -> None:
        """The listener `hooks` routes every layer to: keep the layer's queries, keys and checked recipe,
        or note why not."""
        if self._problem is not None:
            return
        try:
            offset = self._heard[call.layer]  # a chunk after the first: the positions its layer heard before
            recipe = self._recipe(call, self.past + offset)
            row, n = self.row or 0, self.n_tokens or call.query.shape[-2]
            # A one-row pass's keys are the very tensor its cache keeps (transformers' cache returns it to the
            # attention function): a view of it, not a copy, so the capture's kv and patterns share 94 MB at 4,096 tokens.
            shared = call.key.shape[0] == 1
            chunk = _numpy(call.query[row, :, :n], shared=True)  # (H, n, hd)
            key = _numpy(call.key[row, :, :self.past + offset + n], shared)  # (KV, past+offset+n, hd)
            if not offset or offset + n == self.length:  # a pass in chunks: its first and its last (8x the
                _check(call, recipe, chunk, key, row, self.past + offset)  # work of a whole pass's check else)
            query = self._query_slot(call, chunk, offset)
            if offset and not _same_recipe(recipe, self.recipes[call.layer]):
                raise _Refused("its chunks were told of different masks or scalings")
        except _Refused as refused:
            self._problem = f"layer {call.layer}: {refused}"
            return
        self._heard[call.layer] = offset + n
        self.queries[call.layer], self.keys[call.layer] = query, key
        if not offset:
            self.recipes[call.layer] = recipe

    def _recipe(self, call: Call, past: int) -> Recipe:
        """The recipe the call's own arguments state (scaling, softcap, sinks, what its mask hides), its
        queries coming after `past` cached positions."""
        if (self.row is None and call.query.shape[0] != 1) or call.query.shape[-2] + past != call.key.shape[-2]:
            raise _Refused("only a single sequence (or a chosen row) with the cached keys it was told of is kept")
        biases = [name for name in SCORE_BIASES if call.kwargs.get(name) is not None]
        if biases:
            raise _Refused(f"its scores carry a bias ({', '.join(biases)}) the patterns would leave out")
        causal, window = self._read_mask(call, past)
        scaling = call.scaling if call.scaling is not None else call.query.shape[-1] ** -0.5
        softcap = call.kwargs.get("softcap")
        return Recipe(scaling=float(scaling), causal=causal, window=window,
                      softcap=None if softcap is None else float(softcap), sinks=_sinks(call))

    def _read_mask(self, call: Call, past: int) -> tuple[bool, int | None]:
        """(causal, window) of the call's mask, read once per mask tensor (layers of a kind share one)."""
        mask = call.mask
        if mask is None:  # sdpa's own causal flag; eager with no mask hides nothing
            causal = call.kernel == FAST and bool(call.kwargs.get("is_causal", getattr(call.module, "is_causal", True)))
            return causal and call.query.shape[-2] > 1, None
        if id(mask) not in self._masks:
            self._masks[id(mask)] = mask, _mask_reading(mask, call.query.shape[-2], self.row or 0, past)
        return self._masks[id(mask)][1]


def _same_recipe(a: Recipe, b: Recipe | None) -> bool:
    """Whether two chunks of one layer were told the same (sinks are the module's own: one array)."""
    if b is None or (a.scaling, a.causal, a.window, a.softcap) != (b.scaling, b.causal, b.window, b.softcap):
        return False
    return a.sinks is b.sinks or (a.sinks is not None and b.sinks is not None and np.array_equal(a.sinks, b.sinks))


def _mask_reading(mask: torch.Tensor, n: int, row: int = 0, past: int = 0) -> tuple[bool, int | None]:
    """(causal, window) of a (B, 1, n, past + n) boolean (True: seen) or additive mask, read on `row`, or
    _Refused when it does more than hide keys, or hides them otherwise than causally within a window."""
    if mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (n, past + n):
        raise _Refused(f"its mask has shape {tuple(mask.shape)}: one per head or over other positions")
    m = mask[row, 0]
    if m.dtype == torch.bool:
        seen = m
    else:
        seen = m == 0
        if not (seen | (m <= torch.finfo(m.dtype).min / 2)).all():
            raise _Refused("its mask adds a bias to the scores (ALiBi or similar), not only hides keys")
    count = seen.sum(dim=1)  # (n,) keys each query sees
    first = seen.to(torch.uint8).argmax(dim=1)  # (n,) first seen key
    last = past + n - 1 - seen.flip(1).to(torch.uint8).argmax(dim=1)  # (n,) last seen key
    rows = torch.arange(past, past + n, device=m.device)  # each query's own position
    causal = bool((last == rows).all())
    window = int(count[-1]) if causal and int(count[-1]) < past + n else None
    want_first = (rows - window + 1).clamp(min=0) if window is not None else torch.zeros_like(rows)
    want_last = rows if causal else torch.full_like(rows, past + n - 1)
    if not ((count == last - first + 1) & (first == want_first) & (last == want_last) & (count > 0)).all():
        raise _Refused("its mask hides keys other than causally within a sliding window (padding, separate documents)")
    return causal, window


def _sinks(call: Call) -> np.ndarray | None:
    """(H,) the learned sinks the call passes along (`s_aux`) or its module keeps; None without."""
    sinks = call.kwargs.get("s_aux")
    if sinks is None:
        sinks = getattr(call.module, "sinks", None)
    return _numpy(sinks) if isinstance(sinks, torch.Tensor) else None


def _check(call: Call, recipe: Recipe, query: np.ndarray, key: np.ndarray, row: int = 0, past: int = 0) -> None:
    """The family's eager attention in float32 on the first and last query rows must give the recipe's
    weights: it sees every argument the call got, so an argument the recipe leaves out shows here.
    Cached positions' queries are not in this call: zeros stand in for them (their rows are not checked)."""
    n = query.shape[1]
    padded = np.concatenate([np.zeros((query.shape[0], past, query.shape[2]), np.float32), query], axis=1)
    layer = Patterns((padded,), (key,), (recipe,))
    for start, stop in sorted({(0, min(n, PROBE_ROWS)), (max(0, n - PROBE_ROWS), n)}):
        theirs = _eager_rows(call, recipe, start, stop, row, key.shape[1])  # (H, R, past + n)
        ours = layer.layer_rows(0, past + start, past + stop)  # (H, R, past + n)
        off = float(np.abs(ours - theirs).max())
        if not off <= TOLERANCE:
            extra = sorted(set(call.kwargs) - {"position_ids", "use_cache", "sliding_window", "softcap", "s_aux",
                                               "output_router_logits", "is_causal"})
            named = f"; it was also given {', '.join(extra)}" if extra else ""
            raise _Refused(f"its attention weights are not the softmax of the scaled scores its arguments "
                           f"describe (off by up to {off:.3g}{named})")


def _eager_rows(call: Call, recipe: Recipe, start: int, stop: int, row: int = 0, n_keys: int | None = None) -> np.ndarray:
    """(H, R, n_keys) the family's eager weights of one row's query rows [start, stop) over its first
    n_keys keys, in float32."""
    keys = slice(0, n_keys)
    query = call.query[row:row + 1, :, start:stop].float()
    key, value = (t[row:row + 1, :, keys].float() for t in (call.key, call.value))
    mask = _eager_mask(call, recipe, start, stop, row, key.shape[-2])
    _, weights = family_eager(call.module)(call.module, query, key, value, mask, scaling=call.scaling, dropout=0.0,
                                           **call.kwargs)
    return _numpy(weights[0])


def _eager_mask(call: Call, recipe: Recipe, start: int, stop: int, row: int = 0,
                n_keys: int | None = None) -> torch.Tensor | None:
    """The additive float32 mask rows eager adds for one row's queries [start, stop) over its first
    n_keys keys: the call's own, or under FAST (boolean or no mask) the one its reading states."""
    low = torch.finfo(torch.float32).min
    n_keys = call.key.shape[-2] if n_keys is None else n_keys
    mask = call.mask
    if mask is not None and mask.dtype != torch.bool:
        return mask[row:row + 1, :, start:stop, :n_keys].float()
    if mask is not None:
        return torch.where(mask[row:row + 1, :, start:stop, :n_keys], 0.0, low)
    if not recipe.causal:
        return None
    past = call.key.shape[-2] - call.query.shape[-2]  # the query rows' positions start after the cached keys
    hidden = torch.from_numpy(recipe.hidden(past + start, past + stop, 0, n_keys)).to(call.query.device)
    return torch.where(hidden, low, 0.0)[None, None]


def _numpy(tensor: torch.Tensor, shared: bool = False) -> np.ndarray:
    """A float32 CPU numpy copy of its own (the pass's tensors are not kept alive or shared), or with
    `shared` a view where the tensor already is float32 on the CPU (the caller knows nobody writes it)."""
    array = tensor.detach().to(device="cpu", dtype=torch.float32).numpy()
    return array if shared else array.copy()
