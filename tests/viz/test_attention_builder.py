"""The synthetic Capture builder itself: causal, normalised rows, shapes that Capture accepts."""
from __future__ import annotations

import numpy as np


def test_synthetic_capture_is_causal_and_normalised(synthetic_capture) -> None:
    att = synthetic_capture.attention  # (L, H, T, T)
    T = synthetic_capture.n_tokens
    assert att.shape == (2, 3, T, T)
    assert np.allclose(np.asarray(att).sum(-1), 1.0, atol=1e-5)
    assert np.all(att[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)


def test_builder_takes_custom_tokens(capture_builder) -> None:
    cap = capture_builder(tokens=["<b>x</b>", "y"], n_layers=1, n_heads=2)
    assert cap.attention.shape == (1, 2, 2, 2)
    assert cap.tokens[0] == "<b>x</b>"
