"""Readable tokens: visible whitespace, bytes for partial UTF-8, never a bare replacement char."""
from __future__ import annotations

from model.tokens import clean_prompt, make_visible, readable_tokens


def test_whitespace_and_controls_visible():
    assert make_visible(" a\n\tb\x00") == "·a↵⇥b<0x00>"


def test_partial_utf8_tokens_show_bytes(tokenizer):
    ids = tokenizer("世界 🙂 café")["input_ids"]
    tokens = readable_tokens(tokenizer, ids)
    assert all("\ufffd" not in t for t in tokens)
    assert any(t.startswith("<0x") for t in tokens)
    assert "é" in "".join(tokens)


def test_lone_surrogates_replaced():
    assert clean_prompt("a\ud800b") == "a\ufffdb"
    assert clean_prompt("plain") == "plain"
