"""Sampling math against a float64 reference, and its edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.sampling import entropy_bits, probabilities, sample_token, top_tokens

RNG = np.random.default_rng(0)
LOGITS = (RNG.standard_normal(49152) * 4).astype(np.float32)


def reference(logits, t):
    x = np.asarray(logits, dtype=np.float64) / t
    e = np.exp(x - x.max())
    return e / e.sum()


def full_sort_reference(logits, t, top_k=None, top_p=None):
    """The plain way: float64 softmax, a stable sort of the whole vocabulary, cut, renormalize."""
    p = reference(logits, t) if t > 0 else (np.arange(len(logits)) == np.argmax(logits)).astype(np.float64)
    if top_k and top_k < p.size:
        keep = np.argsort(-p, kind="stable")[:top_k]
        p = np.where(np.isin(np.arange(p.size), keep), p, 0.0)
        p = p / p.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, kind="stable")
        n = int(np.searchsorted(np.cumsum(p[order]), top_p - 1e-12, side="left")) + 1
        keep = order[: min(max(n, 1), p.size)]
        p = np.where(np.isin(np.arange(p.size), keep), p, 0.0)
        p = p / p.sum()
    return p


@pytest.mark.parametrize("t", [0.05, 0.1, 0.5, 1.0, 2.0, 5.0])
def test_matches_float64_reference(t):
    p = probabilities(LOGITS, t)
    assert p.shape == (49152,)
    np.testing.assert_allclose(p, reference(LOGITS, t), atol=1e-6, rtol=0)
    assert abs(p.sum() - 1) < 1e-9


def test_temperature_zero_is_greedy():
    p = probabilities(LOGITS, 0)
    assert p[np.argmax(LOGITS)] == 1.0 and p.sum() == 1.0


@pytest.mark.parametrize("t", [1e-300, 1e-9, 1e9, 1e300])
def test_extreme_temperatures_stay_finite(t):
    p = probabilities(LOGITS, t)
    assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-9


def test_negative_or_nan_temperature_refused():
    for t in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            probabilities(LOGITS, t)


def test_top_k_keeps_exactly_k_with_deterministic_ties():
    tied = np.zeros(10)
    p = probabilities(tied, 1.0, top_k=3)
    assert np.count_nonzero(p) == 3 and list(np.flatnonzero(p)) == [0, 1, 2]
    np.testing.assert_allclose(p[:3], 1 / 3)


def test_top_k_beyond_vocab_or_zero_keeps_all():
    for k in (0, None, 10**6):
        np.testing.assert_allclose(probabilities(LOGITS, 1.0, top_k=k), reference(LOGITS, 1.0), atol=1e-12)


def test_top_p_keeps_smallest_prefix_reaching_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = probabilities(logits, 1.0, top_p=0.8)
    np.testing.assert_allclose(p, [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    np.testing.assert_allclose(probabilities(logits, 1.0, top_p=0.81), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])


def test_top_p_extremes():
    assert np.count_nonzero(probabilities(LOGITS, 1.0, top_p=0.0)) == 1
    np.testing.assert_allclose(probabilities(LOGITS, 1.0, top_p=1.0), reference(LOGITS, 1.0), atol=1e-12)
    with pytest.raises(ValueError):
        probabilities(LOGITS, 1.0, top_p=1.5)


def test_entropy_bits():
    assert entropy_bits(np.array([1.0, 0, 0])) == 0
    assert entropy_bits(np.full(8, 1 / 8)) == pytest.approx(3.0)


FLAT = np.log(np.linspace(1.0, 1.001, 49152))[::-1]  # top-p 0.5 needs ~24k tokens: past the sorted head


@pytest.mark.parametrize("t", [0, 0.05, 0.7, 1.0, 3.0])
@pytest.mark.parametrize("k,p", [(None, None), (1, None), (50, None), (None, 0.0), (None, 0.5), (None, 0.99),
                                 (40, 0.9), (5000, 0.95), (None, 0.999999)])
def test_filters_equal_a_full_sort_reference(t, k, p):
    np.testing.assert_allclose(probabilities(LOGITS, t, k, p), full_sort_reference(LOGITS, t, k, p), atol=1e-15, rtol=0)


@pytest.mark.parametrize("k,p", [(None, 0.5), (30000, 0.7), (None, 0.999)])
def test_flat_distribution_falls_back_to_a_full_sort(k, p):
    np.testing.assert_allclose(probabilities(FLAT, 1.0, k, p), full_sort_reference(FLAT, 1.0, k, p), atol=1e-15, rtol=0)


def test_top_tokens_break_ties_at_the_cut_by_lower_id():
    row = np.array([0.1, 0.5, 0.5, 0.0, 0.5, 0.1, 0.1])
    assert top_tokens(row, 2).tolist() == [1, 2]
    assert top_tokens(row, 5).tolist() == [1, 2, 4, 0, 5]
    assert top_tokens(row, 99).tolist() == [1, 2, 4, 0, 5, 6, 3]
    assert top_tokens(row, 0).tolist() == []
    assert top_tokens(np.zeros(10_000), 3).tolist() == [0, 1, 2]
    assert top_tokens(LOGITS, 100).tolist() == np.argsort(-LOGITS, kind="stable")[:100].tolist()


def test_entropy_of_greedy_is_plus_zero():
    assert str(entropy_bits(probabilities(LOGITS, 0))) == "0.0"


def test_top_tokens_and_seeded_sampling():
    p = probabilities(LOGITS, 1.0)
    assert top_tokens(p, 3)[0] == np.argmax(p)
    draws = {sample_token(p, seed=7) for _ in range(5)}
    assert len(draws) == 1
    assert sample_token(probabilities(LOGITS, 0), seed=1) == np.argmax(LOGITS)
