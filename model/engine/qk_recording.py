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

from contextlib import AbstractContextManager

import numpy as np
import torch

from ..core.patterns import Patterns, Recipe
from .attention import FAST, Call, family_eager, listening
from .layout import Layout

PROBE_ROWS = 8  # query rows at each end of the prompt on which the family's eager checks the recipe
TOLERANCE = 1e-5  # our float32 softmax against the family's: rounding is ~1e-7, a wrong recipe far more
SCORE_BIASES = ("position_bias",)  # arguments the sdpa kernel adds to the scores (T5-style biases)


class _Refused(Exception):
    """A call the recipe cannot follow; the message says why."""


class PatternRecording:
    """For one single-sequence pass without a cache: every layer's queries, keys and recipe, or the
    reason they cannot rebuild its patterns. Pass `hooks` to `LanguageModel.forward` under FAST or LISTEN."""

    def __init__(self, n_layers: int) -> None:
        self.queries: list[np.ndarray | None] = [None] * n_layers
        self.keys: list[np.ndarray | None] = [None] * n_layers
        self.recipes: list[Recipe | None] = [None] * n_layers
        self._problem: str | None = None
        self._masks: dict[int, tuple[torch.Tensor, tuple[bool, int | None]]] = {}  # id -> (mask, reading)

    def hooks(self, layout: Layout) -> AbstractContextManager[None]:
        return listening(layout, self.hear)

    @property
    def problem(self) -> str | None:
        """Why the patterns cannot be rebuilt from what was kept; None when every layer was kept."""
        if self._problem is None and any(q is None for q in self.queries):
            return ("this family computes attention inside its own modules instead of through transformers' "
                    "attention interface, so the queries and keys it used cannot be kept")
        return self._problem

    def result(self) -> Patterns:
        """What was kept, as plain data; a ValueError naming the problem when there is one."""
        if self.problem is not None:
            raise ValueError(self.problem)
        return Patterns(tuple(self.queries), tuple(self.keys), tuple(self.recipes))  # type: ignore[arg-type]

    def hear(self, call: Call) -> None:
        """The listener `hooks` routes every layer to: keep the layer's queries, keys and checked recipe,
        or note why not."""
        if self._problem is not None:
            return
        try:
            recipe = self._recipe(call)
            query, key = _numpy(call.query[0]), _numpy(call.key[0])  # (H, T, hd), (KV, T, hd)
            _check(call, recipe, query, key)
        except _Refused as refused:
            self._problem = f"layer {call.layer}: {refused}"
            return
        self.queries[call.layer], self.keys[call.layer], self.recipes[call.layer] = query, key, recipe

    def _recipe(self, call: Call) -> Recipe:
        """The recipe the call's own arguments state (scaling, softcap, sinks, what its mask hides)."""
        if call.query.shape[0] != 1 or call.query.shape[-2] != call.key.shape[-2]:
            raise _Refused("only a single sequence run without cached keys is kept")
        biases = [name for name in SCORE_BIASES if call.kwargs.get(name) is not None]
        if biases:
            raise _Refused(f"its scores carry a bias ({', '.join(biases)}) the patterns would leave out")
        causal, window = self._read_mask(call)
        scaling = call.scaling if call.scaling is not None else call.query.shape[-1] ** -0.5
        softcap = call.kwargs.get("softcap")
        return Recipe(scaling=float(scaling), causal=causal, window=window,
                      softcap=None if softcap is None else float(softcap), sinks=_sinks(call))

    def _read_mask(self, call: Call) -> tuple[bool, int | None]:
        """(causal, window) of the call's mask, read once per mask tensor (layers of a kind share one)."""
        mask = call.mask
        if mask is None:  # sdpa's own causal flag; eager with no mask hides nothing
            causal = call.kernel == FAST and bool(call.kwargs.get("is_causal", getattr(call.module, "is_causal", True)))
            return causal and call.query.shape[-2] > 1, None
        if id(mask) not in self._masks:
            self._masks[id(mask)] = mask, _mask_reading(mask, call.query.shape[-2])
        return self._masks[id(mask)][1]


