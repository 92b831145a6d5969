"""The score pipeline of a head: recorded queries and keys reproduce the model's own attention
(output_attentions), the values reproduce its attention output, and the model is left as it was."""
from __future__ import annotations

import numpy as np
import torch

from model.analyses.head_pipeline import head_pipeline
from model.engine import language_model
from model.engine.attention import FAST

PROMPT = "The cat sat on the mat and the cat"


def _attn_out_from(pipe, lm, layer: int) -> np.ndarray:
    """(T, D) the attention output rebuilt from pattern and values through the out projection."""
    heads = [pipe.weights[h] @ pipe.value[pipe.kv_head(h)] for h in range(pipe.n_heads)]  # H x (T, hd)
    concat = torch.tensor(np.concatenate(heads, axis=-1))[None]  # (1, T, H*hd)
    with torch.inference_mode():
        return lm.layout.out_projs[layer](concat)[0].numpy()


def test_scores_and_pattern_match_the_capture_tiny(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    T = cap.n_tokens
    for layer in range(cap.summary.n_layers):
        pipe = head_pipeline(tiny_lm, cap.token_ids, layer)
        assert pipe.weights.shape == (cap.summary.n_heads, T, T) and pipe.score_rows(0, 0, T).shape == (T, T)
        assert (pipe.masked == np.triu(np.ones((T, T), dtype=bool), k=1)).all()
        assert np.allclose(pipe.weights, cap.attention[layer], atol=1e-5)
        ours = np.stack([pipe.softmax(h) for h in range(pipe.n_heads)])  # (H, T, T) from q.k
        assert np.allclose(ours, cap.attention[layer], atol=1e-5)
        assert np.allclose(_attn_out_from(pipe, tiny_lm, layer), cap.attn_out[layer], atol=1e-5)


def test_model_is_left_unchanged(tiny_lm):
    before = tiny_lm.capture(PROMPT)
    head_pipeline(tiny_lm, before.token_ids, 1)
    assert tiny_lm.model.config._attn_implementation == "eager"
    after = tiny_lm.capture(PROMPT)
    assert np.array_equal(before.logits, after.logits)
    assert np.array_equal(before.attention, after.attention)


def test_grouped_query_heads_share_keys(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    pipe = head_pipeline(tiny_lm, cap.token_ids, 0)
    kv = cap.summary.n_kv_heads
    assert pipe.key.shape[0] == pipe.value.shape[0] == kv
    assert pipe.group_size == cap.summary.n_heads // kv
    assert pipe.heads_sharing(pipe.n_heads - 1) == list(range(pipe.n_heads - pipe.group_size, pipe.n_heads))


def test_masked_scores_and_value_weighting(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    pipe = head_pipeline(tiny_lm, cap.token_ids, 2)
    masked = pipe.masked_scores(1)
    assert np.isneginf(masked[0, 1:]).all() and np.isfinite(np.diag(masked)).all()
    norms = np.linalg.norm(pipe.value[pipe.kv_head(1)], axis=-1)
    assert np.allclose(pipe.value_weighted(1), pipe.weights[1] * norms[None, :])


def test_default_model_matches_its_capture(default_lm):
    cap = default_lm.capture(PROMPT)
    for layer in (0, 17, 29):
        pipe = head_pipeline(default_lm, cap.token_ids, layer)
        assert pipe.group_size == 3 and pipe.key.shape == (3, cap.n_tokens, 64)
        assert pipe.scaling == 64 ** -0.5
        assert np.allclose(pipe.weights, cap.attention[layer], atol=1e-5)
        ours = np.stack([pipe.softmax(h) for h in range(9)])
        assert np.allclose(ours, cap.attention[layer], atol=1e-5)
    assert default_lm.model.config._attn_implementation == "eager"


def test_recording_beside_captures_in_other_threads(tiny_lm):
    """The temporary switch happens under the model's lock: captures running meanwhile are unaffected."""
    from concurrent.futures import ThreadPoolExecutor

    reference = tiny_lm.capture(PROMPT)
    with ThreadPoolExecutor(max_workers=3) as pool:
        pipes = [pool.submit(head_pipeline, tiny_lm, reference.token_ids, i % 3) for i in range(8)]
        caps = [pool.submit(tiny_lm.capture, PROMPT) for _ in range(8)]
        for future in caps:  # captures waiting together may share a padded pass: float rounding only
            np.testing.assert_allclose(future.result().attention, reference.attention, atol=1e-6, rtol=0)
        for i, future in enumerate(pipes):
            assert np.allclose(future.result().weights, reference.attention[i % 3], atol=1e-5)
    assert tiny_lm.model.config._attn_implementation == "eager"


LONG_TEXT = ("The quick brown fox jumps over the lazy dog because it can, and then it runs home again to sleep "
             "until the morning, when the birds sing and the sun rises over the quiet hills.")


def test_a_long_prompt_keeps_no_whole_weights_and_its_rows_equal_transformers(tiny_lm, monkeypatch):
    """Long (here from 8 tokens): recorded under the fast kernel, no (H, T, T) array kept, any rows of
    the pattern computed on demand and equal to transformers' own eager attentions."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    ids = tiny_lm.encode(LONG_TEXT)
    T = len(ids)
    with torch.no_grad():
        ref = tiny_lm.model(torch.tensor(ids)[None], output_attentions=True, use_cache=False).attentions
    kernels = []
    handle = tiny_lm.layout.attentions[0].register_forward_pre_hook(
        lambda module, args: kernels.append(tiny_lm.model.config._attn_implementation))
    try:
        pipes = [head_pipeline(tiny_lm, ids, layer) for layer in range(tiny_lm.summary.n_layers)]
    finally:
        handle.remove()
    assert set(kernels) == {FAST}
    for layer, pipe in enumerate(pipes):
        assert pipe.weights is None and pipe.n_tokens == T
        for h in range(pipe.n_heads):
            np.testing.assert_allclose(pipe.pattern_rows(h, 0, T), ref[layer][0, h].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(pipe.pattern_rows(1, 5, 9), pipe.pattern_rows(1, 0, T)[5:9], atol=1e-7)
        np.testing.assert_allclose(pipe.score_rows(1, 5, 9), pipe.score_rows(1, 0, T)[5:9], atol=1e-6)
