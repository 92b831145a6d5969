"""The Next-token page: loads, the temperature redraws the bars without a new forward pass, and
appending a token extends the prompt."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from streamlit.testing.v1 import AppTest

from pages import captures

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/next_token.py").run()
    assert not at.exception
    return at


def bars(at: AppTest):
    chart = at.get("plotly_chart")[0]
    fig = json.loads(chart.proto.spec)
    main = next(t for t in fig["data"] if t["name"].startswith("T = ") and "model" not in t["name"])
    return list(main["y"]), decode(main["x"])


def decode(values) -> list[float]:
    """Plotly ships numpy arrays as base64 typed arrays; plain lists pass through."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return [float(v) for v in values]


def test_page_shows_paris_on_top():
    at = open_page()
    labels, probs = bars(at)
    assert labels[0] == "·Paris" and labels[-1] == "all other tokens" and len(labels) == 21
    assert abs(sum(probs) - 1) < 1e-6
    assert at.selectbox(key="position").value == 4  # the last of 5 tokens


def test_temperature_changes_bars_without_new_capture():
    at = open_page()
    _, before = bars(at)
    computed = captures.capture_cache().computed
    at.slider(key="temperature").set_value(0.3).run()
    assert not at.exception
    _, sharp = bars(at)
    at.slider(key="temperature").set_value(0.0).run()
    _, greedy = bars(at)
    assert sharp[0] > before[0] and greedy[0] == 1.0 and sum(1 for p in greedy if p > 0) == 1
    assert captures.capture_cache().computed == computed  # no forward pass ran


def test_append_greedy_extends_the_prompt():
    at = open_page()
    at.button(key="nt_append_greedy").click().run()
    assert not at.exception
    assert at.session_state["prompt"] == "The capital of France is Paris"
    assert at.selectbox(key="position").value == 5  # follows the new last token


def test_earlier_position_cannot_append():
    at = open_page()
    at.selectbox(key="position").set_value(1).run()
    assert not at.exception
    labels, _ = bars(at)
    assert at.button(key="nt_append_greedy").disabled and labels[0] != "·Paris"



def test_settings_survive_a_page_switch():
    at = open_page()
    at.slider(key="temperature").set_value(0.4).run()
    at.number_input(key="nt_n").set_value(7).run()
    at.switch_page("pages/overview.py").run()
    at.switch_page("pages/next_token.py").run()
    assert not at.exception and not at.warning
    labels, _ = bars(at)
    assert at.slider(key="temperature").value == 0.4 and len(labels) == 8