def _mask_reading(mask: torch.Tensor, n: int) -> tuple[bool, int | None]:
    """(causal, window) of a (1, 1, T, T) boolean (True: seen) or additive mask, or _Refused when it
    does more than hide keys, or hides them otherwise than causally within a window."""
    if mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (n, n):
        raise _Refused(f"its mask has shape {tuple(mask.shape)}: one per head or over other positions")
    m = mask[0, 0]
    if m.dtype == torch.bool:
        seen = m
    else:
        seen = m == 0
        if not (seen | (m <= torch.finfo(m.dtype).min / 2)).all():
            raise _Refused("its mask adds a bias to the scores (ALiBi or similar), not only hides keys")
    count = seen.sum(dim=1)  # (T,) keys each query sees
    first = seen.to(torch.uint8).argmax(dim=1)  # (T,) first seen key
    last = n - 1 - seen.flip(1).to(torch.uint8).argmax(dim=1)  # (T,) last seen key
    rows = torch.arange(n, device=m.device)
    causal = bool((last == rows).all())
    window = int(count[-1]) if causal and int(count[-1]) < n else None
    want_first = (rows - window + 1).clamp(min=0) if window is not None else torch.zeros_like(rows)
    want_last = rows if causal else torch.full_like(rows, n - 1)
    if not ((count == last - first + 1) & (first == want_first) & (last == want_last) & (count > 0)).all():
        raise _Refused("its mask hides keys other than causally within a sliding window (padding, separate documents)")
    return causal, window


def _sinks(call: Call) -> np.ndarray | None:
    """(H,) the learned sinks the call passes along (`s_aux`) or its module keeps; None without."""
    sinks = call.kwargs.get("s_aux")
    if sinks is None:
        sinks = getattr(call.module, "sinks", None)
    return _numpy(sinks) if isinstance(sinks, torch.Tensor) else None


def _check(call: Call, recipe: Recipe, query: np.ndarray, key: np.ndarray) -> None:
    """The family's eager attention in float32 on the first and last query rows must give the recipe's
    weights: it sees every argument the call got, so an argument the recipe leaves out shows here."""
    n = query.shape[1]
    layer = Patterns((query,), (key,), (recipe,))
    for start, stop in sorted({(0, min(n, PROBE_ROWS)), (max(0, n - PROBE_ROWS), n)}):
        theirs = _eager_rows(call, recipe, start, stop)  # (H, R, T)
        ours = np.stack([layer.rows(0, h, start, stop) for h in range(query.shape[0])])  # (H, R, T)
        off = float(np.abs(ours - theirs).max())
        if not off <= TOLERANCE:
            extra = sorted(set(call.kwargs) - {"position_ids", "use_cache", "sliding_window", "softcap", "s_aux",
                                               "output_router_logits", "is_causal"})
            named = f"; it was also given {', '.join(extra)}" if extra else ""
            raise _Refused(f"its attention weights are not the softmax of the scaled scores its arguments "
                           f"describe (off by up to {off:.3g}{named})")


def _eager_rows(call: Call, recipe: Recipe, start: int, stop: int) -> np.ndarray:
    """(H, R, T) the family's eager weights of query rows [start, stop), in float32."""
    query, key, value = (t.float() for t in (call.query[:, :, start:stop], call.key, call.value))
    _, weights = family_eager(call.module)(call.module, query, key, value, _eager_mask(call, recipe, start, stop),
                                           scaling=call.scaling, dropout=0.0, **call.kwargs)
    return _numpy(weights[0])


def _eager_mask(call: Call, recipe: Recipe, start: int, stop: int) -> torch.Tensor | None:
    """The additive float32 mask rows eager adds for queries [start, stop): the call's own, or under
    FAST (boolean or no mask) the one its reading states."""
    low = torch.finfo(torch.float32).min
    mask = call.mask
    if mask is not None and mask.dtype != torch.bool:
        return mask[:, :, start:stop].float()
    if mask is not None:
        return torch.where(mask[:, :, start:stop], 0.0, low)
    if not recipe.causal:
        return None
    hidden = torch.from_numpy(recipe.hidden(start, stop, 0, call.key.shape[-2])).to(call.query.device)
    return torch.where(hidden, low, 0.0)[None, None]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 CPU numpy copy of its own (the pass's tensors are not kept alive or shared)."""
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy().copy()
