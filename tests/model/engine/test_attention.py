"""The engine's one registry of attention functions: a listener hears what each layer's attention
computed (the family's own eager numbers) and may replace it; routes live for one pass; and the
load-time probe runs through the gateway's pass under the model's lock."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from model import CaptureError, LanguageModel
from model.engine import attention, language_model
from model.engine.attention import LISTEN, Call, listening
from model.engine.patch_sites import editing

PROMPT = "The cat sat on the mat and the cat"


def test_a_listener_hears_every_layer_with_the_models_own_pattern(tiny_lm):
    cap = tiny_lm.capture(PROMPT)
    heard: list[Call] = []
    tiny_lm.forward(cap.token_ids.tolist(), hooks=lambda layout: listening(layout, heard.append), attention=LISTEN)
    s, T = tiny_lm.summary, cap.n_tokens
    assert [call.layer for call in heard] == list(range(s.n_layers))
    for call in heard:
        assert call.module is tiny_lm.layout.attentions[call.layer]
        assert call.query.shape == (1, s.n_heads, T, s.head_dim)
        assert call.value.shape == (1, s.n_kv_heads, T, s.head_dim)
        assert call.output.shape == (1, T, s.n_heads, s.head_dim)
        np.testing.assert_allclose(call.weights[0].numpy(), cap.attention[call.layer], atol=1e-6)
    assert not attention._LISTENERS and tiny_lm.model.config._attn_implementation == "eager"


def test_a_listener_hears_only_the_layers_asked_for(tiny_lm):
    heard: list[int] = []
    tiny_lm.forward(tiny_lm.encode(PROMPT), hooks=lambda layout: listening(layout, lambda c: heard.append(c.layer), [1]),
                    attention=LISTEN)
    assert heard == [1]


def test_an_edited_output_is_what_the_model_uses(tiny_lm):
    """Zeroing one head's output in the listener equals zeroing its slice at the "heads" patch site."""
    ids, head, width = tiny_lm.encode(PROMPT), 1, tiny_lm.summary.head_dim

    def silence(call: Call):
        output = call.output.clone()
        output[:, :, head] = 0
        return output, call.weights

    def zero_slice(heads: torch.Tensor) -> torch.Tensor:
        heads = heads.clone()
        heads[..., head * width:(head + 1) * width] = 0
        return heads

    heard = tiny_lm.forward(ids, hooks=lambda layout: listening(layout, silence, [0]), attention=LISTEN)
    sited = tiny_lm.forward(ids, hooks=lambda layout: editing(layout, {("heads", 0): zero_slice}))
    plain = tiny_lm.forward(ids)
    np.testing.assert_allclose(heard.logits, sited.logits, atol=1e-6)
    assert np.abs(heard.logits - plain.logits).max() > 1e-4


def test_routes_are_gone_and_eager_is_back_when_the_pass_raises(tiny_lm):
    def boom(call: Call) -> None:
        raise RuntimeError("listener failed")

    with pytest.raises(CaptureError, match="listener failed"):
        tiny_lm.forward(tiny_lm.encode(PROMPT), hooks=lambda layout: listening(layout, boom), attention=LISTEN)
    assert not attention._LISTENERS and not attention._PATTERNS
    assert tiny_lm.model.config._attn_implementation == "eager"


def test_the_probe_pass_goes_through_the_gateway_under_the_lock(tokenizer, monkeypatch):
    """Every call of the model while a LanguageModel is built comes from the gateway's pass function,
    with that LanguageModel's lock held by the calling thread."""
    calls: list[tuple[bool, bool]] = []
    model = tiny_model("llama", len(tokenizer))

    def seen(module, args, kwargs) -> None:
        frames = [f.frame for f in inspect.stack()]
        built = next(f.f_locals["self"] for f in frames if isinstance(f.f_locals.get("self"), LanguageModel))
        via_gateway = any(f.f_code is language_model._run_model.__code__ for f in frames)
        calls.append((via_gateway, built.lock._is_owned()))

    handle = model.register_forward_pre_hook(seen, with_kwargs=True)
    try:
        lm = LanguageModel(model, tokenizer, "tiny-llama", "cpu", torch.float32)
    finally:
        handle.remove()
    assert calls == [(True, True)]  # the one probe pass
    assert lm.layout.writes.exact and lm.layout.logit_map.problem is None
