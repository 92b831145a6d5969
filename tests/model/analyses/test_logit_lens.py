"""The logit lens: its last row is the model's own logits, and its chunked summary matches a full
numpy reference built from the weights (norm formula written out, not the model's module), whichever
library multiplies by the unembedding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.analyses import logit_lens as lens_module
from model.analyses.logit_lens import logit_lens

PROMPT = "The capital of France is"


def _reference_logits(lm, rows: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, V) in float64 from the final norm's weights and the unembedding matrix."""
    norm = lm.layout.final_norm
    x = rows.astype(np.float64)
    w = norm.weight.detach().double().numpy()
    if isinstance(norm, torch.nn.LayerNorm):
        x = x - x.mean(-1, keepdims=True)
        y = w * x / np.sqrt((x * x).mean(-1, keepdims=True) + norm.eps) + norm.bias.detach().double().numpy()
    else:
        y = w * x / np.sqrt((x * x).mean(-1, keepdims=True) + norm.variance_epsilon)
    return y @ lm.model.get_output_embeddings().weight.detach().double().numpy().T


def _assert_last_row_is_the_models_prediction(lm, cap):
    """The lens read after the last block is the model's own next-token distribution."""
    lens = logit_lens(lm, cap)
    logits = np.asarray(cap.logits)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)  # (T, V) the model's own softmax
    assert (lens.top_ids[-1] == logits.argmax(-1)).all()
    assert np.allclose(lens.top_probs[-1], p.max(-1), atol=1e-5)


def test_last_row_is_the_models_logits_tiny(tiny_lm):
    _assert_last_row_is_the_models_prediction(tiny_lm, tiny_lm.capture(PROMPT + " Paris, and"))


def test_last_row_is_the_models_logits_default(default_lm):
    _assert_last_row_is_the_models_prediction(default_lm, default_lm.capture(PROMPT))


@pytest.mark.parametrize("product", ["numpy", "torch"])
def test_chunked_summary_matches_full_reference(tiny_lm, monkeypatch, product):
    """Both ways of unembedding (numpy's BLAS in worker threads on the CPU, torch elsewhere) agree
    with the float64 reference, chunk edges and all."""
    cap = tiny_lm.capture("one two three four five six")
    V = cap.summary.vocab_size
    monkeypatch.setattr(lens_module, "CHUNK_FLOATS", 5 * V)  # 5 rows per chunk: chunk edges inside layers
    if product == "torch":
        monkeypatch.setattr(tiny_lm.unembedding, "_numpy", None)
    else:
        assert tiny_lm.unembedding.threads  # a float32 nn.Linear on the CPU: numpy's product
    lens = logit_lens(tiny_lm, cap)
    n_rows, T, D = cap.residual.shape
    ref = _reference_logits(tiny_lm, cap.residual.reshape(-1, D)).reshape(n_rows, T, V)
    p = np.exp(ref - ref.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)  # (L+1, T, V)
    targets = np.argmax(np.asarray(cap.logits), -1)  # (T,)
    assert (lens.top_ids == p.argmax(-1)).all()
    assert np.allclose(lens.top_probs, p.max(-1), atol=1e-5)
    tp = np.take_along_axis(p, np.broadcast_to(targets, (n_rows, T))[..., None], -1)[..., 0]  # (L+1, T)
    assert np.allclose(lens.target_probs, tp, atol=1e-5)
    assert (lens.target_ranks == (p > tp[..., None]).sum(-1)).all()
    assert (lens.target_ranks[-1] == 0).all()  # the final row ranks the model's prediction first


def test_custom_target_is_tracked(tiny_lm):
    cap = tiny_lm.capture("one two three")
    targets = np.full(cap.n_tokens, 7)
    lens = logit_lens(tiny_lm, cap, targets)
    full = _reference_logits(tiny_lm, cap.residual[1])  # (T, V) after block 0, from the weights
    probs = np.exp(full - full.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert np.allclose(lens.target_probs[1], probs[:, 7], atol=1e-5)


def test_paris_emerges_late_in_the_default_model(default_lm):
    cap = default_lm.capture(PROMPT)
    lens = logit_lens(default_lm, cap)
    last = cap.n_tokens - 1
    assert default_lm.tokenizer.decode([int(lens.top_ids[-1, last])]) == " Paris"
    assert lens.target_ranks[0, last] > 100  # the embedding alone is far from Paris
    assert lens.first_top_layer(last) is not None and lens.first_top_layer(last) > 20
    assert lens.target_probs[-1, last] > 0.5


def test_a_window_of_positions_equals_those_columns(tiny_lm):
    cap = tiny_lm.capture("one two three four five")
    full = logit_lens(tiny_lm, cap)
    part = logit_lens(tiny_lm, cap, positions=np.array([2, 4]))
    assert list(part.positions) == [2, 4]
    assert (part.top_ids == full.top_ids[:, [2, 4]]).all()
    assert np.allclose(part.target_probs, full.target_probs[:, [2, 4]], atol=1e-6)
    assert part.first_top_layer(4) == full.first_top_layer(4)
    with pytest.raises(ValueError, match="not in the lens"):
        part.column(3)


def test_lens_logits_of_two_tokens_match_the_reference(tiny_lm):
    """Contrast mode's lens: each depth's logit(A) - logit(B) equals the float64 reference's, and the
    last depth is the model's own difference."""
    from model.analyses.logit_lens import lens_logits

    cap = tiny_lm.capture(PROMPT)
    pos, a, b = cap.n_tokens - 1, 5, 17
    got = lens_logits(tiny_lm, cap, pos, [a, b])  # (L+1, 2)
    ref = _reference_logits(tiny_lm, cap.residual[:, pos])  # (L+1, V)
    assert got.shape == (cap.summary.n_layers + 1, 2)
    assert np.allclose(got[:, 0] - got[:, 1], ref[:, a] - ref[:, b], atol=1e-4)
    assert got[-1, 0] - got[-1, 1] == pytest.approx(float(cap.logits[pos, a] - cap.logits[pos, b]), abs=1e-4)


def test_a_target_far_behind_the_top_keeps_a_nonzero_probability():
    """200 logits behind the top, float32's exp gives 0 (the lens table read 0 at rank 15,119); the
    probability is e^-200 / (1 + e^-200), which float64 holds."""
    logits = torch.tensor([[0.0, -200.0, -1.0]])
    _, _, target_p, rank = lens_module._chunk_stats(logits.clone(), torch.tensor([1]))
    expected = np.exp(-200.0) / (1 + np.exp(-1.0) + np.exp(-200.0))
    assert float(target_p[0]) == pytest.approx(expected, rel=1e-6, abs=0)
    assert int(rank[0]) == 2
