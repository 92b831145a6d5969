"""Readable tokens: visible whitespace, bytes for partial UTF-8, never a bare replacement char."""
from __future__ import annotations

from model.core.tokens import character_labels, clean_prompt, make_visible, readable_tokens, token_views


def test_whitespace_and_controls_visible():
    assert make_visible(" a\n\tb\x00") == "·a↵⇥b<0x00>"
    assert make_visible("\ufe0f") == "<U+FE0F>" and make_visible("\u200d\ufe0f") == "<U+200D><U+FE0F>"  # no blank cell
    assert make_visible("\u2764\ufe0f") == "\u2764\ufe0f"  # a selector after its character stays with it


def test_partial_utf8_tokens_show_bytes(tokenizer):
    ids = tokenizer("世界 🙂 café")["input_ids"]
    tokens = readable_tokens(tokenizer, ids)
    assert all("\ufffd" not in t for t in tokens)
    assert any(t.startswith("<0x") for t in tokens)
    assert "é" in "".join(tokens)


def test_lone_surrogates_replaced():
    assert clean_prompt("a\ud800b") == "a\ufffdb"
    assert clean_prompt("plain") == "plain"


def test_chinese_characters_rebuilt_across_byte_tokens(tokenizer):
    prompt = "我是一个学生，我喜欢读书。"
    ids = tokenizer(prompt)["input_ids"]
    raw = readable_tokens(tokenizer, ids)
    views = token_views(raw)
    assert raw[:2] == ["<0xE6><0x88>", "<0x91>"]  # the byte view: what each token is alone
    assert [v.label for v in views[:2]] == ["我…", "…我"] and views[0].spelled == views[1].spelled == "我"
    assert (views[0].start, views[0].end) == (0, 2) and views[2].label == "是"
    assert not any("<0x" in v.label for v in views)  # every split character found its bytes
    runs = {(v.start, v.end): v.spelled for v in views}
    assert "".join(runs[k] for k in sorted(runs)) == prompt  # the runs spell the prompt back
    three = [v.label for v in views if v.spelled == "喜"]
    assert three == ["喜…", "…喜…", "…喜"]


def test_emoji_rebuilt_and_latin_untouched(tokenizer):
    prompt = "I love 🙂 and 👍🏽 café"
    raw = readable_tokens(tokenizer, tokenizer(prompt)["input_ids"])
    labels = character_labels(raw)
    assert "·👍…" in labels and "…👍" in labels and "🏽…" in labels and "…🏽" in labels
    assert not any("<0x" in t for t in labels)
    assert "".join(v.spelled for v in {(v.start, v.end): v for v in token_views(raw)}.values()) == prompt.replace(" ", "·")
    latin = readable_tokens(tokenizer, tokenizer("Le café est très bon <0xE6>")["input_ids"])
    assert character_labels(latin) == latin  # nothing split: labels are the tokens themselves


def test_bytes_that_never_complete_stay_bytes():
    views = token_views(["<0xE6><0x88>", "a", "<0x91>"])  # a character cut by an unrelated token
    assert [v.label for v in views] == ["<0xE6><0x88>", "a", "<0x91>"]
    assert all(v.end - v.start == 1 for v in views)
