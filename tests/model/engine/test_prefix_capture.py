"""Prefix-incremental capture: a prompt that starts with a cached capture's tokens runs only its new
positions (from the cached keys and values) and the assembled Capture equals a full capture of the
same ids, on tiny models of four families and on the default model. Generation extends the same way
and chooses the tokens a full recompute chooses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LanguageModel
from model.analyses.generation import Decoding, generate, last_logits
from model.engine.capture_cache import CaptureCache

PROMPT = "The quick brown fox jumps over the lazy dog because it can, and then it runs home again"
FIELDS = ("attention", "residual", "attn_out", "mlp_out", "logits")


def tiny(kind: str, vocab_size: int) -> torch.nn.Module:
    """Tiny random models of families conftest does not build (Qwen2: GQA + bias; GPT-NeoX: partial rotary)."""
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, Qwen2Config

    torch.manual_seed(0)
    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=4, max_position_embeddings=256)
    cfg = Qwen2Config(num_key_value_heads=2, **common) if kind == "qwen2" else GPTNeoXConfig(**common)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="module", params=["qwen2", "gpt_neox"])
def other_lm(request, tokenizer) -> LanguageModel:
    return LanguageModel(tiny(request.param, len(tokenizer)), tokenizer, f"tiny-{request.param}", "cpu", torch.float32)


def assert_same_capture(got, want, atol: dict[str, float]) -> None:
    assert got.tokens == want.tokens and np.array_equal(got.token_ids, want.token_ids)
    for name in FIELDS:
        # rtol: float32 rounding of large entries (the default model's stream reaches ~8,000 at the first
        # token; 16 threads summed in another order differ there by 4e-3, a relative 5e-7)
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=atol.get(name, 1e-5), rtol=2e-6,
                                   err_msg=name)
    upper = np.triu(np.ones((want.n_tokens, want.n_tokens), dtype=bool), k=1)
    assert (got.attention[..., upper] == 0).all()  # old rows padded with exact zeros for the new keys
    for (k, v), (k2, v2) in zip(got.kv, want.kv):
        np.testing.assert_allclose(k, k2, atol=atol.get("kv", 1e-5), rtol=0)
        np.testing.assert_allclose(v, v2, atol=atol.get("kv", 1e-5), rtol=0)


def check_extension(lm: LanguageModel, prompt: str, cut: int, atol: dict[str, float]) -> None:
    ids = lm.encode(prompt)
    full = lm.capture_ids(ids)
    base = lm.capture_ids(ids[:cut])
    extended = lm.extend_capture(base, ids)
    assert_same_capture(extended, full, atol)
    appended = lm.extend_capture(lm.capture_ids(ids[:-1]), ids)  # "Append" / one Generate step
    assert_same_capture(appended, full, atol)


def test_extension_equals_full_capture_tiny(tiny_lm):
    check_extension(tiny_lm, PROMPT, 6, {})


def test_extension_equals_full_capture_other_families(other_lm):
    check_extension(other_lm, PROMPT, 6, {})


def test_extension_equals_full_capture_default(default_lm):
    text = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"
    check_extension(default_lm, text, 9, {"attention": 1e-5, "logits": 5e-4, "residual": 2e-3,
                                          "attn_out": 2e-4, "mlp_out": 2e-3, "kv": 2e-4})


def test_a_shorter_or_diverging_prompt_reuses_the_shared_rows(tiny_lm):
    ids = tiny_lm.encode(PROMPT)
    full = tiny_lm.capture_ids(ids)
    head = tiny_lm.extend_capture(full, ids[:7])  # a prefix of the cached prompt: rows copied, no pass
    assert np.array_equal(head.logits, full.logits[:7])
    assert_same_capture(head, tiny_lm.capture_ids(ids[:7]), {})
    edited = ids[:5] + ids[9:]  # shares 5 tokens, then differs
    assert tiny_lm.shared_prefix(full, edited) == 5
    assert_same_capture(tiny_lm.extend_capture(full, edited), tiny_lm.capture_ids(edited), {})


def test_an_extension_prices_reruns_at_its_bases_whole_pass(tiny_lm):
    """An extension ran its new positions only (a prefix, none): what a whole pass over its tokens takes
    is its base's, scaled to its length, which the pages' "about N s" multiply (they said 1 s for a
    scan of 9 passes over 3,500 tokens after a word was appended)."""
    ids = tiny_lm.encode(PROMPT)
    base = tiny_lm.capture_ids(ids[:-4])
    assert base.pass_seconds == base.seconds
    for wanted in (ids, ids[:6]):
        extended = tiny_lm.extend_capture(base, wanted)
        assert extended.pass_seconds == pytest.approx(base.seconds * len(wanted) / base.n_tokens)
    again = tiny_lm.extend_capture(tiny_lm.extend_capture(base, ids), ids[:6])  # scaled from the scaled
    assert again.pass_seconds == pytest.approx(base.seconds * 6 / base.n_tokens)


def test_a_capture_of_another_model_is_not_reused(tiny_lm, tokenizer):
    other = LanguageModel(tiny("qwen2", len(tokenizer)), tokenizer, "tiny-qwen2", "cpu", torch.float32)
    ids = tiny_lm.encode(PROMPT)
    assert tiny_lm.shared_prefix(other.capture_ids(ids[:6]), ids) == 0
    got = tiny_lm.extend_capture(other.capture_ids(ids[:6]), ids)
    np.testing.assert_array_equal(got.logits, tiny_lm.capture_ids(ids).logits)


def test_cache_extends_from_the_longest_shared_capture(tiny_lm, monkeypatch):
    cache = CaptureCache(budget_bytes=2**30)
    ids = tiny_lm.encode(PROMPT)
    ran = []
    real = tiny_lm.forward
    monkeypatch.setattr(tiny_lm, "forward", lambda new, **kw: ran.append(len(new)) or real(new, **kw))
    cache.get_or_extend("short", tiny_lm, ids=ids[:4])
    cache.get_or_extend("mid", tiny_lm, ids=ids[:10])
    cap = cache.get_or_extend("long", tiny_lm, ids=ids)
    assert ran == [4, 6, len(ids) - 10]  # each pass ran only the positions no cached capture had
    assert cache.get_or_extend("long", tiny_lm, ids=ids) is cap and cache.computed == 3
    monkeypatch.undo()
    assert_same_capture(cap, tiny_lm.capture_ids(ids), {})


def test_cache_tokenizes_a_prompt_on_a_miss(tiny_lm):
    cache = CaptureCache(budget_bytes=2**30)
    cap = cache.get_or_extend("k", tiny_lm, prompt=PROMPT, max_tokens=64)
    assert cap.prompt == PROMPT and list(cap.token_ids) == tiny_lm.encode(PROMPT)


def test_generation_through_the_cache_equals_full_recompute(tiny_lm):
    ids = tiny_lm.encode("Once upon a time there was")
    steps = generate(tiny_lm, ids, 8, Decoding(greedy=True))
    context = list(ids)
    for step in steps:  # the old path: every step recomputes the whole context
        row = last_logits(tiny_lm, context)
        assert step.token_id == int(np.argmax(row)) and step.context == tuple(context)
        np.testing.assert_allclose(step.logits, row, atol=1e-5, rtol=0)
        context.append(step.token_id)


def test_generation_through_the_cache_equals_full_recompute_default(default_lm):
    ids = default_lm.encode("The three primary colours are")
    steps = generate(default_lm, ids, 6, Decoding(greedy=True))
    for step in steps:
        row = last_logits(default_lm, list(step.context))
        assert step.token_id == int(np.argmax(row))
        np.testing.assert_allclose(step.logits, row, atol=2e-4, rtol=0)
