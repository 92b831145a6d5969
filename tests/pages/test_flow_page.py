"""The Information flow page on the real default model: it draws the pruned graph, the threshold and
the prediction position change what is kept, and a picked head edge opens that head on Attention."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from page_charts import chart_json, charts
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PROMPT = "When Mary and John went to the store, John gave a drink to"


def _edges(at: AppTest) -> int:
    return int(at.metric[1].value.replace(",", ""))


def _spec(at: AppTest) -> dict:
    return json.loads(chart_json(charts(at)[0]))


@pytest.fixture(scope="module")
def flow_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["prompt"] = PROMPT
    at.run()
    at.switch_page("pages/flow.py").run()
    assert not at.exception
    return at


def test_graph_ends_at_the_last_token_with_every_kind_of_edge(flow_page: AppTest) -> None:
    spec = _spec(flow_page)
    assert "What fed the prediction at ·to" in spec["layout"]["title"]["text"]
    names = {t.get("name") for t in spec["data"]}
    assert {"attention head", "MLP", "residual", "attention edges", "mlp edges"} <= names
    heads = next(t for t in spec["data"] if t.get("name") == "attention edges")
    assert all(0 <= block < 30 and 0 <= head < 9 for block, head in heads["customdata"])
    assert _edges(flow_page) > 0
    assert flow_page.metric[0].value.startswith("·Mary")  # the indirect object, as the model predicts
    assert len(flow_page.dataframe) == 1


def test_a_higher_threshold_keeps_fewer_edges(flow_page: AppTest) -> None:
    before = _edges(flow_page)
    flow_page.slider(key="flow_threshold").set_value(0.2).run()
    assert not flow_page.exception
    assert 0 < _edges(flow_page) < before
    flow_page.slider(key="flow_threshold").set_value(0.04).run()


def test_another_prediction_position(flow_page: AppTest) -> None:
    flow_page.selectbox(key="position").set_value(3).run()
    assert not flow_page.exception
    assert "(3)" in _spec(flow_page)["layout"]["title"]["text"]


def test_a_picked_head_opens_on_the_attention_page(flow_page: AppTest) -> None:
    flow_page.session_state["_flow_open"] = (5, 2)  # what a click on a head edge's dot leaves behind
    flow_page.run()
    assert not flow_page.exception
    assert any("Block 5 · head 2" in h.value for h in flow_page.subheader)
