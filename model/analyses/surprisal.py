"""Surprisal: how unexpected each prompt token was to the model, given the tokens before it.

Position t's logits predict token t + 1, so token i is scored by row i - 1; the first token has no row
before it and no surprisal (NaN). Measured in bits: -log2 p, 1 bit = a fair coin's worth of surprise.
The log-softmax runs in float32 with the row's maximum subtracted and the sum of exponentials
accumulated in float64, a few rows at a time (a long prompt's (T, V) logits are never copied whole).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.core.capture import Capture

TOP = 3  # alternatives kept per position: what the model expected there
_ROWS = 32  # logit rows read per step: (32, 49,152) float32 is 6 MB
_GROUP = 64  # ids per group when looking for the top scores


@dataclass(frozen=True, eq=False)
class Surprisal:
    """Per prompt position i (row 0, the first token, is NaN / -1: nothing came before it)."""

    bits: np.ndarray  # (T,) -log2 p(token i | tokens before it)
    probability: np.ndarray  # (T,) p(token i | tokens before it)
    rank: np.ndarray  # (T,) int64, 1 = the model's favourite was the token that came
    top_ids: np.ndarray  # (T, top) int64: the most likely tokens at i, most likely first
    top_probability: np.ndarray  # (T, top) their probabilities

    @property
    def n_tokens(self) -> int:
        return int(self.bits.size)

    @property
    def most_surprising(self) -> int | None:
        """The position with the highest surprisal (None for a one-token prompt)."""
        return None if self.n_tokens < 2 else int(np.nanargmax(self.bits))


def _rows(cap: Capture, start: int, stop: int) -> np.ndarray:
    """(stop - start, V) float32: the logit rows start..stop-1, read one position at a time."""
    return np.stack([np.asarray(cap.logits[p], dtype=np.float32) for p in range(start, stop)])


def _top(rows: np.ndarray, top: int) -> np.ndarray:
    """(n, top) ids of each row's largest scores, largest first, ties to the lower id (as sampling.top_tokens).
    The ids fall into groups of _GROUP (g, g + stride, g + 2·stride...); only groups whose maximum reaches
    the top-th largest group maximum can hold them: every top score is at least the top-th largest score,
    which is at least that group maximum. A full partition of every row would cost ten times more."""
    n, V = rows.shape
    stride = -(-V // _GROUP)
    pad = stride * _GROUP - V
    padded = np.pad(rows, ((0, 0), (0, pad)), constant_values=-np.inf) if pad else rows
    group_max = padded.reshape(n, _GROUP, stride).max(axis=1)  # (n, stride): group g's maximum
    k = min(top, stride)
    floor = -np.partition(-group_max, k - 1, axis=1)[:, k - 1]  # (n,) the k-th largest group maximum
    out = np.empty((n, top), dtype=np.int64)
    for r in range(n):
        groups = np.flatnonzero(group_max[r] >= floor[r])
        ids = (np.arange(_GROUP)[:, None] * stride + groups).ravel()
        ids = ids[ids < V]
        out[r] = ids[np.lexsort((ids, -rows[r, ids]))[:top]]
    return out


def surprisal(cap: Capture, top: int = TOP) -> Surprisal:
    """Every prompt token's surprisal, probability and rank, and the `top` tokens the model expected
    there (from the logits of the position before)."""
    T, V = cap.n_tokens, cap.summary.vocab_size
    top = max(1, min(int(top), V))
    bits, prob = np.full(T, np.nan), np.full(T, np.nan)
    rank = np.full(T, -1, dtype=np.int64)
    top_ids = np.full((T, top), -1, dtype=np.int64)
    top_prob = np.full((T, top), np.nan)
    ids = np.asarray(cap.token_ids, dtype=np.int64)
    for start in range(0, T - 1, _ROWS):
        stop = min(T - 1, start + _ROWS)
        rows = _rows(cap, start, stop)  # (n, V) predicting tokens start+1 .. stop
        shifted = rows - rows.max(axis=1, keepdims=True)  # <= 0, 0 at the favourite: exp never overflows
        lse = np.log(np.exp(shifted).sum(axis=1, dtype=np.float64))  # (n,) log of the softmax's denominator
        seen = ids[start + 1 : stop + 1]  # (n,) the tokens that came
        chosen = np.take_along_axis(rows, seen[:, None], axis=1)  # (n, 1)
        log_p = np.take_along_axis(shifted, seen[:, None], axis=1)[:, 0].astype(np.float64) - lse
        at = slice(start + 1, stop + 1)
        bits[at], prob[at] = -log_p / np.log(2.0), np.exp(log_p)
        rank[at] = np.count_nonzero(rows > chosen, axis=1) + 1
        top_ids[at] = best = _top(rows, top)
        top_prob[at] = np.exp(np.take_along_axis(shifted, best, axis=1).astype(np.float64) - lse[:, None])
    for array in (bits, prob, rank, top_ids, top_prob):
        array.setflags(write=False)
    return Surprisal(bits, prob, rank, top_ids, top_prob)
