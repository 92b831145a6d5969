"""Surprisal: how unexpected each prompt token was to the model, given the tokens before it.

Position t's logits predict token t + 1, so token i is scored by row i - 1; the first token has no row
before it and no surprisal (NaN). Measured in bits: -log2 p, 1 bit = a fair coin's worth of surprise.
Read from the capture's per-position statistics (model/core/logits.py: each row's log-sum-exp, top
tokens, and the logit and rank of the token that came next), which a long capture keeps for every
position while it keeps only its last rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.core.capture import Capture
from model.core.logits import TOP as KEPT_TOP
from model.core.logits import RowStats

TOP = 3  # alternatives kept per position: what the model expected there


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


def surprisal(cap: Capture, top: int = TOP, stats: RowStats | None = None) -> Surprisal:
    """Every prompt token's surprisal, probability and rank, and the `top` tokens the model expected
    there (from the logits of the position before; at most the capture's KEPT_TOP). `stats`: the
    capture's logit statistics (`LanguageModel.logit_stats`), which a long capture needs the model for."""
    stats = stats if stats is not None else cap.logits.stats
    T = cap.n_tokens
    top = max(1, min(int(top), stats.top_ids.shape[1], KEPT_TOP))
    bits, prob = np.full(T, np.nan), np.full(T, np.nan)
    rank = np.full(T, -1, dtype=np.int64)
    top_ids = np.full((T, top), -1, dtype=np.int64)
    top_prob = np.full((T, top), np.nan)
    lse = stats.lse[:-1]  # (T-1,) rows 0..T-2 predict tokens 1..T-1
    log_p = stats.next_logit[:-1].astype(np.float64) - lse
    bits[1:], prob[1:] = -log_p / np.log(2.0), np.exp(log_p)
    rank[1:] = stats.next_rank[:-1] + 1
    top_ids[1:] = stats.top_ids[:-1, :top]
    top_prob[1:] = np.exp(stats.top_logits[:-1, :top].astype(np.float64) - lse[:, None])
    for array in (bits, prob, rank, top_ids, top_prob):
        array.setflags(write=False)
    return Surprisal(bits, prob, rank, top_ids, top_prob)
