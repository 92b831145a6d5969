"""The Embeddings page on the real default model: it draws, and moving the layer redraws."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
MOLES = "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the"


def _chart_specs(at: AppTest) -> list[str]:
    """Each plotly chart's figure JSON with unicode unescaped, so token text can be searched."""
    return [json.dumps(json.loads(el.proto.spec), ensure_ascii=False) for el in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["prompt"] = MOLES
    at.run()
    at.switch_page("pages/embeddings.py").run()
    return at


def test_page_draws_map_paths_and_table(page: AppTest) -> None:
    assert not page.exception
    specs = _chart_specs(page)
    assert len(specs) == 2
    assert "PC1 (" in specs[0] and "% of variance)" in specs[0]
    assert "queen" in specs[0]  # reference words are on the layer-0 map
    names = [trace["name"] for trace in json.loads(specs[1])["data"]]
    assert names == ["·mole (4)", "·mole (14)"]  # both moles traced by default
    assert len(page.dataframe) >= 1


def test_changing_layer_changes_the_map(page: AppTest) -> None:
    before = _chart_specs(page)[0]
    page.select_slider(key="emb_layer").set_value(12).run()
    assert not page.exception
    after = _chart_specs(page)[0]
    assert after != before
    assert "after block 11" in after and "queen" not in after  # depth 12: the stream leaving block 11


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
