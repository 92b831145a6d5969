"""From logits to next-token probabilities over the FULL vocabulary: temperature, top-k, top-p,
entropy and seeded sampling. Pure numpy in float64, so the bars match a reference to 1e-6.
"""
from __future__ import annotations

import numpy as np


_MASS_TOLERANCE = 1e-12  # cumulative sums carry rounding: 0.5 + 0.3 may land just under 0.8


def _ranked(p: np.ndarray) -> np.ndarray:
    """Token ids by descending probability; ties go to the lower id (deterministic)."""
    return np.argsort(-p, kind="stable")


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
    p = softmax_with_temperature(logits_row, temperature)
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if top_k and top_k < p.size:
        p = _keep(p, _ranked(p)[:top_k])
    if top_p is not None:
        if not 0 <= top_p <= 1 or np.isnan(top_p):
            raise ValueError(f"top_p must be between 0 and 1, got {top_p}")
        if top_p < 1:
            order = _ranked(p)
            mass = np.cumsum(p[order])
            n = int(np.searchsorted(mass, top_p - _MASS_TOLERANCE, side="left")) + 1
            p = _keep(p, order[: min(max(n, 1), p.size)])
    return p


def entropy_bits(p: np.ndarray) -> float:
    """Shannon entropy in bits (0 for a one-hot distribution)."""
    q = np.asarray(p, dtype=np.float64)
    q = q[q > 0]
    return float(-(q * np.log2(q)).sum())


def top_tokens(p: np.ndarray, n: int) -> np.ndarray:
    """The ids of the n most likely tokens, most likely first (ties to the lower id)."""
    return _ranked(np.asarray(p))[: max(0, n)]


def sample_token(p: np.ndarray, seed: int | None = None) -> int:
    """Draw one token id from p; the same seed always gives the same token."""
    rng = np.random.default_rng(seed)
    return int(rng.choice(p.size, p=p / p.sum()))
