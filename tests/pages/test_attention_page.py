"""The Attention page on the real default model: it draws, follows the layer/head selectors, and
stays light enough to send at 256 tokens."""
from __future__ import annotations

import json

import pytest
from apptest_session import open_app_page
from page_charts import chart_json, charts, figures
from streamlit.testing.v1 import AppTest

MOLES = "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the"
LONG = " ".join(["The spy was a mole inside the agency."] * 28)  # ~250 tokens
MAX_PAGE_BYTES = 5 * 2**20


def _open(prompt: str) -> AppTest:
    return open_app_page("pages/attention.py", prompt=prompt)


def _show(at: AppTest, view: str) -> AppTest:
    """Open one of the page's tabs (only the open tab is built and sent)."""
    at.session_state["attention_view"] = view
    return at.run()


def _sent_bytes(at: AppTest) -> int:
    """Chart elements whole (figure JSON with the grid image inside it, plus the element's own script
    and theme, which travel with every chart), table data and HTML of one page run."""
    sent = sum(el.proto.ByteSize() for el in charts(at))
    sent += sum(len(el.proto.arrow_data.data) for el in at.dataframe)
    return sent + sum(len(el.proto.body) for el in at.get("html"))


def _subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


@pytest.fixture(scope="module")
def page() -> AppTest:
    return _open(MOLES)


def test_page_draws_grid_and_heatmap_then_each_view(page: AppTest) -> None:
    assert not page.exception and not page.error
    assert [t.value for t in page.title] == ["Attention"]
    assert "Block 0 · head 0" in _subheaders(page)
    specs = figures(page)
    assert len(specs) == 2
    assert specs[0]["data"][0]["type"] == "image"  # the overview is one picture
    heatmap = json.dumps(specs[1], ensure_ascii=False)
    assert "future tokens: masked" in heatmap and '\\"·mole\\" (pos 4)' in heatmap
    assert page.get("download_button")
    _show(page, "Compare two heads")
    assert not page.exception and [m.label for m in page.metric] == ["Difference (Jensen–Shannon)"]
    assert page.metric[0].value.endswith("bits") and len(charts(page)) == 2
    _show(page, "All heads (table)")
    assert not page.exception and len(page.dataframe) == 1
    assert any("9 query heads share 3 key/value heads" in c.value for c in page.caption)
    table = page.dataframe[0]
    lowest = table.value.filter(like="score").min().min()
    assert lowest < 0  # on this prompt some heads avoid a pattern...
    assert any("below 0 = less than that" in c.value for c in page.caption)  # ...and the caption says what it means
    config = json.loads(table.proto.columns)
    widths = [config[column]["width"] for column in table.value.columns]
    assert sum(widths) <= 800  # every column, the induction one included, in view on a wide page
    _show(page, "One head")


def test_grid_badges_are_legible_and_named_in_a_legend(page: AppTest) -> None:
    grid = json.loads(chart_json(charts(page)[0]))
    notes = grid["layout"]["annotations"]
    badges = next(t for t in grid["data"] if t.get("name") == "badges")
    assert badges["text"] and badges["textfont"]["size"] >= 12 and "white" in badges["textfont"]["shadow"]
    legend = next(a["text"] for a in notes if a.get("xref") == "paper")
    assert "<b>F</b> = first-token (sink)" in legend and "<b>I</b> = induction" in legend


def test_changing_layer_and_head_opens_that_head(page: AppTest) -> None:
    page.selectbox(key="layer").set_value(17).run()
    page.selectbox(key="head").set_value(3).run()
    assert not page.exception
    assert "Block 17 · head 3" in _subheaders(page)
    heatmap = json.loads(chart_json(charts(page)[1]))
    assert heatmap["layout"]["title"]["text"].startswith("Block 17 · head 3")


def test_query_token_choice_redraws_the_bars(page: AppTest) -> None:
    _show(page, "From one token")
    page.selectbox(key="position").set_value(14).run()  # the second "mole"
    assert not page.exception
    bars = json.loads(chart_json(charts(page)[1]))
    assert len(bars["data"][0]["x"]) == 15 and "·mole (14)" in bars["layout"]["title"]["text"]


def test_every_view_sends_under_5_mb_at_256_tokens() -> None:
    at = _open(LONG)
    assert not at.exception
    heatmap = json.loads(chart_json(charts(at)[1]))
    assert len(heatmap["data"][0]["x"]) >= 240  # one key label per token
    for view in ("One head", "From one token", "Compare two heads", "All heads (table)"):
        sent = _sent_bytes(_show(at, view))
        assert not at.exception
        assert sent < MAX_PAGE_BYTES, f"{view}: {sent / 2**20:.1f} MB"


def test_compared_head_and_zoom_window_survive_the_other_tabs() -> None:
    """The compared head (3/2) went back to the best induction head, and a long prompt's zoom window to
    the last rows, after a visit to another tab: their widgets were not drawn there."""
    long = " ".join(["The spy was a mole inside the agency."] * 33)  # > 256 tokens: the zoom window
    at = _show(_open(long), "Compare two heads")
    at.selectbox(key="cmp_layer").set_value(3).run()
    at.selectbox(key="cmp_head").set_value(2).run()
    _show(at, "One head")
    at.number_input(key="attention_q0").set_value(100).run()
    _show(at, "All heads (table)")
    _show(at, "Compare two heads")
    assert not at.exception
    assert (at.selectbox(key="cmp_layer").value, at.selectbox(key="cmp_head").value) == (3, 2)
    assert any("rows 100–163" in c.value for c in at.caption)  # the One head view's window, as set
    _show(at, "One head")
    assert at.number_input(key="attention_q0").value == 100


def test_the_open_tab_survives_another_page() -> None:
    at = _show(_open("The capital of France is"), "Compare two heads")
    at.switch_page("pages/saliency.py").run()
    at.switch_page("pages/attention.py").run()
    assert not at.exception and at.session_state["attention_view"] == "Compare two heads"
    assert at.metric and at.metric[0].value.endswith("bits")  # the compare view is what was built
