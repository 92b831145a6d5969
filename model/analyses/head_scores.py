"""What kind of head is this? Reference patterns, a chance-corrected score against them, per-head
statistics (entropy, attention to previous / first / own token) and the induction test on a
repeated random-token sequence. Pure numpy (plus one model call for induction); no streamlit.

Shape of a good analysis function (after TransformerLens' head_detector): tiny builders of a
(T, T) reference pattern, one scoring function, an (n_layers, n_heads) result.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..core.capture import Capture
    from ..engine.language_model import LanguageModel

KIND_LABELS: dict[str, str] = {
    "previous": "previous-token",
    "first": "first-token (sink)",
    "self": "self",
    "duplicate": "duplicate-token",
    "induction": "induction",
}


def previous_token_pattern(n_tokens: int) -> np.ndarray:
    """(T, T) 1 where the key is the token just before the query."""
    return np.eye(n_tokens, k=-1, dtype=np.float32)


def first_token_pattern(n_tokens: int) -> np.ndarray:
    """(T, T) 1 on the first column: the 'attention sink' many heads park their weight on."""
    pattern = np.zeros((n_tokens, n_tokens), dtype=np.float32)
    pattern[:, 0] = 1.0
    return pattern


def self_pattern(n_tokens: int) -> np.ndarray:
    """(T, T) 1 on the diagonal: each token attends to itself."""
    return np.eye(n_tokens, dtype=np.float32)


def duplicate_token_pattern(token_ids: np.ndarray) -> np.ndarray:
    """(T, T) 1 where the key is an earlier copy of the query's own token."""
    ids = np.asarray(token_ids)
    same = ids[:, None] == ids[None, :]  # (T, T)
    return np.tril(same, k=-1).astype(np.float32)


def induction_pattern(token_ids: np.ndarray) -> np.ndarray:
    """(T, T) 1 where the key FOLLOWS an earlier copy of the query's token ('A B ... A -> B')."""
    ids = np.asarray(token_ids)
    T = len(ids)
    pattern = np.zeros((T, T), dtype=np.float32)
    if T > 1:
        pattern[:, 1:] = ids[:, None] == ids[None, :-1]  # key j's previous token equals query i
    return np.tril(pattern, k=0)  # keys at or before the query only


PATTERNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "previous": lambda ids: previous_token_pattern(len(ids)),
    "first": lambda ids: first_token_pattern(len(ids)),
    "self": lambda ids: self_pattern(len(ids)),
    "duplicate": duplicate_token_pattern,
    "induction": induction_pattern,
}


