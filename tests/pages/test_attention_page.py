"""The Attention page on the real default model: it draws, follows the layer/head selectors, and
stays light enough to send at 256 tokens."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
MOLES = "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the"
LONG = " ".join(["The spy was a mole inside the agency."] * 28)  # ~250 tokens
MAX_PAGE_BYTES = 5 * 2**20


def _open(prompt: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["prompt"] = prompt
    at.run()
    at.switch_page("pages/attention.py").run()
    return at


def _subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


@pytest.fixture(scope="module")
def page() -> AppTest:
    return _open(MOLES)


def test_page_draws_grid_heatmap_bars_comparison_and_table(page: AppTest) -> None:
    assert not page.exception and not page.error
    assert [t.value for t in page.title] == ["Attention"]
    assert "Layer 0 · head 0" in _subheaders(page)
    specs = [json.loads(el.proto.spec) for el in page.get("plotly_chart")]
    assert len(specs) == 4
    assert specs[0]["data"][0]["type"] == "image"  # the overview is one picture
    heatmap = json.dumps(specs[1], ensure_ascii=False)
    assert "future tokens: masked" in heatmap and '\\"·mole\\" (pos 4)' in heatmap
    assert len(page.dataframe) == 1
    assert any("9 query heads share 3 key/value heads" in c.value for c in page.caption)
    assert page.get("download_button")


def test_changing_layer_and_head_opens_that_head(page: AppTest) -> None:
    page.selectbox(key="layer").set_value(17).run()
    page.selectbox(key="head").set_value(3).run()
    assert not page.exception
    assert "Layer 17 · head 3" in _subheaders(page)
    heatmap = json.loads(page.get("plotly_chart")[1].proto.spec)
    assert heatmap["layout"]["title"]["text"].startswith("Layer 17 · head 3")


def test_query_token_choice_redraws_the_bars(page: AppTest) -> None:
    page.selectbox(key="position").set_value(14).run()  # the second "mole"
    assert not page.exception
    bars = json.loads(page.get("plotly_chart")[2].proto.spec)
    assert len(bars["data"][0]["x"]) == 15 and "·mole (14)" in bars["layout"]["title"]["text"]


def test_page_sends_under_5_mb_at_256_tokens() -> None:
    at = _open(LONG)
    assert not at.exception
    heatmap = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert len(heatmap["data"][0]["x"]) >= 240  # one key label per token
    sent = sum(len(el.proto.spec) for el in at.get("plotly_chart"))
    sent += sum(len(el.proto.data.data) for el in at.get("arrow_data_frame"))
    sent += sum(len(el.proto.arrow_data.data) for el in at.dataframe)
    sent += sum(len(el.proto.body) for el in at.get("html"))
    assert sent < MAX_PAGE_BYTES, f"{sent / 2**20:.1f} MB"
