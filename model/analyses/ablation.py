"""Switching attention heads off: replace a head's slice of the input to its layer's output projection
(the patch sites' "heads" view) and see how the next-token logits move. Three ways, at every position
or at chosen ones: zero (the head adds nothing), mean (its mean output over this prompt's positions
in the normal run: the head still adds its average, only what varies with the token is gone), and
resample (its output from a run of another prompt of the same token length, position by position:
what the head would have said about that prompt).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from ..core.errors import PromptError
from ..core.logits import Predictions
from ..engine.layout import Layout
from ..engine.patch_sites import Edit, Site, editing

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ..engine.language_model import LanguageModel

Head = tuple[int, int]  # (layer, query head)
How = Literal["zero", "mean", "resample"]
HOWS: tuple[How, ...] = ("zero", "mean", "resample")
Values = dict[int, np.ndarray]  # layer -> (T, n_heads * head_dim) float32: what replaces the heads' outputs


@dataclass(frozen=True)
class Ablation:
    """How the chosen heads are switched off, and where. `positions` None = every position;
    `source` = the other prompt's token ids, for resample only."""

    how: How = "zero"
    positions: tuple[int, ...] | None = None
    source: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"unknown ablation {self.how!r}: one of {', '.join(HOWS)}")
        if (self.how == "resample") != (self.source is not None):
            raise ValueError("resample needs a source prompt's ids, and only resample takes one")

    def key(self) -> str:
        """A plain-string cache key part; zero at every position is '' (today's key)."""
        if self == ZERO:
            return ""
        where = "all" if self.positions is None else ",".join(map(str, self.positions))
        return f"{self.how}@{where}" + ("" if self.source is None else "<" + ",".join(map(str, self.source)))


ZERO = Ablation()


