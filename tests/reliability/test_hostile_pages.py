"""Hostile prompts on every registered page (AppTest): no page may raise. The browser test covers
script/markup, a unicode mix (emoji, combining, right-to-left), empty, one character and 100,000
characters; these are the rest."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import APP
from hostile import CAPTURED

PAGES = re.findall(r'st\.Page\(\s*"([^"]+)"', Path(APP).read_text())
pytestmark = pytest.mark.slow  # the real app and model through AppTest
CASES = {k: CAPTURED[k] for k in ("whitespace only", "NUL and control characters", "zero-width and BOM")}
CASES["over the token limit"] = "word " * 600


@pytest.mark.parametrize("name", list(CASES))
def test_every_page_survives(name):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["prompt"] = CASES[name]
    at.session_state["token_limit"] = 512  # below what the model allows: the sidebar's own limit
    at.run()
    failures, limit_named = {}, []
    for page in PAGES:
        at.switch_page(page).run()
        if at.exception:
            failures[page] = at.exception[0].value + "\n" + "\n".join(at.exception[0].stack_trace[-6:])
        if any("the limit is 512 tokens" in w.value for w in at.warning):
            limit_named.append(page)
    assert len(PAGES) >= 4
    assert not failures, "\n\n".join(f"{p}: {tb}" for p, tb in failures.items())
    if name == "over the token limit":  # every page that reads the sidebar's prompt says why it stopped
        assert len(limit_named) >= len(PAGES) - 3, limit_named  # Lesson, Patching, Prompt sets: prompts of their own


def test_refused_prompt_keeps_the_session():
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["prompt"] = "word " * 40
    at.session_state["token_limit"] = 8
    at.run()
    assert any("the limit is 8 tokens (the sidebar's token limit)" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    assert not at.exception and at.session_state["prompt"] == "word " * 40
    at.session_state["prompt"] = "A short prompt"  # the person shortens it: the session carries on
    at.run()
    assert not at.exception and at.session_state["token_limit"] == 8
    assert not any("the limit is" in w.value for w in at.warning)
