"""The Next-token page: loads, the temperature redraws the bars without a new forward pass, and
appending a token extends the prompt."""
from __future__ import annotations

import base64
import json

import numpy as np
from apptest_session import open_app_page
from streamlit.testing.v1 import AppTest

from pages.kit import captures


def open_page(**link: str) -> AppTest:
    at = open_app_page("pages/next_token.py", **link)
    assert not at.exception
    return at


def component_data(at: AppTest) -> dict:
    """What the page sends to the browser-side bars (pages/temperature_bars)."""
    (bars,) = at.get("bidi_component")
    return json.loads(bars.proto.json)


def labels(at: AppTest) -> list[str]:
    return component_data(at)["labels"]


def table_probabilities(at: AppTest) -> list[float]:
    """The 'Table and download' rows (Python's own numbers at the session temperature)."""
    return at.dataframe[0].value["probability"].tolist()


def test_page_shows_paris_on_top():
    at = open_page()
    data = component_data(at)
    assert data["labels"][0] == "·Paris" and len(data["labels"]) == len(data["ids"]) == 20
    row = np.frombuffer(base64.b64decode(data["logits"]), dtype="<f4")  # (V,) the browser gets every logit
    assert row.size == 49_152 and int(np.argmax(row)) == data["ids"][0]
    assert data["temperature"] == 1.0 and data["top_k"] == 0 and data["top_p"] == 1.0
    assert abs(sum(table_probabilities(at)) - 1) < 1e-6
    assert at.selectbox(key="position").value == 4  # the last of 5 tokens


def test_session_temperature_reaches_the_bars_and_the_table_without_new_capture():
    at = open_page()
    before = table_probabilities(at)
    logits = component_data(at)["logits"]
    computed = captures.capture_cache().computed
    at.session_state["temperature"] = 0.3  # what the browser's slider reports on release
    at.run()
    assert not at.exception
    assert component_data(at)["temperature"] == 0.3 and component_data(at)["logits"] == logits
    sharp = table_probabilities(at)
    at.session_state["temperature"] = 0.0
    at.run()
    greedy = table_probabilities(at)
    assert sharp[0] > before[0] and greedy[0] == 1.0 and sum(1 for p in greedy if p > 0) == 1
    assert captures.capture_cache().computed == computed  # no forward pass ran


def test_append_greedy_extends_the_prompt():
    at = open_page()
    at.button(key="nt_append_greedy").click().run()
    assert not at.exception
    assert at.session_state["prompt"] == "The capital of France is Paris"
    assert at.selectbox(key="position").value == 5  # follows the new last token


def test_earlier_position_cannot_append_and_says_why_on_the_page():
    at = open_page()
    at.selectbox(key="position").set_value(1).run()
    assert not at.exception
    assert at.button(key="nt_append_greedy").disabled and labels(at)[0] != "·Paris"
    assert any("choose position 4 (the last)" in c.value for c in at.caption)  # not only in a hover
    at.selectbox(key="position").set_value(4).run()
    assert not at.button(key="nt_append_greedy").disabled
    assert not any("choose position" in c.value for c in at.caption)


def test_settings_survive_a_page_switch():
    at = open_page()
    at.session_state["temperature"] = 0.4
    at.number_input(key="nt_n").set_value(7).run()
    at.switch_page("pages/overview.py").run()
    at.switch_page("pages/next_token.py").run()
    assert not at.exception and not at.warning
    assert at.session_state["temperature"] == 0.4 and component_data(at)["temperature"] == 0.4
    assert len(labels(at)) == 7


def test_a_byte_token_on_top_is_explained():
    """After three pizza emoji the favourite is <0xF0><0x9F>, the start of the next emoji's bytes."""
    at = open_app_page("pages/next_token.py", prompt="I love pizza 🍕🍕🍕")
    assert not at.exception and labels(at)[0] == "<0xF0><0x9F>"
    assert any("is a byte token" in c.value and "UTF-8" in c.value for c in at.caption)
    default = open_page()
    assert not any("byte token" in c.value for c in default.caption)


def test_sampling_settings_survive_a_reload():
    """Top-k, top-p and the number of bars ride in the link beside the temperature: a reload (a fresh
    session on the link) keeps them; a link's value out of range is ignored with a message."""
    at = open_page()
    assert "top_k" not in at.query_params  # defaults stay out of the link
    at.number_input(key="nt_top_k").set_value(5).run()
    at.number_input(key="nt_n").set_value(50).run()
    assert at.query_params["top_k"] == "5" and at.query_params["bars"] == "50"
    again = open_page(**dict(at.query_params))
    assert not again.exception
    assert again.number_input(key="nt_top_k").value == 5 and again.number_input(key="nt_n").value == 50
    odd = open_page(**(dict(at.query_params) | {"top_p": "7", "bars": "many"}))
    warnings = " ".join(w.value for w in odd.warning)
    assert "Ignored top_p '7'" in warnings and "Ignored bars 'many'" in warnings
    assert odd.number_input(key="nt_n").value == 20 and odd.number_input(key="nt_top_k").value == 5


def test_the_token_strip_follows_a_position_chosen_out_of_view(open_page) -> None:
    """The strip's window moved to 40 by hand, then position 6 chosen: the strip stayed on 40-295 with
    no token highlighted. A position chosen out of view brings the strip to it; the slider alone may
    still leave the highlight behind."""
    text = " ".join(f"w{i}" for i in range(160))  # > 256 tokens: the strip shows a window
    at = open_page("pages/next_token.py", prompt=text)
    at.slider(key="strip_start").set_value(40).run()
    assert at.slider(key="strip_start").value == 40  # moved by hand, away from the last token: it stays
    at.selectbox(key="position").set_value(6).run()
    assert not at.exception
    assert at.slider(key="strip_start").value <= 6
    at.slider(key="strip_start").set_value(60).run()
    assert at.slider(key="strip_start").value == 60
