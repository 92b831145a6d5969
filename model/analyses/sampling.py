"""From logits to next-token probabilities over the FULL vocabulary: temperature, top-k, top-p,
entropy, ranking and seeded sampling. Pure numpy in float64, so the bars match a reference to 1e-6.
Top-k / top-p sort only the head of the vocabulary, so a slider drag at 49,152 tokens stays fast.
"""
from __future__ import annotations

import numpy as np

_MASS_TOLERANCE = 1e-12  # cumulative sums carry rounding: 0.5 + 0.3 may land just under 0.8
_HEAD = 512  # top-p looks among this many most likely tokens first; a flatter distribution sorts all


def top_tokens(scores: np.ndarray, n: int) -> np.ndarray:
    """(n,) ids of the n largest scores (logits or probabilities), largest first, ties to the lower id:
    the order of a stable full sort, found with one partition instead of sorting the vocabulary."""
    row = np.asarray(scores)
    n = max(0, min(int(n), row.size))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    kth = -np.partition(-row, n - 1)[n - 1]  # the n-th largest score
    above = np.flatnonzero(row > kth)  # (< n,)
    tied = np.flatnonzero(row == kth)[: n - above.size]  # boundary ties go to the lower ids
    ids = np.concatenate([above, tied])  # (n,)
    return ids[np.lexsort((ids, -row[ids]))]  # by score, then by id


def rank_of(scores: np.ndarray, token: int) -> int:
    """A token's place in top_tokens' order (1 = the largest score; ties to the lower id)."""
    row = np.asarray(scores)
    return 1 + int((row > row[token]).sum()) + int((row[:token] == row[token]).sum())


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Numerically stable softmax of logits / temperature; temperature 0 puts all mass on the argmax."""
    x = np.asarray(logits, dtype=np.float64)
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if temperature == 0:
        p = np.zeros_like(x)
        p[int(np.argmax(x))] = 1.0
        return p
    z = (x - x.max()) / temperature  # <= 0 everywhere, 0 at the max: no overflow for tiny T
    e = np.exp(z)
    return e / e.sum()


def _keep(p: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = np.zeros_like(p)
    out[keep] = p[keep]
    return out / out.sum()


def _nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """Ids of the smallest most-likely prefix whose mass reaches top_p (at least one token)."""
    m = min(p.size, _HEAD)
    while True:
        head = top_tokens(p, m)  # (m,) most likely first
        mass = np.cumsum(p[head])  # (m,) the same partial sums as over a full sort
        if mass[-1] >= top_p - _MASS_TOLERANCE or m == p.size:
            n = int(np.searchsorted(mass, top_p - _MASS_TOLERANCE, side="left")) + 1
            return head[: min(max(n, 1), m)]
        m = p.size  # a flat head: sort the whole vocabulary


def probabilities(
    logits_row: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """Next-token distribution (vocab,) summing to 1.

    top_k keeps exactly k tokens (None or 0 = off; k above the vocabulary keeps all); top_p keeps
    the smallest most-likely prefix whose mass reaches p (p = 0 keeps the top token, p >= 1 all).
    Filters apply after temperature, top-k first, and the kept mass is renormalized.
    """
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if top_p is not None and (np.isnan(top_p) or not 0 <= top_p <= 1):
        raise ValueError(f"top_p must be between 0 and 1, got {top_p}")
    p = softmax_with_temperature(logits_row, temperature)
    if top_k and top_k < p.size:
        p = _keep(p, top_tokens(p, top_k))
    if top_p is not None and top_p < 1:
        p = _keep(p, _nucleus(p, top_p))
    return p


def entropy_bits(p: np.ndarray) -> float:
    """Shannon entropy in bits (0 for a one-hot distribution; never -0.0)."""
    q = np.asarray(p, dtype=np.float64)
    q = q[q > 0]
    return max(0.0, float(-(q * np.log2(q)).sum()))


def sample_token(p: np.ndarray, seed: int | None = None) -> int:
    """Draw one token id from p; the same seed always gives the same token."""
    rng = np.random.default_rng(seed)
    return int(rng.choice(p.size, p=p / p.sum()))
