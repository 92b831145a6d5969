"""Head-type scores: each is ~1 on a synthetic head of its own kind and ~0 on a uniform head."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses import head_scores as hs

T = 24
IDS = np.array(hs.repeated_random_ids(500, T // 2, seed=3))  # a repeated sequence: duplicates + induction


def _uniform(n: int) -> np.ndarray:
    """A uniform causal head (T, T): every visible key gets the same weight."""
    tri = np.tri(n)
    return tri / tri.sum(-1, keepdims=True)


def _head_of(pattern: np.ndarray) -> np.ndarray:
    """A head that spreads each row over the pattern's keys, or sits on itself where there are none."""
    rows = pattern.copy()
    empty = rows.sum(-1) == 0
    rows[empty, np.arange(len(rows))[empty]] = 1.0
    return rows / rows.sum(-1, keepdims=True)


@pytest.mark.parametrize("kind", list(hs.PATTERNS))
def test_score_is_one_on_its_own_pattern_and_zero_on_uniform(kind: str) -> None:
    pattern = hs.PATTERNS[kind](IDS)
    assert hs.pattern_score(_head_of(pattern), pattern) == pytest.approx(1.0, abs=1e-5)
    assert hs.pattern_score(_uniform(T), pattern) == pytest.approx(0.0, abs=1e-5)


def test_previous_token_head_is_not_a_first_token_head() -> None:
    prev = _head_of(hs.previous_token_pattern(T))
    assert hs.pattern_score(prev, hs.first_token_pattern(T)) < 0.1


def test_induction_pattern_points_at_the_token_after_the_earlier_copy() -> None:
    ids = np.array([7, 8, 9, 7, 8, 9])
    pattern = hs.induction_pattern(ids)
    assert pattern[3].tolist() == [0, 1, 0, 0, 0, 0]  # second 7 -> the 8 that followed the first 7
    assert pattern[:3].sum() == 0
    assert np.all(np.triu(pattern, 1) == 0)


def test_scores_keep_layer_head_shape_and_do_not_touch_input() -> None:
    att = np.stack([np.stack([_uniform(T), _head_of(hs.self_pattern(T))])])  # (1, 2, T, T)
    before = att.copy()
    scores = hs.head_type_scores(att, IDS)
    assert set(scores) == set(hs.KIND_LABELS)
    assert all(v.shape == (1, 2) for v in scores.values())
    assert scores["self"][0, 1] == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(att, before)


def test_head_stats_match_direct_computation() -> None:
    att = _uniform(4)[None, None]  # (1, 1, 4, 4)
    ent = hs.mean_entropy_bits(att)[0, 0]
    assert ent == pytest.approx(np.mean([1.0, np.log2(3), 2.0]), abs=1e-5)
    assert hs.mean_diagonal(att, 1)[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4]))
    assert hs.mean_diagonal(att, 0)[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4]))
    assert hs.mean_first(att)[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4]))


def test_js_divergence_is_zero_for_same_and_one_for_disjoint() -> None:
    a, b = _head_of(hs.self_pattern(T)), _head_of(hs.first_token_pattern(T))
    assert hs.js_divergence_bits(a, a) == pytest.approx(0.0, abs=1e-9)
    assert hs.js_divergence_bits(a, b) == pytest.approx((T - 1) / T, abs=1e-6)  # row 0 is the same


def test_top_heads_orders_best_first() -> None:
    scores = np.array([[0.1, 0.9], [0.5, 0.2]])
    assert hs.top_heads(scores, 2) == [(0, 1, pytest.approx(0.9)), (1, 0, pytest.approx(0.5))]


def test_induction_scores_on_a_tiny_model(tiny_lm) -> None:
    scores = hs.induction_scores(tiny_lm, half=8, samples=1)
    summary = tiny_lm.summary
    assert scores.shape == (summary.n_layers, summary.n_heads)
    assert np.all(np.isfinite(scores)) and np.all(scores <= 1.0 + 1e-5)
    assert np.array_equal(scores, hs.induction_scores(tiny_lm, half=8, samples=1))  # seeded


def test_an_induction_score_reads_back_as_a_share_of_attention() -> None:
    """On the probe's second copy, a head with share p on the induction key scores about (p - c) / (1 - c)."""
    half = hs.INDUCTION_HALF
    ids = np.array(hs.repeated_random_ids(500, half, seed=1))
    pattern = hs.induction_pattern(ids)
    pattern[:half] = 0
    uniform = _uniform(2 * half)
    observed = (uniform * pattern).sum(-1)[half:].mean()  # what spreading evenly gives the induction key
    assert hs.induction_chance() == pytest.approx(observed, rel=1e-6)
    head = 0.6 * _head_of(pattern) + 0.4 * uniform  # 60% on the key, the rest spread evenly
    share = hs.share_from_score(float(hs.pattern_score(head, pattern)), hs.induction_chance())
    assert share == pytest.approx((head * pattern).sum(-1)[half:].mean(), abs=0.005)
    assert hs.share_from_score(0.0, 0.02) == pytest.approx(0.02) and hs.share_from_score(-5.0, 0.02) == 0.0
