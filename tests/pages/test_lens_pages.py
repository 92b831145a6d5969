"""The logit lens, attention-step-by-step and attribution pages on the real default model: they
draw without errors, and changing layer / head / token changes what is drawn."""
from __future__ import annotations

import pytest
from apptest_session import open_app_page
from page_charts import figures
from streamlit.testing.v1 import AppTest


def _specs(at: AppTest) -> list[dict]:
    return figures(at)


def _open(page: str) -> AppTest:
    at = open_app_page(page)
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def lens_page() -> AppTest:
    return _open("pages/logit_lens.py")


def test_lens_page_shows_paris_on_top_at_the_end(lens_page: AppTest) -> None:
    heat, line, _ = _specs(lens_page)  # the lens, the followed position, A (vs B) at every depth
    cells = heat["data"][0]["text"]
    assert cells[-1][-1] == "·Paris"  # last row, last position: the model's own answer
    assert len(cells) == 31  # embeddings + 30 blocks
    assert "·Paris" in line["layout"]["title"]["text"]
    assert not lens_page.error


def test_lens_page_follows_another_position(lens_page: AppTest) -> None:
    before = _specs(lens_page)[1]
    lens_page.selectbox(key="position").set_value(1).run()
    assert not lens_page.exception
    assert _specs(lens_page)[1]["data"][0]["y"] != before["data"][0]["y"]


@pytest.fixture(scope="module")
def pipe_page() -> AppTest:
    return _open("pages/head_pipeline.py")


def test_pipeline_page_draws_four_steps_with_mask(pipe_page: AppTest) -> None:
    specs = _specs(pipe_page)
    assert len(specs) == 4
    assert [len(s["data"]) for s in specs] == [1, 2, 2, 2]  # masked cells drawn after step (a)
    assert "key/value head" in pipe_page.caption[0].value
    assert len(pipe_page.dataframe) == 1


def test_changing_layer_and_head_changes_the_pattern(pipe_page: AppTest) -> None:
    z0 = _specs(pipe_page)[2]["data"][0]["z"]
    pipe_page.slider(key="layer").set_value(3).run()
    assert not pipe_page.exception
    z1 = _specs(pipe_page)[2]["data"][0]["z"]
    pipe_page.selectbox(key="head").set_value(4).run()
    assert not pipe_page.exception
    z2 = _specs(pipe_page)[2]["data"][0]["z"]
    assert z0 != z1 and z1 != z2
    assert "head 4 reads key/value head 1" in pipe_page.caption[0].value


def test_attribution_page_splits_the_top_token() -> None:
    at = _open("pages/attribution.py")
    fig = _specs(at)[0]
    assert [t["name"] for t in fig["data"][:3]] == ["embedding", "attention", "MLP"]
    assert len(fig["data"][1]["x"]) == 30  # one attention bar per layer
    rows = at.dataframe[0].value
    shares = dict(zip(rows["part"], rows["logit share"]))
    assert shares["sum of the shares"] == pytest.approx(shares["model's own logit"], abs=1e-3)
    box = at.selectbox(key="attr_token")
    second = box.options[1].split("  (")[0]
    box.select_index(1).run()
    assert not at.exception
    other = _specs(at)[0]
    assert other["data"][2]["y"] != fig["data"][2]["y"]
    assert second in other["layout"]["title"]["text"]


def test_long_prompt_reads_a_window_of_positions() -> None:
    at = open_app_page("pages/logit_lens.py", prompt=" ".join(f"w{i}" for i in range(60)))  # > 64 tokens
    assert not at.exception
    window = at.slider(key="lens_window")
    heat = _specs(at)[0]
    assert len(heat["data"][0]["x"]) == 64
    assert heat["data"][0]["x"][-1].endswith(f"({int(window.max) + 63})")  # the last position is shown


def test_opening_the_lens_keeps_the_shared_position() -> None:
    """A long prompt's lens window went to the last 64 positions, and so moved the position chosen on
    Next token (100) to the last token: on the lens and, back there, on Next token."""
    text = " ".join(f"w{i}" for i in range(150))  # > 64 tokens: the lens reads a window
    at = open_app_page("pages/next_token.py", prompt=text)
    at.selectbox(key="position").set_value(100).run()
    at.switch_page("pages/logit_lens.py").run()
    assert not at.exception
    assert at.session_state["position"] == 100
    start = at.slider(key="lens_window").value
    assert start <= 100 < start + 64
    at.switch_page("pages/next_token.py").run()
    assert at.session_state["position"] == 100
