"""Sampling math against a float64 reference, and its edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from model.sampling import entropy_bits, probabilities, sample_token, top_tokens

RNG = np.random.default_rng(0)
LOGITS = (RNG.standard_normal(49152) * 4).astype(np.float32)


def reference(logits, t):
    x = np.asarray(logits, dtype=np.float64) / t
    e = np.exp(x - x.max())
    return e / e.sum()


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


def test_top_tokens_and_seeded_sampling():
    p = probabilities(LOGITS, 1.0)
    assert top_tokens(p, 3)[0] == np.argmax(p)
    draws = {sample_token(p, seed=7) for _ in range(5)}
    assert len(draws) == 1
    assert sample_token(probabilities(LOGITS, 0), seed=1) == np.argmax(LOGITS)
