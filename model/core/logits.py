"""A capture's next-token logits: every row for short prompts; for long ones the last rows and, at
every position, what the views need from a whole row (its log-sum-exp, its top tokens, the logit and
rank of the token that came next). At 4,096 tokens every row would take 0.8 GB of a 135M model's
capture, more than all of its streams; a row that was not kept is computed again from the final
stream by the model's own norm and unembedding (`LanguageModel.logits_at`).

Indexes like the (T, V) array it stands for (`l[-1]`, `l[pos, token]`, `l[:n]`, `np.asarray(l)`) as long
as the rows asked for are kept. No torch here until statistics are computed: views import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import XrayError

TOP = 10  # top tokens kept per position (hover texts show a few; the lens reads the first)
_FIELDS = ("lse", "top_ids", "top_logits", "next_logit", "next_rank")


@dataclass(frozen=True)
class RowStats:
    """Per position, what needs a whole row of logits: kept when the rows are not. The last position
    has no next token (NaN logit, rank -1)."""

    lse: np.ndarray  # (T,) float64 log-sum-exp of each row: log p = logit - lse
    top_ids: np.ndarray  # (T, k) int64 highest logits first (ties: lower id first); k = TOP, or V if fewer
    top_logits: np.ndarray  # (T, k) float32
    next_logit: np.ndarray  # (T,) float32 the logit of the token that came next
    next_rank: np.ndarray  # (T,) int64 how many tokens scored strictly higher than it (0: the favourite)

    def __post_init__(self) -> None:
        for name in _FIELDS:
            getattr(self, name).setflags(write=False)

    @classmethod
    def of_rows(cls, rows: np.ndarray, following: np.ndarray, scratch: bool = False) -> RowStats:
        """The statistics of (n, V) rows, each followed by the token id in `following` (n,) (-1: none).
        With `scratch` the rows are the caller's own buffer and are overwritten: no (n, V) temporary,
        which a capture's statistics, running while all its arrays are held, cannot afford."""
        import torch

        rows = np.asarray(rows, dtype=np.float32)
        following = np.asarray(following, dtype=np.int64)
        has_next = following >= 0
        chosen = np.full(len(rows), np.nan, dtype=np.float32)
        chosen[has_next] = rows[has_next, following[has_next]]
        rank = np.where(has_next, np.count_nonzero(rows > chosen[:, None], axis=-1), -1).astype(np.int64)
        work = rows if scratch else rows.copy()
        k = min(TOP + 1, work.shape[-1])  # one spare: ties at the edge of the top TOP sort by id
        top = torch.topk(torch.from_numpy(work), k, dim=-1)  # torch's ran 7x faster than numpy's argpartition
        values, ids = top.values.numpy().copy(), top.indices.numpy().astype(np.int64)
        n_top = min(TOP, work.shape[-1])
        for r in np.flatnonzero(values[:, n_top - 1] == values[:, -1]) if k > n_top else ():
            ids[r, :n_top], values[r, :n_top] = _ties_by_id(work[r], values[r, n_top - 1], n_top)
        order = np.lexsort((ids[:, :n_top], -values[:, :n_top]), axis=-1)
        peak = values[:, :1]
        np.subtract(work, peak, out=work)
        np.exp(work, out=work)  # float32, summed in float64: within ~1e-7 of a float64 reference
        lse = peak[:, 0].astype(np.float64) + np.log(work.sum(axis=-1, dtype=np.float64))
        return cls(lse, np.take_along_axis(ids[:, :n_top], order, -1), np.take_along_axis(values[:, :n_top], order, -1),
                   chosen, rank)

    def __getitem__(self, index: slice) -> RowStats:
        return RowStats(*(getattr(self, name)[index].copy() for name in _FIELDS))

    @staticmethod
    def joined(parts: list[RowStats]) -> RowStats:
        return RowStats(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))

    def ending(self) -> RowStats:
        """These statistics as the end of a prompt: the last position's next token is gone."""
        logit, rank = self.next_logit.copy(), self.next_rank.copy()
        if len(logit):
            logit[-1], rank[-1] = np.nan, -1
        return RowStats(self.lse, self.top_ids, self.top_logits, logit, rank)


