"""Every head's pooled overview at once equals each head pooled alone, whether the heads are spread
over worker threads (a long prompt's queries and keys) or read from whole patterns on this thread."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses import overviews
from model.core.patterns import Patterns


@pytest.mark.parametrize("workers", [1, 2])
def test_every_head_equals_each_head_alone(tiny_lm, monkeypatch, workers):
    monkeypatch.setattr(overviews, "long_work_threads", lambda: workers)
    ids = [int(i) for i in np.random.default_rng(0).integers(100, 5000, size=100)]
    source = tiny_lm.patterns(ids)  # queries and keys: each head computed again when asked
    assert source.full is None
    for reduce in ("max", "mean"):
        together = overviews.pooled_heads(source, 24, reduce)
        L, H = together.shape[:2]
        for layer in range(L):
            for head in range(H):
                np.testing.assert_array_equal(together[layer, head], source.pooled(layer, head, 24, reduce))


def test_whole_patterns_are_read_as_they_are(tiny_lm):
    whole = Patterns.of_array(np.asarray(tiny_lm.capture("The cat sat on the mat.").attention))
    pooled = overviews.pooled_heads(whole, 40)
    assert pooled.shape[:2] == (whole.n_layers, whole.n_heads(0))
    np.testing.assert_array_equal(pooled[1, 0], whole.pooled(1, 0, 40, "max"))


def test_overview_from_queries_and_keys_equals_pooling_whole_patterns(tiny_lm):
    """A long prompt's overview pools each band's columns, then its rows, from queries and keys; pooling
    the whole patterns gives the same pixels to float rounding, for max and mean."""
    ids = [int(i) for i in np.random.default_rng(1).integers(100, 5000, size=100)]
    source = tiny_lm.patterns(ids)
    whole = Patterns.of_array(np.asarray(source))
    for layer, head in ((0, 0), (1, 3)):
        for reduce in ("max", "mean"):
            np.testing.assert_allclose(source.pooled(layer, head, 24, reduce), whole.pooled(layer, head, 24, reduce),
                                       rtol=1e-5, atol=1e-7)
