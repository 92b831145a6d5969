"""Many users, one process: concurrent captures equal sequential ones, a simulated GPU out-of-memory
falls back to the CPU, and every bound (cache bytes, token limit) holds when pushed past."""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import model.engine.language_model as language_model
from model import CaptureError, LanguageModel, PromptError
from model.engine.capture_cache import CaptureCache

PROMPTS = [f"User {i} asks why" + " so" * (i % 3) for i in range(8)]


def test_eight_users_share_the_default_model_through_the_cache(default_lm):
    sequential = [default_lm.capture(p) for p in PROMPTS]
    cache = CaptureCache(2**30)
    with ThreadPoolExecutor(max_workers=8) as pool:
        # every prompt twice: the second asker must get the first one's capture, not a second pass
        caps = list(pool.map(lambda p: cache.get_or_compute(p, lambda: default_lm.capture(p)), PROMPTS * 2))
    assert cache.computed == len(PROMPTS)
    for seq, conc in zip(sequential * 2, caps):
        assert conc.prompt == seq.prompt
        np.testing.assert_array_equal(seq.token_ids, conc.token_ids)
        # worker threads may run torch with another OpenMP thread count than the main thread: float32
        # sums in another order differ by ~1e-6; a mixed-up session would differ by ~0.1
        np.testing.assert_allclose(conc.attention, seq.attention, atol=1e-5)
        np.testing.assert_allclose(conc.logits, seq.logits, atol=1e-4)


def test_cache_stays_within_its_byte_budget(tiny_lm):
    one = tiny_lm.capture("a b c d e f g h")
    budget = 5 * one.nbytes + one.nbytes // 2
    cache = CaptureCache(budget)
    for i in range(16):
        cache.get_or_compute(f"p{i}", lambda i=i: tiny_lm.capture(f"a b c d e f g {i}"))
        assert cache.nbytes <= budget
    assert 1 <= len(cache) <= 5
    assert cache.get("p15") is not None and cache.get("p0") is None  # oldest evicted first
    huge = tiny_lm.capture("word " * 200)
    assert huge.nbytes > budget
    assert cache.get_or_compute("huge", lambda: huge) is huge and cache.get("huge") is None
    assert cache.nbytes <= budget


def test_token_limit_is_a_hard_bound(tiny_lm):
    ok = tiny_lm.capture("word " * 15, 16)
    assert ok.n_tokens <= 16
    with pytest.raises(PromptError, match=r"limit is 16 tokens"):
        tiny_lm.capture("word " * 40, 16)


def test_out_of_memory_retries_on_cpu(tiny_lm, monkeypatch):
    lm = LanguageModel(copy.deepcopy(tiny_lm.model), tiny_lm.tokenizer, "oom-test", "cpu", torch.float32)
    expected = lm.capture("The capital of France is")
    real, calls = language_model._run_model, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(language_model, "_run_model", flaky)
    cap = lm.capture("The capital of France is")
    assert cap.device == "cpu (GPU out of memory)" and cap.dtype == "float32"
    assert len(calls) == 3  # the pass out of memory, the CPU copy's probe pass (through the gateway), the retry
    np.testing.assert_allclose(cap.logits, expected.logits, atol=1e-5)
    np.testing.assert_allclose(cap.attention, expected.attention, atol=1e-6)


def test_out_of_memory_twice_is_a_message(tiny_lm, monkeypatch):
    lm = LanguageModel(copy.deepcopy(tiny_lm.model), tiny_lm.tokenizer, "oom-test", "cpu", torch.float32)

    def always(*args, **kwargs):
        raise torch.OutOfMemoryError("out of memory (simulated)")

    monkeypatch.setattr(language_model, "_run_model", always)
    with pytest.raises(CaptureError, match="Out of memory for 1 tokens on the GPU and on the CPU"):
        lm.capture("hello")
