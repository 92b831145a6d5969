"""Learned attention sinks (gpt-oss): step by step puts each head's sink logit into its softmax, so
its pattern is transformers' own eager attentions and each row's missing mass is the sink's weight.
A family whose sinks (or anything else) the steps cannot rebuild is refused, never shown wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_families import PROMPT, SIZE, build, spread_sinks

from model import LanguageModel, UnsupportedModelError
from model.analyses import head_pipeline as hp
from model.analyses.head_pipeline import head_pipeline
from model.engine import language_model


@pytest.fixture(scope="module")
def sink_lm(tokenizer) -> LanguageModel:
    return LanguageModel(build("gpt_oss"), tokenizer, "tiny-gpt_oss", "cpu", torch.float32)


@pytest.fixture(scope="module")
def eager(sink_lm):
    """Token ids and transformers' own eager attentions (L tensors of (H, T, T)) for them."""
    ids = sink_lm.encode(PROMPT)
    with torch.no_grad():
        out = sink_lm.model(torch.tensor(ids)[None], output_attentions=True, use_cache=False)
    return ids, [a[0].numpy() for a in out.attentions]


def _plain_softmax(pipe: hp.HeadPipeline) -> np.ndarray:
    """(H, T, T) the softmax without the sink: what step by step computed before it knew of sinks."""
    return np.stack([hp._softmax(pipe.masked_scores(h), None)[:, :-1] for h in range(pipe.n_heads)])


@pytest.mark.parametrize("layer", [0, 1])  # block 0 has a sliding window of 4, block 1 full attention
def test_pattern_equals_transformers_eager_attentions(sink_lm, eager, layer):
    ids, attentions = eager
    pipe = head_pipeline(sink_lm, ids, layer)
    np.testing.assert_allclose(pipe.weights, attentions[layer], atol=1e-6)
    ours = np.stack([pipe.softmax(h) for h in range(pipe.n_heads)])  # (H, T, T) from q.k and the sinks
    np.testing.assert_allclose(ours, attentions[layer], atol=1e-5)
    assert np.abs(_plain_softmax(pipe) - attentions[layer]).max() > 0.1  # without the sink: visibly wrong


@pytest.mark.parametrize("layer", [0, 1])
def test_rows_sum_below_one_and_the_sink_took_the_rest(sink_lm, eager, layer):
    ids, attentions = eager
    pipe = head_pipeline(sink_lm, ids, layer)
    module = sink_lm.layout.attentions[layer]
    np.testing.assert_array_equal(pipe.sinks, module.sinks.detach().numpy())
    rows = attentions[layer].sum(-1)  # (H, T) the model's own row sums
    assert pipe.has_sinks and pipe.sink_weight.shape == rows.shape
    assert (rows < 1 - 1e-3).all()
    np.testing.assert_allclose(1 - rows, pipe.sink_weight, atol=1e-5)
    h, q = 2, len(ids) - 1  # one cell by hand: exp(sink) over exp(sink) + the row's exp(scores)
    visible = pipe.score_rows(h, q, q + 1)[0][~pipe.masked[q]].astype(np.float64)
    by_hand = np.exp(pipe.sinks[h]) / (np.exp(pipe.sinks[h]) + np.exp(visible).sum())
    assert pipe.sink_weight[h, q] == pytest.approx(by_hand, abs=1e-6)


def test_models_without_sinks_say_so(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    pipe = head_pipeline(tiny_lm, cap.token_ids, 0)
    assert not pipe.has_sinks and pipe.sinks is None and pipe.sink_weight is None
    np.testing.assert_allclose(pipe.weights.sum(-1), 1, atol=1e-5)


def test_a_softmax_that_misses_the_sink_is_refused(sink_lm, eager, monkeypatch):
    """Were the sink lost (a family passing it some other way), the steps refuse instead of drawing a
    softmax that disagrees with the model's pattern."""
    monkeypatch.setattr(hp, "_sink_logits", lambda module, kwargs: None)
    with pytest.raises(UnsupportedModelError, match="not the softmax of the scores") as refused:
        head_pipeline(sink_lm, eager[0], 1)
    assert "GptOssForCausalLM (gpt_oss)" in str(refused.value)


def test_sinks_that_scale_the_output_are_refused(tokenizer):
    """Granite SWA applies its sink as a scale on each head's output after a plain softmax: the
    attentions it reports add up to 1 but are not what moved the output, so step by step refuses."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("granite_swa", vocab_size=4096, **{**SIZE, "num_key_value_heads": 2})
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    spread_sinks(model, 0)
    lm = LanguageModel(model, tokenizer, "tiny-granite_swa", "cpu", torch.float32)
    with pytest.raises(UnsupportedModelError, match="scale each head's output") as refused:
        head_pipeline(lm, lm.encode(PROMPT), 1)
    assert "(granite_swa)" in str(refused.value)


def test_bfloat16_sink_model_is_checked_in_float32(tokenizer):
    """A 16-bit model's attention is rerun in float32 for the check: the steps are shown, the pattern
    is the capture's, and rows still lose what the sink took (to bfloat16's rounding)."""
    lm = LanguageModel(build("gpt_oss").to(torch.bfloat16), tokenizer, "tiny-gpt_oss-bf16", "cpu", torch.bfloat16)
    cap = lm.capture(PROMPT)
    pipe = head_pipeline(lm, cap.token_ids, 1)
    np.testing.assert_allclose(pipe.weights, cap.attention[1], atol=1e-6)
    np.testing.assert_allclose(1 - pipe.weights.sum(-1), pipe.sink_weight, atol=2e-2)


def test_captions_say_where_the_rest_of_a_row_went(sink_lm, eager, tiny_lm):
    from viz.head_pipeline import sink_caption, sink_row_note

    ids, _ = eager
    pipe, q = head_pipeline(sink_lm, ids, 1), len(ids) - 1
    assert "Attention sink" in sink_caption(pipe, 2) and f"({pipe.sinks[2]:.2f}," in sink_caption(pipe, 2)
    note = sink_row_note(pipe, 2, q)
    assert f"{pipe.sink_weight[2, q]:.3f}" in note and f"{1 - pipe.sink_weight[2, q]:.3f}" in note
    plain = head_pipeline(tiny_lm, tiny_lm.encode(PROMPT), 0)
    assert sink_caption(plain, 0) is None and sink_row_note(plain, 0, 0) is None


@pytest.mark.parametrize("layer", [0, 1])
def test_a_long_prompt_is_checked_on_its_first_and_last_rows(sink_lm, eager, monkeypatch, layer):
    """Long (here from 8 tokens): no whole weights kept, every row rebuilt equal to transformers' eager
    attentions (sink and sliding window included), and a lost sink still refused from the probe rows."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    ids, attentions = eager
    pipe = head_pipeline(sink_lm, ids, layer)
    assert pipe.weights is None
    rows = np.stack([pipe.pattern_rows(h, 0, len(ids)) for h in range(pipe.n_heads)])
    np.testing.assert_allclose(rows, attentions[layer], atol=1e-5)
    monkeypatch.setattr(hp, "_sink_logits", lambda module, kwargs: None)
    with pytest.raises(UnsupportedModelError, match="not the softmax of the scores"):
        head_pipeline(sink_lm, ids, layer)
