"""The Information flow page on the real default model: it draws the pruned graph, the threshold and
the prediction position change what is kept, a picked head edge opens that head on Attention, the
edges into the prediction are read through logit(A) − logit(B) with the head carrying most of each,
and the tables download as CSV."""
from __future__ import annotations

import csv
import io
import json

import pytest
from apptest_session import link_of, open_app_page
from page_charts import chart_json, charts
from streamlit.testing.v1 import AppTest

PROMPT = "When Mary and John went to the store, John gave a drink to"
VALUE, HEAD, PART = "direct effect on logit(·Mary) − logit(·John)", "head carrying most of it", "that head's part"


def _edges(at: AppTest) -> int:
    return int(at.metric[1].value.replace(",", ""))


def _spec(at: AppTest) -> dict:
    return json.loads(chart_json(charts(at)[0]))


@pytest.fixture(scope="module")
def flow_page() -> AppTest:
    at = open_app_page("pages/flow.py", prompt=PROMPT)
    assert not at.exception
    return at




def _versus(at: AppTest, token: str) -> AppTest:
    box = at.selectbox(key="contrast_token")
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith(token))).run()
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
    assert len(flow_page.dataframe) == 2  # the heaviest kept edges; the edges into ·to read through logit(·Mary)


def test_mary_versus_john_names_the_head_on_each_edge_into_the_prediction(flow_page: AppTest) -> None:
    """The heaviest edge into ·to (block 23, from ·Mary) is carried mostly by L23H0; L23H3, which
    attribution ranks first, writes its share through the edge from the second ·John, which the
    graph prunes (tests/model/analyses/test_flow.py has the numbers and why)."""
    at = _versus(flow_page, "·John")
    kept = at.dataframe[0].value
    mary = kept[(kept["block"] == 23) & (kept["from"] == "·Mary (1)")].iloc[0]
    assert mary["to"] == "·to (13)" and mary[HEAD] == "L23 H0" and mary[VALUE] == pytest.approx(3.57, abs=0.01)
    strongest = at.dataframe[1].value
    assert list(strongest["from"][:2]) == ["·Mary (1)", "·John (9)"]
    assert list(strongest[HEAD][:2]) == ["L23 H0", "L23 H3"]
    assert strongest[PART][1] == pytest.approx(2.87, abs=0.01) and not strongest["in the graph"][1]
    dots = next(t for t in _spec(at)["data"] if t.get("name") == "attention edges")
    assert any("logit(·Mary) − logit(·John) via this edge: +3.568, most by head 0" in h for h in dots["hovertext"])


def test_the_tables_download_as_csv(flow_page: AppTest, files: dict[str, str]) -> None:
    at = _versus(flow_page, "·John").run()
    name = "flow_edges_pos13_when-mary-and-john-went-to-the-store-joh.csv"
    rows = list(csv.DictReader(io.StringIO(files[name])))
    shown = at.dataframe[0].value
    dots = next(t for t in _spec(at)["data"] if t.get("name") == "attention edges")
    assert len(rows) == len(dots["hovertext"])  # every kept attention edge, not only the ten shown
    assert [int(r["block"]) for r in rows[: len(shown)]] == list(shown["block"])  # the table, then the rest
    assert rows[1][HEAD] == "L23 H0" and rows[0][HEAD] == ""  # blank off the prediction's edges
    effects = list(csv.DictReader(io.StringIO(files[name.replace("flow_edges", "flow_effects")])))
    assert [r[HEAD] for r in effects[:2]] == ["L23 H0", "L23 H3"] and effects[1]["in the graph"] == "False"


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


def test_the_threshold_rides_in_the_link(open_page) -> None:
    at = open_page("pages/flow.py")
    at.slider(key="flow_threshold").set_value(0.07).run()
    link = link_of(at)
    assert link["threshold"] == "0.07"
    again = open_page("pages/flow.py", **link)
    assert not again.exception and again.slider(key="flow_threshold").value == 0.07
    assert _edges(again) == _edges(at)
    bad = open_page("pages/flow.py", **{**link, "threshold": "2"})
    assert any("Ignored threshold '2'" in w.value for w in bad.warning)