def pattern_score(attention: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Chance-corrected match of attention (..., T, T) to a 0/1 pattern (T, T): (...) scores.

    Per query row: (mass on the pattern's keys - mass a uniform causal head would put there) /
    (1 - that chance mass); averaged over rows where the pattern marks some but not all visible
    keys. 1 = all weight on the pattern, 0 = no better than uniform, negative = avoids it.
    """
    T = pattern.shape[-1]
    visible = np.tri(T, dtype=np.float32)  # (T, T) causal: keys at or before the query
    target = pattern * visible  # (T, T)
    chance = target.sum(-1) / visible.sum(-1)  # (T,) uniform mass on the targets
    rows = (chance > 0) & (chance < 1)  # (T,) rows where the score means something
    if not rows.any():
        return np.zeros(attention.shape[:-2], dtype=np.float32)
    observed = np.einsum("...qk,qk->...q", attention, target)  # (..., T) no (L, H, T, T) temporary
    per_row = (observed[..., rows] - chance[rows]) / (1.0 - chance[rows])  # (..., R)
    return per_row.mean(-1).astype(np.float32)


def head_type_scores(attention: np.ndarray, token_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Every reference pattern scored on a capture's attention (L, H, T, T): kind -> (L, H)."""
    return {kind: pattern_score(attention, build(token_ids)) for kind, build in PATTERNS.items()}


def mean_entropy_bits(attention: np.ndarray) -> np.ndarray:
    """Entropy of each query row in bits, averaged over rows 1.. (row 0 can only see itself): (..., )."""
    rows = attention[..., 1:, :] if attention.shape[-2] > 1 else attention  # (..., T-1, T)
    flat = rows.reshape(-1, *rows.shape[-2:])  # (N, T-1, T): one head at a time keeps temporaries small
    h = np.array([_row_entropy_bits(head).mean() for head in flat], dtype=np.float32)  # (N,)
    return h.reshape(rows.shape[:-2])


def _row_entropy_bits(pattern: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of one (R, T) pattern; 0 log 0 = 0."""
    p = pattern.astype(np.float64)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(-1)  # (R,)


def mean_diagonal(attention: np.ndarray, offset: int) -> np.ndarray:
    """Mean weight a query puts on the key `offset` places back (0 = itself), rows 1..: (...)."""
    T = attention.shape[-1]
    if T < 2:
        return np.full(attention.shape[:-2], 1.0 if offset == 0 else 0.0, dtype=np.float32)
    diag = np.diagonal(attention, offset=-offset, axis1=-2, axis2=-1)  # (..., T - offset)
    start = 1 - offset  # keep query rows 1..
    return diag[..., start:].mean(-1).astype(np.float32)


def mean_first(attention: np.ndarray) -> np.ndarray:
    """Mean weight on the first token over query rows 1..: the sink share. (...)"""
    col = attention[..., :, 0]  # (..., T)
    return (col[..., 1:] if col.shape[-1] > 1 else col).mean(-1).astype(np.float32)


def head_stats(cap: Capture) -> dict[str, np.ndarray]:
    """The head table's numbers for one capture: name -> (L, H) array."""
    att = np.asarray(cap.attention)  # (L, H, T, T): every head's whole pattern, for short prompts
    stats = {
        "entropy_bits": mean_entropy_bits(att),
        "to_previous": mean_diagonal(att, 1),
        "to_first": mean_first(att),
        "to_self": mean_diagonal(att, 0),
    }
    stats.update({f"score_{k}": v for k, v in head_type_scores(att, cap.token_ids).items()})
    return stats


def js_divergence_bits(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits, 0 = same, 1 = disjoint) of two patterns (T, T), mean over rows."""
    p = np.asarray(a, dtype=np.float64)
    q = np.asarray(b, dtype=np.float64)
    m = 0.5 * (p + q)  # (T, T)

    def kl(x: np.ndarray) -> np.ndarray:
        safe = np.where(x > 0, x / np.where(m > 0, m, 1.0), 1.0)
        return (x * np.log2(safe)).sum(-1)  # (T,)

    return float(np.clip(0.5 * (kl(p) + kl(q)), 0.0, 1.0).mean())


def repeated_random_ids(vocab_size: int, half: int, seed: int, low: int = 100) -> list[int]:
    """A random token sequence followed by itself once: the classic induction-head probe."""
    rng = np.random.default_rng(seed)
    first = rng.choice(np.arange(low, vocab_size), size=half, replace=False)  # no repeats inside a copy
    return [int(t) for t in np.concatenate([first, first])]


INDUCTION_HALF = 40  # tokens in each copy of the induction probe's random sequence


def induction_chance(half: int = INDUCTION_HALF) -> float:
    """Mean share a head spreading its attention evenly gives the one induction key of each second-copy
    row (query i sees i + 1 keys): what an induction score of 0 means in attention."""
    return float(np.mean(1.0 / np.arange(half + 1, 2 * half + 1)))


def share_from_score(score: float, chance: float) -> float:
    """Undo the chance correction of pattern_score: about the attention share behind a score (exact
    when every row has the same chance, within a fraction of a percent on the induction probe)."""
    return float(np.clip(chance + score * (1.0 - chance), 0.0, 1.0))


def induction_scores(lm: LanguageModel, half: int = INDUCTION_HALF, samples: int = 2, seed: int = 0) -> np.ndarray:
    """Induction score (L, H) of a model: pattern_score on `samples` seeded repeated sequences, averaged.

    Only the second copy's rows count: there every query has exactly one 'next after my last copy' key.
    """
    vocab = min(lm.summary.vocab_size, len(lm.tokenizer))
    scores = []
    for i in range(samples):
        ids = repeated_random_ids(vocab, half, seed + i)
        att = np.asarray(lm.capture_ids(ids).attention)  # (L, H, 2*half, 2*half)
        pattern = induction_pattern(np.asarray(ids))
        pattern[:half] = 0  # first copy: nothing to copy yet
        scores.append(pattern_score(att, pattern))
    return np.mean(scores, axis=0).astype(np.float32)


def top_heads(scores: np.ndarray, k: int = 5) -> list[tuple[int, int, float]]:
    """The k highest-scoring heads as (layer, head, score), best first."""
    order = np.argsort(-scores, axis=None)[:k]
    return [(int(i // scores.shape[1]), int(i % scores.shape[1]), float(scores.flat[i])) for i in order]
