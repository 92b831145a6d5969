"""The token strip shows token text as text: markup in a prompt is escaped, never rendered."""
from __future__ import annotations

import html
import re

from viz.token_strip import token_strip_html


def visible_text(markup: str) -> list[str]:
    body = markup.split("</style>", 1)[1]
    return [html.unescape(m) for m in re.findall(r'<span class="xr-chip[^"]*" title="[^"]*">(.*?)<sub>', body)]


def test_every_token_is_a_chip_with_position_and_id():
    out = token_strip_html(["The", "·cat"], [504, 2368])
    assert visible_text(out) == ["The", "·cat"]
    assert 'title="position 1 · id 2368 · ·cat"' in out


def test_markup_is_escaped():
    tokens = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "**x**", "$x$"]
    out = token_strip_html(tokens, [1, 2, 3, 4])
    assert "<script>" not in out and "<img" not in out
    assert visible_text(out) == tokens


def test_highlight_and_overflow():
    out = token_strip_html(["a", "b", "c"], [1, 2, 3], highlight=1, max_chips=2)
    assert out.count("xr-hi") == 2  # the style rule + the highlighted chip
    assert "… 1 more" in out


def test_split_character_is_one_group_with_its_ids():
    out = token_strip_html(["<0xE6><0x88>", "<0x91>", "是"], [19805, 235, 27830], highlight=1)
    group = re.search(r'<span class="xr-group" title="([^"]*)"><span class="xr-glyph">(.*?)</span>', out)
    assert group and group.group(2) == "我" and "E6 88 91" in group.group(1)
    assert visible_text(out) == ["id 19805", "id 235", "是"]
    assert 'title="position 0 · id 19805 · 我… · alone: &lt;0xE6&gt;&lt;0x88&gt; · byte token: ' in out  # byte view
    assert out.count('class="xr-chip xr-hi"') == 1


def test_group_text_stays_escaped():
    out = token_strip_html(["<b>", "<0xF0><0x9F>", "<0x91><0x8D>", "<i>x"], [1, 2, 3, 4])
    body = out.split("</style>", 1)[1]
    assert "<b>" not in body and "<i>" not in body and "&lt;b&gt;" in body and "&lt;i&gt;x" in body
    assert '<span class="xr-glyph">👍</span>' in body


def test_long_prompt_starts_as_one_scrollable_line():
    short, long = token_strip_html(["a"] * 5, range(5)), token_strip_html(["a"] * 150, range(150))
    assert "xr-line" not in short.split("</style>", 1)[1]
    assert '<div class="xr-strip xr-line">' in long and "<details" in long and "150 tokens" in long


def test_byte_tokens_explain_themselves_on_hover():
    """An emoji the vocabulary lacks comes as <0xF0><0x9F>...: every chip holding bytes says why, and the
    explanation is escaped like the rest (its own <0xF0> example included)."""
    out = token_strip_html(["Hi", "<0xF0><0x9F>", "<0x91><0x8D>", "<0xF0>"], [1, 2, 3, 4])
    titles = re.findall(r'<span class="xr-chip[^"]*" title="([^"]*)"', out)
    assert "byte token" not in titles[0] and all("byte token: the tokenizer has no piece" in t for t in titles[1:])
    assert all("<0x" not in t and "&lt;0xF0&gt; is the byte F0" in t for t in titles[1:])
    group = re.search(r'<span class="xr-group" title="([^"]*)"', out).group(1)
    assert "no piece for this character" in group
