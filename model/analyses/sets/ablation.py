"""Switching heads off over a set: for each chosen head, one padded pass per group of prompts with
that head's output replaced at every position (model/analyses/ablation.py's edit), and per prompt
the change of its logit difference. Zero takes the head's output away; mean puts back its average
output over every position of every prompt in the set, so only what depends on the prompt is gone.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from ...engine.patch_sites import Edit, Site
from ..ablation import Ablation, Head, Values, heads_replaced, normalize_heads
from .batches import Part, Row, diffs, groups, logits_of, padded, read_last

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import LanguageModel

How = Literal["zero", "mean"]


def effect_name(head: Head) -> str:
    """The per-prompt value name of one head's effect."""
    return f"effect L{head[0]}H{head[1]}"


def set_means(lm: LanguageModel, rows: Sequence[Row], layers: set[int]) -> dict[int, np.ndarray]:
    """layer -> (width,) every head's output averaged over every real position of every prompt."""
    s = lm.summary
    sums = {layer: np.zeros(s.n_heads * s.head_dim) for layer in layers}
    count = 0
    for group in groups([len(r.ids) for r in rows]):
        chosen = [rows[i].ids for i in group]
        real = torch.tensor([[p < len(r) for p in range(max(map(len, chosen)))] for r in chosen])  # (B, T)

        def add(layer: int, real: torch.Tensor = real) -> Edit:
            def edit(t: torch.Tensor) -> torch.Tensor:
                sums[layer] += t[real.to(t.device)].to(device="cpu", dtype=torch.float64).sum(0).numpy()
                return t
            return edit

        edits: dict[Site, Edit] = {("heads", layer): add(layer) for layer in layers}
        lm.forward(padded(chosen) if len(chosen) > 1 else list(chosen[0]), sites=edits, last_only=True)
        count += int(real.sum())
    return {layer: (total / count).astype(np.float32) for layer, total in sums.items()}


def ablation_parts(lm: LanguageModel, rows: Sequence[Row], heads: Sequence[Head], how: How = "zero") -> Iterator[Part]:
    """"diff" per prompt first, then one head at a time: effect_name(head) per prompt, the logit
    difference with the head ablated minus without (negative: the head was helping the answer)."""
    s = lm.summary
    chosen = normalize_heads(heads, s.n_layers, s.n_heads)
    means = set_means(lm, rows, {layer for layer, _ in chosen}) if how == "mean" else {}
    final: Site = ("residual", s.n_layers)
    clean: dict[int, float] = {}
    part: Part = {}
    for group in groups([len(r.ids) for r in rows]):
        group_rows = [rows[i] for i in group]
        found = diffs(logits_of(lm, read_last(lm, [r.ids for r in group_rows], [final]).sites[final]), group_rows)
        for i, d in zip(group, found):
            clean[i] = float(d)
            part[i] = {"diff": np.array(d)}
    yield part
    for head in chosen:
        part = {}
        for group in groups([len(r.ids) for r in rows]):
            group_rows = [rows[i] for i in group]
            T = max(len(r.ids) for r in group_rows)
            values: Values = {head[0]: np.repeat(means[head[0]][None], T, axis=0)} if how == "mean" else {}
            ablation = Ablation(how)
            hooks = (lambda layout, v=values, a=ablation, h=head: heads_replaced(layout, [h], a, v))
            found = diffs(logits_of(lm, read_last(lm, [r.ids for r in group_rows], [final], hooks=hooks).sites[final]),
                          group_rows)
            for i, d in zip(group, found):
                part[i] = {effect_name(head): np.array(float(d) - clean[i])}
        yield part
