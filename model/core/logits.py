"""A capture's next-token logits: every row for short prompts; for long ones the last rows and, at
every position, what the views need from a whole row (its log-sum-exp, its top tokens, the logit of
the token that came next). At 4,096 tokens every row would take 0.8 GB of a 135M model's capture, more
than all of its streams; a row that was not kept is computed again from the final stream by the
model's own norm and unembedding (`LanguageModel.logits_at`).

Indexes like the (T, V) array it stands for (`l[-1]`, `l[pos, token]`, `l[:n]`, `np.asarray(l)`) as long
as the rows asked for are kept. No torch here: views import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .errors import XrayError

TOP = 10  # top tokens kept per position (hover texts show a few; the lens reads the first)


@dataclass(frozen=True)
class RowStats:
    """Per position, what needs a whole row of logits: kept when the rows are not."""

    lse: np.ndarray  # (T,) float64 log-sum-exp of each row (summed in float32): log p = logit - lse
    top_ids: np.ndarray  # (T, k) int64 highest logits first; k = TOP, or V if fewer
    top_logits: np.ndarray  # (T, k) float32

    def __post_init__(self) -> None:
        for array in (self.lse, self.top_ids, self.top_logits):
            array.setflags(write=False)

    @classmethod
    def of_rows(cls, rows: np.ndarray) -> RowStats:
        """The statistics of (n, V) rows (torch's topk ran 7x faster than numpy's argpartition here)."""
        import torch

        rows = np.asarray(rows, dtype=np.float32)
        values = torch.from_numpy(rows if rows.flags.writeable else rows.copy())  # torch reads, never writes
        top = torch.topk(values, min(TOP, values.shape[-1]), dim=-1)  # sorted, highest first
        lse = torch.logsumexp(values, dim=-1).double()  # float32's: within ~1e-6 of float64's
        return cls(lse.numpy(), top.indices.numpy().astype(np.int64), top.values.numpy().copy())

    def __getitem__(self, index: slice) -> RowStats:
        return RowStats(self.lse[index].copy(), self.top_ids[index].copy(), self.top_logits[index].copy())

    @staticmethod
    def joined(parts: list[RowStats]) -> RowStats:
        return RowStats(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("lse", "top_ids", "top_logits")))


@dataclass(frozen=True, eq=False)
class Logits:
    """(T, V) float32 logits, read-only: `rows` are positions `start`..T-1 (start 0: every row).
    A capture that keeps only the last rows carries `given` statistics and the logit of each next
    token; one that keeps every row computes them from the rows when first asked."""

    rows: np.ndarray  # (T - start, V)
    start: int = 0
    given: RowStats | None = field(default=None, repr=False)  # (T,) statistics when start > 0
    next_given: np.ndarray | None = field(default=None, repr=False)  # (T-1,) logit of token t+1 at t

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.dtype != np.float32:
            raise ValueError(f"Logits rows must be (n, V) float32, got {self.rows.shape} {self.rows.dtype}")
        if self.start and (self.given is None or self.next_given is None):
            raise ValueError("Logits that keep only the last rows need the statistics of every row")
        self.rows.setflags(write=False)
        if self.next_given is not None:
            self.next_given.setflags(write=False)

    @classmethod
    def of_array(cls, rows: Any) -> Logits:
        """Every row (T, V), kept as is."""
        return rows if isinstance(rows, Logits) else cls(np.asarray(rows, dtype=np.float32))

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
        extra = 0 if self.given is None else sum(a.nbytes for a in (self.given.lse, self.given.top_ids, self.given.top_logits))
        return int(self.rows.nbytes + extra + (0 if self.next_given is None else self.next_given.nbytes))

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

    @cached_property
    def stats(self) -> RowStats:
        """Every position's log-sum-exp and top tokens."""
        return self.given if self.given is not None else RowStats.of_rows(self.rows)

    def next_logits(self, token_ids: np.ndarray) -> np.ndarray:
        """(T-1,) the logit each position gave the token that followed it (`token_ids` are the capture's)."""
        if self.next_given is not None:
            return self.next_given
        ids = np.asarray(token_ids, dtype=np.int64)
        return self.rows[np.arange(len(ids) - 1), ids[1:]]

    def prefix(self, n: int, token_ids: np.ndarray) -> Logits:
        """The logits of the first n positions (copies: no view of this capture's arrays); rows before
        `start` stay missing (the caller computes them again where needed)."""
        local = max(n - self.start, 0)
        rows = self.rows[:local].copy()
        if self.complete:
            return Logits(rows)
        return Logits(rows, n - local, self.stats[:n], self.next_logits(token_ids)[: max(n - 1, 0)].copy())

    def extended(self, new: Logits, token_ids: np.ndarray, keep: int | None) -> Logits:
        """These logits followed by `new`, the logits of the positions after them (`token_ids`: all T).
        `keep` None keeps every row (both must hold theirs); else only the last `keep` rows stay."""
        if keep is None:
            if not (self.complete and new.complete):
                raise ValueError("Every row is kept only when both parts hold theirs")
            return Logits(np.concatenate([self.rows, new.rows]))
        ids = np.asarray(token_ids, dtype=np.int64)
        n = self.n_tokens
        bridge = np.asarray([self[-1][ids[n]]], dtype=np.float32)  # the last old position predicts the first new token
        following = np.concatenate([self.next_logits(ids[:n]), bridge, new.next_logits(ids[n:])])
        if len(new.rows) >= keep:
            rows = new.rows[-keep:]
        elif new.complete:
            rows = np.concatenate([self.rows, new.rows])[-keep:]
        else:
            raise ValueError(f"New logits keep {len(new.rows)} rows, fewer than the {keep} asked for")
        T = n + new.n_tokens
        return Logits(np.ascontiguousarray(rows), T - len(rows), RowStats.joined([self.stats, new.stats]),
                      following.astype(np.float32))