def _ties_by_id(row: np.ndarray, edge: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n highest of a row whose n-th value ties past the top n: equal logits go to the lower id (as the
    Next token page's ranking), not wherever topk left them."""
    candidates = np.flatnonzero(row >= edge)
    best = candidates[np.lexsort((candidates, -row[candidates]))[:n]]
    return best, row[best]


@dataclass(frozen=True, eq=False)
class Logits:
    """(T, V) float32 logits, read-only: `rows` are positions `start`..T-1 (start 0: every row);
    `following` (T,) the token that came after each position (-1 after the last). Every position's
    statistics are computed when first asked: from the rows when all are kept, else by the model from
    the capture's final stream (`LanguageModel.logit_stats`), which remembers them here."""

    rows: np.ndarray  # (T - start, V)
    following: np.ndarray = field(repr=False)  # (T,) int64
    start: int = 0
    given: RowStats | None = field(default=None, repr=False)  # every position's, once known

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.dtype != np.float32:
            raise ValueError(f"Logits rows must be (n, V) float32, got {self.rows.shape} {self.rows.dtype}")
        if len(self.following) != self.n_tokens:
            raise ValueError(f"Logits of {self.n_tokens} positions need {self.n_tokens} following ids")
        self.rows.setflags(write=False)
        self.following.setflags(write=False)

    @classmethod
    def of_array(cls, rows: Any, token_ids: np.ndarray) -> Logits:
        """Every row (T, V) of the prompt `token_ids`, kept as is."""
        if isinstance(rows, Logits):
            return rows
        return cls(np.asarray(rows, dtype=np.float32), following_ids(token_ids))

    @property
    def n_tokens(self) -> int:
        return self.start + int(self.rows.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_tokens, int(self.rows.shape[1])

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        """Memory held: what a cache budgets."""
        stats = 0 if self.given is None else sum(getattr(self.given, name).nbytes for name in _FIELDS)
        return int(self.rows.nbytes + self.following.nbytes + stats)

    def __len__(self) -> int:
        return self.n_tokens

    @property
    def complete(self) -> bool:
        """Whether every row is kept."""
        return self.start == 0

    def kept(self, position: int) -> bool:
        """Whether the row of `position` (negative counts from the end) is held."""
        return self._local(position) is not None

    def _local(self, position: int) -> int | None:
        T = self.n_tokens
        if not -T <= position < T:
            raise IndexError(f"position {position} is outside the {T} positions")
        position %= T
        return position - self.start if position >= self.start else None

    def _positions(self, index: Any) -> Any:
        """Translate a row index (int, slice, int array) into `rows`' own, or say why the rows are missing."""
        if isinstance(index, (int, np.integer)):
            local = self._local(int(index))
            if local is None:
                raise self._missing(int(index))
            return local
        positions = np.arange(self.n_tokens)[index]
        if positions.size and positions.min() < self.start:
            raise self._missing(int(positions.min()))
        return positions - self.start

    def _missing(self, position: int) -> XrayError:
        return XrayError(f"The logits at position {position} were not kept: a capture of {self.n_tokens:,} tokens "
                         f"keeps the rows of its last {self.rows.shape[0]} positions (LanguageModel.logits_at "
                         "computes any other from the final stream).")

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            return self.rows[(self._positions(index[0]), *index[1:])]
        return self.rows[self._positions(index)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if not self.complete:
            raise self._missing(0)
        return self.rows if dtype is None else self.rows.astype(dtype)

    @property
    def known(self) -> bool:
        """Whether `stats` answers without the model (every row kept, or remembered)."""
        return self.given is not None or self.complete

    @property
    def stats(self) -> RowStats:
        """Every position's log-sum-exp, top tokens, and the logit and rank of the token that came next."""
        if self.given is None:
            if not self.complete:
                raise XrayError("A long capture's logit statistics come from its final stream: "
                                "LanguageModel.logit_stats(capture) computes them.")
            self.remember(RowStats.of_rows(self.rows, self.following))
        assert self.given is not None
        return self.given

    def remember(self, stats: RowStats) -> None:
        """Keep every position's statistics once computed (a memo: the same numbers whoever computes them)."""
        if len(stats.lse) != self.n_tokens:
            raise ValueError(f"statistics of {len(stats.lse)} positions for logits of {self.n_tokens}")
        object.__setattr__(self, "given", stats)

    def prefix(self, n: int) -> Logits:
        """The logits of the first n positions (copies: no view of this capture's arrays); rows before
        `start` stay missing (the caller computes them again where needed)."""
        rows = self.rows[: max(n - self.start, 0)].copy()
        following = np.append(self.following[: n - 1], -1)
        if self.complete:
            return Logits(rows, following)
        return Logits(rows, following, n - len(rows), self.stats[:n].ending() if self.known else None)

    def extended(self, new: Logits, first_new: int, keep: int | None) -> Logits:
        """These logits followed by `new`, the logits of the positions after them, whose first token is
        `first_new`. `keep` None keeps every row (both must hold theirs); else the last `keep` rows stay."""
        following = np.concatenate([self.following[:-1], [first_new], new.following])
        if keep is None:
            if not (self.complete and new.complete):
                raise ValueError("Every row is kept only when both parts hold theirs")
            return Logits(np.concatenate([self.rows, new.rows]), following)
        if len(new.rows) >= keep:
            rows = new.rows[-keep:]
        elif new.complete:
            rows = np.concatenate([self.rows, new.rows])[-keep:]
        else:
            raise ValueError(f"New logits keep {len(new.rows)} rows, fewer than the {keep} asked for")
        T = self.n_tokens + new.n_tokens
        return Logits(np.ascontiguousarray(rows), following, T - len(rows), self._joined(new, first_new))

    def _joined(self, new: Logits, first_new: int) -> RowStats | None:
        """Both parts' statistics as one, the last old position now followed by `first_new` (None unless
        both are known: the model computes them when asked)."""
        if not (self.known and new.known):
            return None
        last, stats = self[-1], self.stats  # the last old position predicted the first new token
        logit, rank = stats.next_logit.copy(), stats.next_rank.copy()
        logit[-1], rank[-1] = last[first_new], np.count_nonzero(last > last[first_new])
        return RowStats.joined([RowStats(stats.lse, stats.top_ids, stats.top_logits, logit, rank), new.stats])


def following_ids(token_ids: Any) -> np.ndarray:
    """(T,) the token after each position of a prompt, -1 after the last."""
    ids = np.asarray(token_ids, dtype=np.int64)
    return np.append(ids[1:], -1) if len(ids) else ids


@dataclass(frozen=True)
class Predictions:
    """A pass's next-token logits, readable at any position (`LanguageModel.logits_of`): `logits` holds
    every row, or for a long prompt the last rows with `stream`, the final stream (T, D), from which the
    model's own final norm and unembedding give any other row, as a long capture keeps them. (T, V)
    would be 688 MB at 3,500 tokens of the default model; the stream is 8 MB."""

    logits: Logits
    stream: np.ndarray | None = None  # (T, D) float32, where `logits` does not hold every row
