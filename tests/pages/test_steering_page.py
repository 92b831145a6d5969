"""The Steering page as a person uses it: choose a source, set a coefficient, generate; a second
generation at coefficient 0 gives two equal texts; a prompt edit keeps the choices; bad inputs each
get a message with the other settings kept; a copied link reproduces the same texts."""
from __future__ import annotations

import numpy as np
import pytest
from apptest_session import link_of
from streamlit.testing.v1 import AppTest

from model.analyses import steering as steer

PAGE = "pages/steering.py"


def _generate(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> list[str]:
    return [c.value for c in at.code]



def test_source_coefficient_generate_then_zero_then_prompt_edit(open_page, default_lm):
    at = open_page(PAGE)
    assert not at.exception and not at.code
    assert "press Generate" in at.info[0].value
    at.radio(key="steer_source").set_value("arithmetic").run()
    at.text_input(key="steer_expr").input("wedding - funeral")
    at.number_input(key="steer_block").set_value(8)
    at.number_input(key="steer_coef").set_value(6.0)
    default, steered = _texts(_generate(at))
    prompt = "The capital of France is"
    assert default.startswith(prompt) and steered.startswith(prompt) and default != steered
    assert any("different texts" in c.value for c in at.caption)
    assert any("with seed 0 at T = 1.00, the steered one with coefficient 6 at block 8" in c.value
               for c in at.caption)  # what made the texts, whatever the form shows before the next Generate
    at.number_input(key="steer_coef").set_value(0.0)  # second action: no push, two equal texts
    zero = _texts(_generate(at))
    assert zero[0] == zero[1] == default  # the same seed: the default text does not change
    assert any("the same text" in c.value for c in at.caption)
    at.sidebar.text_area(key="prompt").set_value("My favourite day was").run()  # a prompt edit after the choices
    assert not at.exception
    edited = _texts(at)
    assert edited[0].startswith("My favourite day was") and edited[0] == edited[1]
    assert at.radio(key="steer_source").value == "arithmetic" and at.number_input(key="steer_block").value == 8
    assert at.text_input(key="steer_expr").value == "wedding - funeral"


def test_teaching_numbers_are_the_models_own(open_page, default_lm):
    at = _generate(open_page(PAGE))
    setup = dict(pos="I love talking about weddings", neg="I love talking about")  # the page's default
    vector = steer.actadd(default_lm, setup["pos"], setup["neg"], 6).vector
    cap = default_lm.capture("The capital of France is")
    length, typical = float(np.linalg.norm(vector)), steer.typical_norm(cap.residual[6])
    sentence = next(m.value for m in at.markdown if "The direction's length is" in m.value)
    assert f"{length:,.1f}" in sentence and f"{typical:,.1f}" in sentence
    assert f"about {length / typical:.2g}×" in sentence  # the default coefficient, 1
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["rank", "pushed up", "logit +"] and len(table) == 10


def test_frozen_attention_is_said_where_it_applies(open_page):
    at = open_page(PAGE)
    at.toggle(key="steer_frozen").set_value(True)
    _generate(at)
    assert any("frozen attention" in h.value for h in at.subheader)
    assert len(_texts(at)) == 2


@pytest.mark.parametrize(("source", "widget", "value", "words"), [
    ("caa", "steer_pos_list", "", "at least one prompt"),
    ("caa", "steer_neg_list", "one\ntwo", "as many lines"),
    ("actadd", "steer_block", 99, "Block 99 is out of range"),
    ("arithmetic", "steer_block", 30, "Block 30 is out of range"),
    ("actadd", "steer_coef", 1e9, "too large"),
    ("actadd", "steer_start", 40, "past the prompt"),
    ("unembedding", "steer_token", " antidisestablishmentarianism", "type one token"),
])
def test_bad_inputs_get_a_message_and_keep_the_rest(open_page, source, widget, value, words):
    at = open_page(PAGE)
    at.radio(key="steer_source").set_value(source).run()
    at.number_input(key="steer_seed").set_value(7)
    box = at.number_input(key=widget) if isinstance(value, (int, float)) else (
        at.text_area(key=widget) if widget.endswith("list") else at.text_input(key=widget))
    box.set_value(value)
    _generate(at)
    assert words in at.error[0].value and "other settings are kept" in at.error[0].value
    assert not at.code
    assert at.number_input(key="steer_seed").value == 7 and at.radio(key="steer_source").value == source
    assert (at.number_input(key=widget) if isinstance(value, (int, float)) else
            (at.text_area(key=widget) if widget.endswith("list") else at.text_input(key=widget))).value == value


def test_a_link_reproduces_the_texts(open_page):
    at = open_page(PAGE, prompt="I went to the park and")
    at.radio(key="steer_source").set_value("caa").run()
    at.number_input(key="steer_coef").set_value(3.0)
    at.number_input(key="steer_seed").set_value(11)
    texts = _texts(_generate(at))
    link = link_of(at)
    assert link["s_source"] == "caa" and link["s_coef"] == "3.0" and link["s_seed"] == "11"
    assert "s_pos_list" in link and "s_expr" not in link
    again = open_page(PAGE, **link)
    assert not again.exception
    assert _texts(again) == texts  # no click needed: the link's setup is applied
    assert again.number_input(key="steer_seed").value == 11 and again.radio(key="steer_source").value == "caa"


def test_a_bad_link_value_is_named(open_page):
    at = open_page(PAGE, s_source="nowhere", s_coef="lots", s_block="3", s_temp="5", s_start="-2", s_steps="999")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert all(f"'{name}'" in warnings for name in ("source", "coef", "temp", "start", "steps"))
    assert at.number_input(key="steer_block").value == 3 and len(_texts(at)) == 2


def test_link_text_is_shown_as_text_and_a_bad_switch_is_named(open_page):
    """A prompt from the link goes into the direction's caption as literal text (no live link, no bold),
    shortened; an on/off value that is neither is ignored with a notice, not read as off."""
    at = open_page(PAGE, s_pos="[Click here](https://evil.example) **now**", s_neg="I love", s_coef="1",
                   s_frozen="maybe")
    assert not at.exception
    assert any("Ignored 'frozen'" in w.value for w in at.warning)
    (caption,) = [c.value for c in at.caption if c.value.startswith("The direction (")]
    assert r"\[Click here\](https" in caption and r"\*\*now\*\*" in caption
    long = open_page(PAGE, s_pos="wedding " * 200, s_neg="I love", s_coef="1")
    (caption,) = [c.value for c in long.caption if c.value.startswith("The direction (")]
    assert len(caption) < 600 and "…" in caption


def test_a_prompt_at_the_token_limit_says_so_and_the_chat_template_shows_the_conversation(open_page, default_lm):
    at = open_page(PAGE)
    n = len(default_lm.encode("The capital of France is"))
    at.number_input(key="token_limit").set_value(n).run()
    _generate(at)
    assert any("Nothing was generated: the prompt already fills the token limit" in w.value for w in at.warning)
    assert not any("cannot be batched" in c.value for c in at.caption)
    at.number_input(key="token_limit").set_value(n + 3).run()
    assert any("left room for 3 of the 20 tokens" in c.value for c in at.caption)
    chat = open_page(PAGE, chat="1")
    _generate(chat)
    conversation = default_lm.tokenizer.decode(default_lm.encode("The capital of France is", chat=True))
    assert all(text.startswith(conversation) for text in _texts(chat))