def normalize_heads(heads: Iterable[Head], n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """Sorted unique (layer, head) pairs; a ValueError names any pair outside the model."""
    out = sorted({(int(layer), int(head)) for layer, head in heads})
    for layer, head in out:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ValueError(f"head L{layer} H{head} is outside this model ({n_layers} layers x {n_heads} heads)")
    return tuple(out)


def normalize_positions(positions: Iterable[int] | None, n_tokens: int) -> tuple[int, ...] | None:
    """Sorted unique positions (None stays every position); a ValueError names one outside the prompt."""
    if positions is None:
        return None
    out = tuple(sorted({int(p) for p in positions}))
    for p in out:
        if not 0 <= p < n_tokens:
            raise ValueError(f"position {p} is outside this prompt ({n_tokens} tokens)")
    return out


def source_ids(lm: LanguageModel, text: str, n_tokens: int, max_tokens: int | None = None, *,
               chat: bool = False) -> tuple[int, ...]:
    """The resampling prompt's ids (in the chat template when the prompt is); a PromptError when its
    token count differs from the prompt's (as in patching, position i of one run stands in for position
    i of the other)."""
    ids = lm.encode(text, max_tokens, chat=chat)
    if len(ids) != n_tokens:
        raise PromptError(
            f"The prompt to resample from is {len(ids)} tokens long and this prompt {n_tokens}: resampling puts "
            "a head's output at position i of one run into position i of the other, so both need the same "
            "number of tokens. Swap words for words of the same token length."
        )
    return tuple(ids)


def _slices(heads: Iterable[Head], head_dim: int) -> dict[int, list[slice]]:
    """layer -> the feature slices of its chosen heads in the output projection's input."""
    by_layer: dict[int, list[slice]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(slice(head * head_dim, (head + 1) * head_dim))
    return by_layer


def _replace(slices: list[slice], positions: tuple[int, ...] | None, values: np.ndarray | None) -> Edit:
    """An edit of the projection's input: the slices at the positions become 0 (values None) or the values'."""
    def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T, n_heads * head_dim)
        t = t.clone()  # never write into the caller's tensor
        rows = slice(None) if positions is None else torch.as_tensor(positions, device=t.device)
        fill = None if values is None else torch.as_tensor(values, device=t.device, dtype=t.dtype)  # (T, width)
        for s in slices:
            t[:, rows, s] = 0 if fill is None else fill[rows, s]
        return t
    return edit


@contextmanager
def heads_replaced(layout: Layout, heads: Iterable[Head], ablation: Ablation = ZERO,
                   values: Values | None = None) -> Iterator[None]:
    """Within the block, the given heads' outputs are replaced as `ablation` says (values: from
    replacement_values, for mean and resample), through the patch sites. Hold the model's lock."""
    summary = layout.summary
    chosen = normalize_heads(heads, summary.n_layers, summary.n_heads)
    by_layer = _slices(chosen, summary.head_dim)
    given = values or {}
    if ablation.how != "zero" and not by_layer.keys() <= given.keys():
        raise ValueError(f"{ablation.how} ablation needs the replacement values of layers {sorted(by_layer)}")
    edits: dict[Site, Edit] = {("heads", layer): _replace(slices, ablation.positions,
                                                          None if ablation.how == "zero" else given[layer])
                               for layer, slices in by_layer.items()}
    with editing(layout, edits):
        yield


@contextmanager
def heads_off(layout: Layout, heads: Iterable[Head]) -> Iterator[None]:
    """Within the block, the given heads output zero at every position. Hold the model's lock."""
    with heads_replaced(layout, heads):
        yield


def head_inputs(lm: LanguageModel, ids: Sequence[int], layers: Iterable[int]) -> Values:
    """Every head's output (the output projection's input) of the given layers in a normal pass:
    layer -> (T, n_heads * head_dim) float32."""
    kept: Values = {}

    def keep(layer: int) -> Edit:
        def edit(t: torch.Tensor) -> torch.Tensor:
            kept[layer] = t[0].detach().to(device="cpu", dtype=torch.float32).numpy()
            return t
        return edit

    edits: dict[Site, Edit] = {("heads", layer): keep(layer) for layer in sorted(set(layers))}
    lm.forward(list(ids), sites=edits, last_only=True)
    return kept


def replacement_values(lm: LanguageModel, ids: Sequence[int], ablation: Ablation, layers: Iterable[int]) -> Values:
    """What replaces the heads' outputs: for mean, each position's row is the mean over this prompt's
    positions; for resample, the source prompt's own outputs. Zero needs none ({})."""
    if ablation.how == "zero":
        return {}
    if ablation.source is not None:  # resample
        if len(ablation.source) != len(ids):
            raise PromptError(f"The prompt to resample from has {len(ablation.source)} tokens, this one {len(ids)}.")
        return head_inputs(lm, ablation.source, layers)
    return {layer: np.repeat(z.mean(axis=0, keepdims=True), len(ids), axis=0)  # (T, width), every row the mean
            for layer, z in head_inputs(lm, ids, layers).items()}


def ablated_logits(lm: LanguageModel, ids: list[int], heads: Iterable[Head], ablation: Ablation = ZERO,
                   values: Values | None = None) -> Predictions:
    """Next-token logits with the heads ablated, readable at any position (`lm.logits_of`); no heads =
    exactly the capture's logits. `values` (replacement_values) may be passed in to share one
    recording between runs."""
    chosen = tuple(heads)
    if normalize_positions(ablation.positions, len(ids)) != ablation.positions:
        raise ValueError(f"positions {ablation.positions} are not sorted, unique positions of {len(ids)} tokens")
    if values is None and chosen:
        values = replacement_values(lm, ids, ablation, {layer for layer, _ in chosen})
    return lm.predictions(ids, hooks=lambda layout: heads_replaced(layout, chosen, ablation, values))


def heads_key(heads: Iterable[Head]) -> str:
    """A plain-string cache key part for a set of heads, order-independent."""
    return ",".join(f"{layer}.{head}" for layer, head in sorted(set(heads)))
