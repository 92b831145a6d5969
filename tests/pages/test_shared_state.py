"""Shared selections that must not leak from one page into the wrong place (issue 14, items 2-4):
append after arriving from another page, the token strip's highlight on a windowed Logit lens, and
Generate's temperature while Greedy is chosen."""
from __future__ import annotations

import re

from apptest_session import open_app_page
from streamlit.testing.v1 import AppTest

LONG_PROMPT = "The cat sat on the mat and the dog ran to the park. " * 8  # ~100 tokens: past the lens window


def start(prompt: str | None = None) -> AppTest:
    return open_app_page(**({"prompt": prompt} if prompt is not None else {}))


def highlighted(at: AppTest) -> list[int]:
    """Positions the token strip highlights (the chip's <sub> holds its position)."""
    return [int(p) for e in at.get("html") for p in re.findall(r'xr-chip xr-hi"[^>]*>.*?<sub>(\d+)</sub>', e.proto.body)]


def test_append_works_after_coming_from_another_page():
    at = start()
    at.switch_page("pages/attribution.py").run()  # sets the shared position (the last token)
    at.switch_page("pages/next_token.py").run()
    at.button(key="nt_append_greedy").click().run()
    assert not at.exception
    assert at.session_state["prompt"] == "The capital of France is Paris"
    assert at.selectbox(key="position").value == 5  # follows the new last token
    assert not at.button(key="nt_append_greedy").disabled  # and can append again
    at.button(key="nt_append_greedy").click().run()
    assert at.session_state["prompt"].startswith("The capital of France is Paris") and at.selectbox(key="position").value == 6


def test_strip_highlights_the_position_the_lens_follows():
    at = start(LONG_PROMPT)
    at.switch_page("pages/next_token.py").run()
    at.selectbox(key="position").set_value(4).run()  # far from the last 64 positions
    at.switch_page("pages/logit_lens.py").run()
    assert not at.exception
    followed = at.selectbox(key="position").value
    assert followed == 4 and highlighted(at) == [4]  # the lens's window opens on the chosen position


def test_generate_shows_no_temperature_while_greedy():
    at = start()
    at.switch_page("pages/next_token.py").run()
    at.session_state["temperature"] = 2.0  # what the bars' own slider reports from the browser
    at.run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception
    assert at.radio(key="gen_mode").value == "Greedy"
    assert not [s for s in at.slider if s.key == "gen_temperature"]  # greedy uses no temperature
    at.radio(key="gen_mode").set_value("Sampled").run()
    assert at.slider(key="gen_temperature").value == 2.0  # sampled: Generate's own, first taken from Next token
