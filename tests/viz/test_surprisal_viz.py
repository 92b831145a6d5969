"""The surprisal strip from a hand-made result: tags show as text, the first token says it has no
prediction, darker means more surprising, and the summary names the most surprising token."""
from __future__ import annotations

import html
import re

import numpy as np

from model.analyses.surprisal import Surprisal
from viz.surprisal import SCALE_BITS, colour, summary, surprisal_strip_html

TOKENS = ["<script>", "alert", "(1)", "</script>", "·ok"]
BITS = np.array([np.nan, 1.0, 12.5, 0.2, 30.0])


def result() -> Surprisal:
    p = 2.0 ** -BITS
    top = np.array([[-1, -1], [5, 6], [6, 7], [7, 8], [8, 9]])
    top_p = np.array([[np.nan] * 2, [0.5, 0.2], [0.3, 0.1], [0.87, 0.01], [0.6, 0.3]])
    return Surprisal(BITS, p, np.array([-1, 1, 40, 1, 12_345]), top, top_p)


EXPECTED = [[], ["<b>", "·x"], ["·y", "&amp;"], ["</script>", "·z"], ["·a", "·b"]]


def titles(strip: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'title="([^"]*)"', strip)]


def test_token_text_shows_as_text_never_as_html() -> None:
    strip = surprisal_strip_html(TOKENS, result(), EXPECTED, note=summary(TOKENS, result(), "<b>"))
    assert "<script>" not in strip and "</script>" not in strip and "<b>" not in strip
    assert "&lt;script&gt;" in strip and "&amp;amp;" in strip  # a typed entity stays the characters typed
    assert re.findall(r"<span[^>]*>([^<]*)</span>", strip)[1:] == [html.escape(t) for t in TOKENS]


def test_hover_gives_surprisal_probability_rank_and_alternatives() -> None:
    hover = titles(surprisal_strip_html(TOKENS, result(), EXPECTED))
    assert hover[0].startswith("position 0 · <script>\nno prediction")
    assert hover[2] == "position 2 · (1)\n12.50 bits · p = 0.00017 · its guess number 40\nexpected: '·y' 30.0%, '&amp;' 10.0%"
    assert "its top guess" in hover[3] and "expected: '</script>' 87.0%" in hover[3]
    assert "p = 9.3e-10" in hover[4] and "guess number 12,345" in hover[4]


def test_window_keeps_the_prompt_positions() -> None:
    hover = titles(surprisal_strip_html(TOKENS[3:], result(), EXPECTED[3:], start=3))
    assert [h.split(" · ")[0] for h in hover] == ["position 3", "position 4"]


def test_more_surprise_is_darker_and_saturates() -> None:
    shades = [colour(b)[0] for b in (0.0, 4.0, 8.0, 12.0, SCALE_BITS)]
    sums = [sum(map(int, re.findall(r"\d+", s))) for s in shades]
    assert sums == sorted(sums, reverse=True) and len(set(sums)) == 5
    assert colour(SCALE_BITS * 3) == colour(SCALE_BITS) and colour(0.0)[1] != colour(SCALE_BITS)[1]


def test_summary_names_the_most_surprising_token_from_its_numbers() -> None:
    text = summary(TOKENS, result(), "·a")
    assert text.startswith("Most surprising: '·ok' at position 4, 30.0 bits (p = 9.3e-10); the model expected '·a'.")
    assert "On average 10.9 bits per token" in text and "top guess at 2 of 4 positions" in text
    one = Surprisal(np.array([np.nan]), np.array([np.nan]), np.array([-1]), np.full((1, 2), -1), np.full((1, 2), np.nan))
    assert "nothing comes before it" in summary(["Hi"], one, "")


def test_a_long_prompt_fits_one_overview_row_that_finds_its_surprise() -> None:
    """2,000 tokens in 128 cells: every predicted position in exactly one, the surprise's cell darkest."""
    n = 2000
    bits = np.full(n, 1.0)
    bits[0], bits[1234] = np.nan, 25.0
    long = Surprisal(bits, 2.0 ** -bits, np.ones(n, dtype=np.int64), np.zeros((n, 1), dtype=np.int64), np.ones((n, 1)))
    tokens = [f"t{i}" for i in range(n)]
    tokens[1234] = "<script>"
    strip = surprisal_strip_html(tokens[:256], long, [["x"]] * 256, whole=tokens)
    cells = re.findall(r'<span style="background:(rgb\([\d,]+\))" title="positions (\d+)–(\d+)([^"]*)"></span>', strip)
    assert len(cells) == 128 and cells[0][1] == "1" and cells[-1][2] == "1999"
    assert all(int(b[1]) == int(a[2]) + 1 for a, b in zip(cells, cells[1:]))  # no gap, no overlap
    (peak,) = [c for c in cells if int(c[1]) <= 1234 <= int(c[2])]
    assert "most surprising: &#x27;&lt;script&gt;&#x27; at position 1234, 25.0 bits" in peak[3]
    assert "<script>" not in strip and len(set(c[0] for c in cells)) == 2  # only the surprise's cell stands out
    assert 'class="xr-sup-all"' not in surprisal_strip_html(TOKENS, result(), EXPECTED)  # a short prompt needs none
