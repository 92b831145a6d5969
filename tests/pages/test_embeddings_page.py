"""The Embeddings page on the real default model: it draws, and moving the layer redraws."""
from __future__ import annotations

import json
import re

import pytest
from apptest_session import open_app_page
from page_charts import chart_json, charts, values
from streamlit.testing.v1 import AppTest

MOLES = "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the"


def _chart_specs(at: AppTest) -> list[str]:
    """Each plotly chart's figure JSON with unicode unescaped, so token text can be searched."""
    return [json.dumps(json.loads(chart_json(el)), ensure_ascii=False) for el in charts(at)]


@pytest.fixture(scope="module")
def page() -> AppTest:
    return open_app_page("pages/embeddings.py", prompt=MOLES)


def test_page_draws_map_paths_and_table(page: AppTest) -> None:
    assert not page.exception
    specs = _chart_specs(page)
    assert len(specs) == 2
    assert "PC1 (" in specs[0] and "% of variance)" in specs[0]
    assert "queen" in specs[0]  # reference words are on the layer-0 map
    names = [trace["name"] for trace in json.loads(specs[1])["data"]]
    assert names == ["·mole (4)", "·mole (14)"]  # both moles traced by default
    assert len(page.dataframe) >= 1


def _reference_points(spec: str) -> dict[str, tuple[float, float]]:
    trace = next(t for t in json.loads(spec)["data"] if t["name"] == "reference")
    return {label: (x, y) for label, x, y in zip(trace["text"], values(trace["x"]), values(trace["y"]))}


def test_changing_layer_changes_the_map_and_keeps_the_reference_words(page: AppTest) -> None:
    before = _chart_specs(page)[0]
    assert not page.warning  # at the embedding a token finds itself: no warning
    page.select_slider(key="emb_layer").set_value(12).run()
    assert not page.exception
    after = _chart_specs(page)[0]
    assert after != before
    assert "after block 11" in after  # depth 12: the stream leaving block 11
    assert page.text_input(key="emb_words").value  # the box stays, and its words are drawn at this depth
    deep, shallow = _reference_points(after), _reference_points(before)
    assert set(deep) == set(shallow) and {"queen", "Paris"} <= set(deep)
    assert any("read alone after" in c.value for c in page.caption)


def test_nearest_tokens_warn_at_mid_depth_with_the_cosine(page: AppTest) -> None:
    page.select_slider(key="emb_layer").set_value(12).run()
    best = page.dataframe[-1].value["cosine"].iloc[0]
    warning = next(w.value for w in page.warning if "Best cosine" in w.value)
    assert f"Best cosine {best:.2f}" in warning and "mean little" in warning
    if best < 0.3:
        assert "noise" in warning


def test_the_sidebar_two_meanings_example_drifts_apart(page: AppTest) -> None:
    """The 'One word, two meanings' example has each clue (spy, garden) before its mole: on the default
    model the two moles start identical and end clearly apart."""
    from pages.kit.session import EXAMPLES

    assert EXAMPLES["One word, two meanings"] == MOLES
    line = next(t.value for t in page.text if t.value.startswith("Cosine between ·mole (4) and ·mole (14)"))
    start, middle, end = (float(x) for x in re.findall(r"(-?\d\.\d\d) (?:at|after)", line))
    assert start == 1.0 and end < middle < start and end < 0.9


def test_three_d_and_raw_vectors(page: AppTest) -> None:
    page.toggle(key="emb_3d").set_value(True).run()
    page.toggle(key="emb_normalize").set_value(False).run()
    page.toggle(key="emb_skip_first").set_value(False).run()
    assert not page.exception
    assert "scatter3d" in _chart_specs(page)[0]


def test_html_in_prompt_is_not_rendered(page: AppTest) -> None:
    page.session_state["prompt"] = "<b>bold</b> and <i>more</i>"
    page.run()
    assert not page.exception
    spec = _chart_specs(page)[0]
    assert "&lt;b&gt;" in spec or "&lt;" in spec
    assert "<b>bold" not in spec


@pytest.mark.parametrize("prompt", ["Hi", "Hello there"])
def test_very_short_prompts_explain_instead_of_failing(page: AppTest, prompt: str) -> None:
    page.session_state["prompt"] = prompt
    page.select_slider(key="emb_layer").set_value(5).run()
    assert not page.exception
    assert len(page.dataframe) >= 1  # the nearest-token table still works


def test_traced_tokens_survive_a_visit_to_another_page(open_page) -> None:
    """The default trace (three tokens) came back empty after a visit to another page."""
    at = open_page("pages/embeddings.py")
    default = at.multiselect(key="emb_trace").value
    assert len(default) >= 2
    chosen = default[:1]
    at.multiselect(key="emb_trace").set_value(chosen).run()
    at.switch_page("pages/mlp.py").run()
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception
    assert at.multiselect(key="emb_trace").value == chosen
    assert not any("Pick one or more tokens" in i.value for i in at.info)


def test_the_depth_rides_in_the_link(open_page) -> None:
    """A reload kept every toggle but put Depth back at the embedding."""
    at = open_page("pages/embeddings.py")
    at.select_slider(key="emb_layer").set_value(12).run()
    assert at.query_params["depth"] in ("12", ["12"])
    again = open_page("pages/embeddings.py", **{k: v if isinstance(v, str) else v[0] for k, v in at.query_params.items()})
    assert not again.exception
    assert again.select_slider(key="emb_layer").value == 12
    bad = open_page("pages/embeddings.py", depth="99")
    assert any("Ignored depth '99'" in w.value for w in bad.warning)
    assert bad.select_slider(key="emb_layer").value == 0
