"""Keeping queries, keys and recipes during a pass (model/engine/qk_recording.py): patterns on demand
equal the captured ones, the pass runs the fast kernel where the family has one, and a call whose
recipe the patterns cannot follow leaves a problem naming why (never a wrong pattern)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers.models.llama import modeling_llama

from model import LanguageModel
from model.engine import attention
from model.engine.attention import FAST, LISTEN, Call, listening, listening_kernel
from model.engine.qk_recording import PatternRecording

PROMPT = "The cat sat on the mat and the cat"


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, temperature=1.0,
                            **kwargs):
    """The eager attention of a made-up family that divides its scores by a temperature it is given."""
    return modeling_llama.eager_attention_forward(module, query, key, value, attention_mask, scaling / temperature,
                                                  dropout)


class TemperedAttention(torch.nn.Module):
    """An attention module of that family (family_eager finds the function above in this module)."""

    num_key_value_groups = 2


def test_patterns_on_demand_equal_the_capture_and_run_the_fast_kernel(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    ids = cap.token_ids.tolist()
    assert listening_kernel(tiny_lm.model, tiny_lm.layout, torch.tensor([ids])) == FAST
    patterns = tiny_lm.patterns(ids)
    assert patterns.n_layers == tiny_lm.summary.n_layers and patterns.n_tokens == cap.n_tokens
    for layer in range(patterns.n_layers):
        for head in range(patterns.n_heads(layer)):
            np.testing.assert_allclose(patterns.head(layer, head), cap.attention[layer, head], atol=1e-6)
    assert not attention._LISTENERS and tiny_lm.model.config._attn_implementation == "eager"


def test_the_fast_kernel_gives_the_models_own_output(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    heard: list[Call] = []
    fast = tiny_lm.forward(ids, hooks=lambda layout: listening(layout, heard.append), attention=FAST)
    np.testing.assert_allclose(fast.logits, tiny_lm.forward(ids).logits, atol=1e-5)
    assert [c.layer for c in heard] == list(range(tiny_lm.summary.n_layers))
    assert all(c.weights is None and c.kernel == FAST for c in heard)


@pytest.fixture(scope="module")
def llama_call(tokenizer) -> Call:
    """Layer 0's call of a tiny Llama under the family's eager attention (additive causal mask)."""
    from tiny_models import tiny_model

    lm = LanguageModel(tiny_model("llama", len(tokenizer)), tokenizer, "tiny-llama", "cpu", torch.float32)
    heard: list[Call] = []
    lm.forward(lm.encode(PROMPT), hooks=lambda layout: listening(layout, heard.append, [0]), attention=LISTEN)
    return heard[0]


def _problem(call: Call) -> str | None:
    recording = PatternRecording(1)
    with torch.no_grad():
        recording.hear(call)
    return recording.problem


def test_a_plain_call_is_kept(llama_call):
    assert _problem(llama_call) is None
    assert _problem(dataclasses.replace(llama_call, kwargs={**llama_call.kwargs, "temperature": 2.0})) is None  # ignored


def test_a_mask_that_adds_a_bias_is_refused(llama_call):
    n = llama_call.query.shape[-2]
    alibi = -0.5 * (torch.arange(n)[:, None] - torch.arange(n)[None, :]).clamp(min=0).float()  # (T, T)
    assert "bias" in _problem(dataclasses.replace(llama_call, mask=llama_call.mask + alibi))


def test_a_mask_that_hides_other_keys_is_refused(llama_call):
    padded = llama_call.mask.clone()
    padded[..., 0] = torch.finfo(torch.float32).min  # the first key hidden from every query: padding
    assert "padding" in _problem(dataclasses.replace(llama_call, mask=padded))


def test_a_position_bias_is_refused(llama_call):
    biased = {**llama_call.kwargs, "position_bias": torch.zeros(1, 4, 9, 9)}
    assert "position_bias" in _problem(dataclasses.replace(llama_call, kwargs=biased))


def test_an_argument_that_moves_the_scores_is_refused_by_name(llama_call):
    tempered = dataclasses.replace(llama_call, module=TemperedAttention(), kwargs={"temperature": 2.0})
    problem = _problem(tempered)
    assert problem is not None and "not the softmax" in problem and "temperature" in problem


def test_a_batch_and_a_silent_family_are_refused(llama_call):
    two = dataclasses.replace(llama_call, query=llama_call.query.expand(2, -1, -1, -1))
    assert "single sequence" in _problem(two)
    assert "attention interface" in PatternRecording(2).problem


def test_patterns_on_demand_equal_the_default_models_capture(default_lm):
    """Under eager attention the recomputed patterns are the capture's to the bit; under the fast kernel
    its float32 rounding moves the later layers' queries and keys, and their patterns by ~2e-6."""
    cap = default_lm.capture("When Mary and John went to the store, John gave a drink to")
    ids = cap.token_ids.tolist()
    for patterns, tolerance in ((default_lm.patterns(ids, eager=True), 1e-6), (default_lm.patterns(ids), 1e-5)):
        for layer in range(patterns.n_layers):
            for head in range(patterns.n_heads(layer)):
                np.testing.assert_allclose(patterns.head(layer, head), cap.attention[layer, head], atol=tolerance,
                                           err_msg=f"layer {layer} head {head}")
