"""The Patching page on the default model: the indirect-object example draws its estimate at once,
exact patching runs on the button and is compared with it, and prompts of different token lengths
are refused with a message while both token rows stay visible."""
from __future__ import annotations

import json
from pathlib import Path

from page_charts import chart_json, charts
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/patching.py").run()
    assert not at.exception
    return at


def test_estimate_then_exact_heads():
    at = open_page()
    assert at.selectbox(key="patch_a").format_func(at.selectbox(key="patch_a").value).startswith("·Mary")
    assert at.selectbox(key="patch_b").format_func(at.selectbox(key="patch_b").value).startswith("·John")
    drawn = charts(at)
    assert len(drawn) == 1  # the residual estimate, at once
    heatmap = json.loads(chart_json(drawn[0]))["data"][0]
    assert heatmap["y"][0] == "embedding" and heatmap["y"][-1] == "after block 29"
    assert "·John/·Mary (9)" in heatmap["x"]  # the differing position names both tokens
    at.radio(key="patch_view").set_value("Attention heads").run()
    at.button(key="patch_run").click().run()
    assert not at.exception
    drawn = charts(at)
    assert len(drawn) == 3  # exact, estimate, and their agreement
    assert "head 8" in chart_json(drawn[0]) and "block 29" in chart_json(drawn[0])
    r = float(at.metric[2].value)
    assert 0.5 < r <= 1.0  # the estimate agrees with exact patching on this example
    assert len(at.dataframe[0].value) == 8


def test_unequal_lengths_are_refused():
    at = open_page()
    at.text_input(key="patch_corrupted").set_value("When Mary went to the store, Mary gave a drink to").run()
    assert not at.exception
    assert "same number of tokens" in at.warning[0].value
    assert not charts(at)
    assert any("corrupted" in h.proto.body for h in at.get("html"))  # both rows still shown
