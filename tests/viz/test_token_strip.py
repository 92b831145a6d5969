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
