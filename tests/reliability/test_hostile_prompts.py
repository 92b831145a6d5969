"""Hostile prompts through the model floor and the token views: refused with a message or shown as
literal characters, never a crash, never rendered as HTML/markdown."""
from __future__ import annotations

import unicodedata
from html.parser import HTMLParser

import pytest

from model import PromptError
from model.core.tokens import clean_prompt, token_views
from viz.labels import axis_labels
from viz.token_strip import token_strip_html

from hostile import CAPTURED, LITERALS


class _ChipText(HTMLParser):
    """Collect what a browser would show: the text of each chip (without the position subscript)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chips: list[str] = []
        self.tags: list[str] = []
        self.positions: list[int] = []  # the subscript under every token's chip
        self._in_sub = False

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag == "span":
            self.chips.append("")
        self._in_sub = tag == "sub"

    def handle_endtag(self, tag) -> None:
        self._in_sub = False if tag == "sub" else self._in_sub

    def handle_data(self, data) -> None:
        if self._in_sub:
            self.positions.append(int(data))
        elif self.chips:
            self.chips[-1] += data


def strip_parser(markup: str) -> _ChipText:
    """What a browser shows of a token strip: chip texts, tags and position subscripts."""
    parser = _ChipText()
    parser.feed(markup)
    return parser


def check_strip(tokens: list[str], ids) -> None:
    """Every token has its chip (positions 0..T-1 in order), a token that stands alone shows its
    text, and nothing shown is an invisible control character."""
    parser = strip_parser(token_strip_html(tokens, ids))
    assert parser.positions == list(range(len(tokens)))
    views = token_views(tokens)
    alone = [v.label for v in views if v.end - v.start == 1]
    shown = [c for c in parser.chips if c and not c.startswith("id ")]
    assert all(label in shown for label in alone)
    assert not any(unicodedata.category(ch) == "Cc" for chip in parser.chips for ch in chip)


def chip_texts(markup: str) -> tuple[list[str], list[str]]:
    parser = strip_parser(markup)
    return parser.chips, parser.tags


class _NoTokenizer:
    def __call__(self, *args, **kwargs):
        raise AssertionError("a refused prompt must not reach the tokenizer")


def test_empty_prompt_refused(default_lm):
    with pytest.raises(PromptError, match="empty"):
        default_lm.capture("")


def test_huge_prompt_refused_before_tokenizing(default_lm, monkeypatch):
    monkeypatch.setattr(default_lm, "tokenizer", _NoTokenizer())
    with pytest.raises(PromptError, match=r"100,000 characters.*512 tokens"):  # _NoTokenizer raises if asked
        default_lm.capture("a" * 100_000, 512)


def test_over_token_limit_names_both_numbers(default_lm):
    with pytest.raises(PromptError, match=r"is \d+ tokens long; the limit is 5 tokens"):
        default_lm.capture("one two three four five six seven eight", 5)


def test_over_the_models_own_limit_says_why(default_lm):
    limit = default_lm.token_limit.tokens
    why = "the model's|the memory|the capture cache's"
    with pytest.raises(PromptError, match=rf"is [\d,]+ tokens long; the limit is {limit:,} tokens \(({why})"):
        default_lm.encode(" word" * (limit + 10))


@pytest.mark.parametrize("name", list(CAPTURED))
def test_hostile_prompt_captures_and_shows_literally(default_lm, name):
    cap = default_lm.capture(CAPTURED[name], 512)
    assert cap.n_tokens >= 1 and len(cap.tokens) == len(cap.token_ids)
    _, tags = chip_texts(token_strip_html(cap.tokens, cap.token_ids))
    assert set(tags) <= {"style", "div", "span", "sub"}  # nothing from the prompt became a tag
    check_strip(cap.tokens, cap.token_ids)
    for label in axis_labels(cap.tokens):
        assert "<" not in label and ">" not in label  # plotly would render these


def test_tokens_of_html_prompt_join_back_to_the_literal_text(default_lm):
    text = CAPTURED["html and script"] + " " + CAPTURED["markdown and latex"]
    cap = default_lm.capture(text, 512)
    joined = "".join(cap.tokens).replace("·", " ")
    assert joined == text
    markup = token_strip_html(cap.tokens, cap.token_ids)
    assert "<script>" not in markup and "<img" not in markup
    visible = "".join(chip_texts(markup)[0]).replace("·", " ")  # the parser already unescaped
    for literal in LITERALS:
        assert literal in visible


def test_control_characters_are_visible_marks(default_lm):
    cap = default_lm.capture(CAPTURED["NUL and control characters"], 512)
    assert "<0x00>" in cap.tokens and "<0x1B>" in cap.tokens
    assert not any(ch in "".join(cap.tokens) for ch in "\x00\x01\x1b")


def test_lone_surrogates_become_replacement_characters():
    assert clean_prompt("x\ud800y\udfff") == "x\ufffdy\ufffd"
    "".join(clean_prompt("\udc80" * 3)).encode("utf-8")  # encodable: the tokenizer can take it
