"""The token limit from memory: the bytes-per-token formula against a real capture's arrays, the
operator's setting winning over memory, the model's context capping both, and the refusal's text."""
from __future__ import annotations

from dataclasses import fields

import pytest

from model import PromptError
from model.core.capture import Capture
from model.core.settings import settings
from model.engine import language_model, limits


def _array_bytes(cap: Capture, names: list[str]) -> int:
    """What the named arrays of a capture hold (kv: every layer's keys and values)."""
    kv = sum(k.nbytes + v.nbytes for k, v in cap.kv or ())
    return sum(kv if name == "kv" else getattr(cap, name).nbytes for name in names)


def test_bytes_per_token_match_a_real_capture(tiny_lm, monkeypatch):
    """Both captures long (queries and keys, the last rows of logits): the growth per token is the formula's."""
    monkeypatch.setattr(language_model, "PATTERNS_ON_DEMAND_TOKENS", 8)
    parts = limits.held_parts(tiny_lm.summary)
    kept = [name for name in parts if name in {f.name for f in fields(Capture)}]  # the arrays a capture keeps today
    assert {"residual", "attn_out", "mlp_out", "logits", "kv"} <= set(kept)
    short, long = (tiny_lm.capture_ids(list(range(3, 3 + n))) for n in (100, 200))
    slope = (_array_bytes(long, kept) - _array_bytes(short, kept)) / 100
    assert slope == pytest.approx(sum(parts[name] for name in kept), rel=0.10)
    queries = (long.attention.nbytes - short.attention.nbytes - sum(k.nbytes for k in long.attention.keys)
               + sum(k.nbytes for k in short.attention.keys)) / 100
    assert queries == parts["queries"]


def test_context_caps_what_memory_allows(tiny_lm):
    limit = limits.token_limit(tiny_lm, limits.fitting_tokens(tiny_lm))
    assert limits.fitting_tokens(tiny_lm) > 256  # a tiny model fits many more tokens than its context
    assert (limit.tokens, limit.reason) == (256, "the model's context of 256 positions")


def test_memory_limits_below_the_context(tiny_lm, monkeypatch):
    per_token = sum(limits.held_parts(tiny_lm.summary).values())
    peak = limits.peak_bytes_per_token(tiny_lm.summary, tiny_lm.facts.d_mlp, copies_logits=False)
    budget = 2**20 * settings().cache_mb + 100 * (per_token + peak)  # the cache's budget, then room for 100 tokens
    monkeypatch.setattr(limits, "free_ram", lambda: int(budget / limits.SAFETY) + 1)
    limit = limits.token_limit(tiny_lm, limits.fitting_tokens(tiny_lm))
    assert limit.tokens == 100 and limit.reason.startswith("the memory free for one capture")


def test_a_capture_the_cache_cannot_keep_is_refused(tiny_lm, monkeypatch):
    """Past what the capture cache can keep, every rerun of a page would capture the prompt again."""
    per_token = sum(limits.held_parts(tiny_lm.summary).values())
    monkeypatch.setenv("XRAY_CACHE_MB", "1")
    monkeypatch.setattr(limits, "context_length", lambda config: None)  # a tiny model's 256 positions would cap it
    settings.cache_clear()
    limit = limits.token_limit(tiny_lm, fits=10**6)
    assert limit.tokens == 2**20 // per_token  # a tiny model: a few KB a token
    assert limit.reason.startswith("the capture cache's budget of 1 MB (XRAY_CACHE_MB)")


def test_operator_setting_wins_over_memory_and_context_caps_it(tiny_lm, monkeypatch):
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "100")
    assert limits.token_limit(tiny_lm, fits=1) == limits.TokenLimit(100, "the operator's XRAY_TOKEN_LIMIT")
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "10000")
    settings.cache_clear()
    assert limits.token_limit(tiny_lm, fits=1).tokens == 256  # no position past the model's context exists


def test_refusal_names_tokens_limit_and_why(tiny_lm, monkeypatch):
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "12")
    with pytest.raises(PromptError, match=r"is \d+ tokens long; the limit is 12 tokens \(the operator's XRAY_TOKEN_LIMIT\)"):
        tiny_lm.capture("word " * 40)
    with pytest.raises(PromptError, match=r"the limit is 5 tokens \(the sidebar's token limit\)"):
        tiny_lm.capture("word " * 40, 5)
    with pytest.raises(PromptError, match=r"the limit is 12 tokens"):  # the sidebar cannot raise it
        tiny_lm.capture("word " * 40, 500)


def test_context_length_reads_the_fields_families_use():
    class Config:
        n_positions = 1024

    assert limits.context_length(Config()) == 1024
    assert limits.context_length(object()) is None
