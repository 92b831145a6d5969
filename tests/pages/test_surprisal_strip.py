"""The surprisal strip on Start here and in the lesson's logits step: it shows the prompt's tokens with the
model's own numbers, follows a prompt edit (no stale numbers), and a long prompt's window moves with the
token strip's slider under an overview of the whole prompt."""
from __future__ import annotations

import html
import re

import numpy as np
from apptest_session import open_app_page
from streamlit.testing.v1 import AppTest

CHIP = re.compile(r'<span (?:class="xr-none" |style="[^"]*" )title="([^"]*)">([^<]*)</span>')


def chips(at: AppTest) -> list[tuple[str, str]]:
    """(hover, token text) of every chip of the surprisal strip, in page order."""
    (body,) = [h.proto.body for h in at.get("html") if 'class="xr-sup"' in h.proto.body]
    strip = body[body.index('class="xr-sup"'):]
    return [(html.unescape(t), html.unescape(text)) for t, text in CHIP.findall(strip)]


def shown_bits(at: AppTest) -> list[float]:
    """The bits each chip's hover states (NaN for the first token's 'no prediction')."""
    return [float(m.group(1)) if (m := re.search(r"\n([\d.]+) bits", hover)) else np.nan for hover, _ in chips(at)]


def reference_bits(lm, prompt: str) -> tuple[list[str], np.ndarray]:
    """The prompt's tokens and each one's -log2 p from a float64 log-softmax of the model's own logits."""
    cap = lm.capture(prompt)
    x = cap.logits[:-1].astype(np.float64)
    log_p = x - x.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    seen = log_p[np.arange(cap.n_tokens - 1), cap.token_ids[1:]]
    return cap.tokens, np.concatenate([[np.nan], -seen / np.log(2)])


def assert_shows(at: AppTest, lm, prompt: str) -> None:
    tokens, bits = reference_bits(lm, prompt)
    assert [text for _, text in chips(at)] == tokens
    assert "no prediction" in chips(at)[0][0]
    np.testing.assert_allclose(shown_bits(at), bits, atol=0.006)  # the hover rounds to 2 decimals


def test_start_here_shows_the_strip_and_follows_a_prompt_edit(default_lm) -> None:
    at = open_app_page()
    assert not at.exception
    assert_shows(at, default_lm, "The capital of France is")
    assert any("Surprisal" in c.value and "bits" in c.value for c in at.caption)
    at.sidebar.text_area(key="prompt").set_value("Hello world, this is a longer prompt")
    at.run()
    assert not at.exception
    assert_shows(at, default_lm, "Hello world, this is a longer prompt")
    assert [m.value for m in at.metric][0] == "8 × 576"  # the rest of the page moved on with it


def test_the_lessons_logits_step_shows_the_strip_after_a_choice_and_an_edit(default_lm) -> None:
    at = open_app_page("pages/lesson.py", step="9")
    at.button(key="lesson_next").click().run()  # on to the logits step
    assert not at.exception and at.session_state["lesson_step"] == 10
    assert_shows(at, default_lm, "The capital of France is")
    at.session_state["prompt"] = "The Eiffel Tower stands in the city of"  # the learner's own edit
    at.run()
    assert not at.exception
    assert_shows(at, default_lm, "The Eiffel Tower stands in the city of")
    assert any("most likely next token is 'Paris'" in s.value.replace("\\", "") for s in at.success)


def test_a_long_prompts_strips_share_one_window() -> None:
    prompt = " ".join(f"step {i} of the walk," for i in range(60))  # ~300 tokens, past the 256 shown at once
    at = open_app_page(prompt=prompt)
    assert not at.exception
    assert len(chips(at)) == 256 and chips(at)[-1][0].startswith(f"position {at.session_state['strip_start'] + 255} ")
    at.slider(key="strip_start").set_value(10).run()
    assert not at.exception
    hovers = [hover for hover, _ in chips(at)]
    assert hovers[0].startswith("position 10 · ") and hovers[-1].startswith("position 265 · ")
    token_strip = next(h.proto.body for h in at.get("html") if "xr-chip" in h.proto.body)
    assert token_strip.count('class="xr-chip') == 256 and "<sub>10</sub>" in token_strip  # the same window
    shown = " ".join(h.proto.body for h in at.get("html"))
    n = int(at.metric[0].value.split(" × ")[0])  # the prompt's tokens
    cells = re.findall(r'title="positions (\d+)–(\d+)', shown)  # the overview of the whole prompt
    assert len(cells) == 128 and cells[0][0] == "1" and int(cells[-1][1]) == n - 1
    assert "Most surprising:" in shown


def test_a_prompt_with_tags_shows_them_as_text(default_lm) -> None:
    prompt = "<script>alert(1)</script><b>bold</b>"
    at = open_app_page(prompt=prompt)
    assert not at.exception
    (body,) = [h.proto.body for h in at.get("html") if 'class="xr-sup"' in h.proto.body]
    assert "<script" not in body and "<b>" not in body
    assert_shows(at, default_lm, prompt)
    assert "".join(text for _, text in chips(at)) == prompt
