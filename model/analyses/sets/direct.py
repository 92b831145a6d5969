"""The logit difference and each head's direct share, per prompt: one padded pass per group of
prompts reads the final stream and every head's output at each prompt's last position. The shares
are the Attribution page's (model/analyses/head_attribution.py), batched: the final norm's divisor
held fixed at each prompt's own last position.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...core.errors import UnsupportedModelError
from ...engine.patch_sites import Site
from ..attribution import readouts
from ..head_attribution import head_shares
from .batches import Part, Row, diffs, groups, logits_of, read_last

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import LanguageModel


def direct_parts(lm: LanguageModel, rows: Sequence[Row], *, heads: bool = True) -> Iterator[Part]:
    """Per prompt, one padded pass at a time: "diff" (logit(answer) - logit(contrast) at the last
    position), "corrupted_diff" where the row has a corrupted prompt, and with `heads` "heads" (L, H)
    each head's direct share of the difference. A model whose heads cannot be split raises
    UnsupportedModelError before any pass."""
    s = lm.summary
    why = refusal(lm) if heads else None
    if why is not None:
        raise UnsupportedModelError(why)
    final: Site = ("residual", s.n_layers)
    sites: list[Site] = [final, *((("heads", layer) for layer in range(s.n_layers)) if heads else ())]
    for group in groups([len(r.ids) for r in rows]):
        chosen = [rows[i] for i in group]
        read = read_last(lm, [r.ids for r in chosen], sites).sites
        part: Part = {i: {"diff": d} for i, d in zip(group, diffs(logits_of(lm, read[final]), chosen))}
        if heads:
            z = np.stack([read[("heads", layer)] for layer in range(s.n_layers)], axis=1)  # (B, L, H*hd)
            z = z.reshape(len(chosen), s.n_layers, s.n_heads, s.head_dim)
            reads = readouts(lm, read[final], [r.answer for r in chosen], [r.contrast for r in chosen])
            for i, shares in zip(group, head_shares(lm, z, reads)):
                part[i]["heads"] = shares
        part.update(_corrupted(lm, rows, group, final, part))
        yield part


def _corrupted(lm: LanguageModel, rows: Sequence[Row], group: list[int], final: Site, part: Part) -> Part:
    """The group's rows that have a corrupted prompt, with their "corrupted_diff" added."""
    having = [i for i in group if rows[i].corrupted_ids is not None]
    if not having:
        return {}
    prompts = [rows[i].corrupted_ids for i in having]
    read = read_last(lm, [p for p in prompts if p is not None], [final]).sites
    found = diffs(logits_of(lm, read[final]), [rows[i] for i in having])
    return {i: {**part[i], "corrupted_diff": d} for i, d in zip(having, found)}


def refusal(lm: LanguageModel) -> str | None:
    """Why per-head shares cannot be shown for this model, or None."""
    s = lm.summary
    try:  # both checks run on no rows at all: they look at the model only
        readouts(lm, np.zeros((0, s.d_model)), [], [])
        head_shares(lm, np.zeros((0, s.n_layers, s.n_heads, s.head_dim)), [])
    except UnsupportedModelError as exc:
        return str(exc)
    return None
