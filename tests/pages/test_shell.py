"""The shell: start page, shared sidebar, prompt edits, shareable links and the capture export."""
from __future__ import annotations

import gc
import io

import numpy as np
import streamlit as st
import torch
from apptest_session import open_app_page
from streamlit.testing.v1 import AppTest


def run_app(**params) -> AppTest:
    return open_app_page(**params)


def metric_values(at: AppTest) -> list[str]:
    return [m.value for m in at.metric]


def test_start_page_shows_the_pass():
    at = run_app()
    assert not at.exception
    assert metric_values(at)[:2] == ["5 × 576", "30"]
    assert at.sidebar.text_area(key="prompt").value == "The capital of France is"
    table = at.dataframe[0].value
    assert table["next token"].iloc[0] == "·Paris"


def test_new_prompt_changes_what_is_shown():
    at = run_app()
    at.sidebar.text_area(key="prompt").set_value("Hello world, this is a longer prompt")
    at.run()
    assert not at.exception
    assert metric_values(at)[0] == "8 × 576"


def test_example_loads_into_prompt():
    at = run_app()
    at.sidebar.selectbox(key="example").set_value("A line of code")
    at.run()
    # AppTest drops sidebar elements from its tree after a rerun under st.navigation: read the state.
    assert at.session_state["prompt"].startswith("def add(a, b):")
    assert metric_values(at)[0] != "5 × 576"
    assert at.session_state["example"] is None  # the box loads, then names no prompt the field may not hold
    at.session_state["prompt"] = "Something else entirely"
    at.run()
    at.sidebar.selectbox(key="example").set_value("A line of code")
    at.run()
    assert at.session_state["prompt"].startswith("def add(a, b):")  # the same example loads again


def test_link_restores_prompt_and_layer():
    at = run_app(prompt="Rome is the capital of", layer="4", head="2", temperature="0.5")
    assert not at.exception and not at.warning
    assert at.sidebar.text_area(key="prompt").value == "Rome is the capital of"
    assert at.session_state["layer"] == 4 and at.session_state["head"] == 2
    assert at.session_state["temperature"] == 0.5
    assert at.query_params["prompt"] in ("Rome is the capital of", ["Rome is the capital of"])


def test_bad_link_values_fall_back_with_notice():
    at = run_app(layer="99", head="x", temperature="-3", model="no-such/model-offered")
    assert not at.exception
    notices = " ".join(w.value for w in at.warning).replace("\\", "")  # as shown: markdown escapes read as the character
    assert "layer '99'" in notices and "head 'x'" in notices and "temperature '-3'" in notices
    assert "layer" not in at.session_state or at.session_state["layer"] != 99


def test_capture_exports_as_npz(default_lm):
    from model.analyses.export import capture_npz

    cap = default_lm.capture("a b c")
    data = np.load(io.BytesIO(capture_npz(cap, default_lm.logit_stats(cap))))
    assert data["attention"].shape == cap.attention.shape
    assert list(data["tokens"]) == cap.tokens
    np.testing.assert_array_equal(data["logits"], cap.logits)
    probabilities = np.exp(data["next_token_logits"][:-1] - data["logits_lse"][:-1])  # p(each next token)
    np.testing.assert_allclose(probabilities, torch.softmax(torch.tensor(np.asarray(cap.logits[:-1])).double(), -1)
                               .numpy()[np.arange(cap.n_tokens - 1), cap.token_ids[1:]], rtol=1e-5)


def test_file_names_follow_prompt_and_view():
    from viz.export import file_name

    assert file_name("The capital of France is", "attention_L5H3", "csv") == "attention_L5H3_the-capital-of-france-is.csv"
    assert file_name("<script>", "capture", "npz") == "capture_script.npz"


def test_first_run_of_a_fresh_process_turns_the_collector_back_on():
    """app.py imports and loads the model with the cyclic garbage collector paused. If it did not come
    back on, every reference cycle made afterwards would stay in memory for the life of the server."""
    st.cache_resource.clear()  # what a fresh process looks like: no model loaded yet
    frozen = gc.get_freeze_count()
    at = run_app()
    assert not at.exception
    assert metric_values(at)[:2] == ["5 × 576", "30"]
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # the libraries' objects were moved out of the collector's reach
