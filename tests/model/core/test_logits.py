"""Logits (model/core/logits.py): a long capture's last rows and every position's statistics answer
as the whole (T, V) array would (float64 references), refuse a row they do not hold with a message,
and keep that promise through prefixes and extensions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.core.errors import XrayError
from model.core.logits import Logits, RowStats, following_ids

T, V = 50, 300
RNG = np.random.default_rng(0)
ROWS = (RNG.normal(size=(T, V)) * 5).astype(np.float32)
IDS = RNG.integers(0, V, T)


def long_logits(rows: np.ndarray, ids: np.ndarray, keep: int) -> Logits:
    """What a long capture keeps: the last `keep` rows and the statistics of all."""
    following = following_ids(ids)
    return Logits(rows[-keep:].copy(), following, len(rows) - keep, RowStats.of_rows(rows, following))


def assert_stats(stats: RowStats, rows: np.ndarray, ids: np.ndarray) -> None:
    lse = torch.logsumexp(torch.tensor(rows, dtype=torch.float64), -1).numpy()
    np.testing.assert_allclose(stats.lse, lse, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(stats.top_ids[:, 0], rows.argmax(-1))
    np.testing.assert_array_equal(stats.top_logits, -np.sort(-rows, -1)[:, : stats.top_ids.shape[1]])
    chosen = rows[np.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_array_equal(stats.next_logit[:-1], chosen)
    np.testing.assert_array_equal(stats.next_rank[:-1], np.count_nonzero(rows[:-1] > chosen[:, None], -1))
    assert np.isnan(stats.next_logit[-1]) and stats.next_rank[-1] == -1


def test_kept_rows_index_like_the_array_and_others_are_refused() -> None:
    logits = long_logits(ROWS, IDS, 8)
    assert logits.shape == (T, V) and not logits.complete and logits.kept(-8) and not logits.kept(41)
    np.testing.assert_array_equal(logits[-1], ROWS[-1])
    np.testing.assert_array_equal(logits[45, 3], ROWS[45, 3])
    np.testing.assert_array_equal(logits[44:], ROWS[44:])
    with pytest.raises(XrayError, match="position 3 were not kept"):
        logits[3]
    with pytest.raises(XrayError, match="not kept"):
        np.asarray(logits)
    assert_stats(logits.stats, ROWS, IDS)


def test_every_row_computes_the_same_statistics_when_asked() -> None:
    whole = Logits.of_array(ROWS, IDS)
    assert whole.complete and np.array_equal(np.asarray(whole), ROWS)
    assert_stats(whole.stats, ROWS, IDS)


def test_ties_at_the_edge_of_the_top_go_to_the_lower_id() -> None:
    rows = np.zeros((2, 40), np.float32)
    rows[0, [30, 5, 17]] = 1.0  # three leaders, then 37 ties at 0 for the last places
    stats = RowStats.of_rows(rows, np.array([3, -1]))
    assert stats.top_ids[0, :3].tolist() == [5, 17, 30]
    assert stats.top_ids[0, 3:].tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert stats.top_ids[1].tolist() == list(range(10))


@pytest.mark.parametrize("cut", [10, 45])
def test_prefixes_and_extensions_keep_the_statistics_of_the_whole(cut: int) -> None:
    """A prefix forgets the token after its end; joining two parts restores it from the last kept row."""
    prefix = long_logits(ROWS, IDS, 8).prefix(cut)
    assert prefix.n_tokens == cut and prefix.stats.next_rank[-1] == -1
    assert_stats(prefix.stats, ROWS[:cut], IDS[:cut])
    head = Logits.of_array(ROWS[:cut], IDS[:cut])
    tail = Logits.of_array(ROWS[cut:], IDS[cut:])
    joined = head.extended(tail, int(IDS[cut]), keep=8)
    assert joined.start == T - 8
    np.testing.assert_array_equal(joined[-8:], ROWS[-8:])
    assert_stats(joined.stats, ROWS, IDS)
    assert np.array_equal(np.asarray(head.extended(tail, int(IDS[cut]), keep=None)), ROWS)
