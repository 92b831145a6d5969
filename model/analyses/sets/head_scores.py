"""Head types across a set: each prompt's previous-token, duplicate-token and induction scores per
head (model/analyses/head_scores.py's chance-corrected match), from that prompt's own patterns. A
score a prompt cannot give (no repeated token: no duplicate or induction keys) is NaN, not 0, so
the set's mean counts only the prompts that test it.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...core.errors import UnsupportedModelError
from ..head_scores import PATTERNS, pattern_score
from .batches import Part, Row, groups

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import LanguageModel

KINDS = ("previous", "duplicate", "induction")
PATTERN_CELLS = 1024  # rows x padded length per pass (each row's whole patterns are built after it)


def tested(pattern: np.ndarray) -> bool:
    """Whether a reference pattern marks some but not all visible keys of some query (else no score)."""
    visible = np.tri(pattern.shape[-1], dtype=bool)
    marked = (pattern.astype(bool) & visible).sum(-1)
    return bool(((marked > 0) & (marked < visible.sum(-1))).any())


def scores(attention: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """kind -> (L, H) scores of one prompt's attention (L, H, T, T); NaN where the prompt cannot test it."""
    out = {}
    for kind in KINDS:
        pattern = PATTERNS[kind](ids)
        out[kind] = pattern_score(attention, pattern) if tested(pattern) else np.full(attention.shape[:2], np.nan)
    return out


def score_parts(lm: LanguageModel, rows: Sequence[Row]) -> Iterator[Part]:
    """Per prompt, a padded pass per group: "score_<kind>" (L, H) from its patterns on demand (eager,
    no whole capture), or from a capture per prompt where this family's patterns cannot be recomputed."""
    for group in groups([len(r.ids) for r in rows], max_cells=PATTERN_CELLS):
        ids = [list(rows[i].ids) for i in group]
        try:
            attentions = [np.asarray(p) for p in lm.patterns_rows(ids, eager=True)]
        except UnsupportedModelError:
            attentions = [np.asarray(lm.capture_ids(one).attention) for one in ids]
        yield {i: {f"score_{kind}": value for kind, value in scores(attention, np.asarray(one)).items()}
               for i, one, attention in zip(group, ids, attentions)}
