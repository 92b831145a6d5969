"""The MLP page and contrast mode on the real default model through AppTest: every view draws, the
neurons add up to the Attribution page's MLP bar, switching neurons off moves the prediction."""
from __future__ import annotations

import re

import pytest
from apptest_session import open_app_page
from page_charts import figures
from streamlit.testing.v1 import AppTest


def _specs(at: AppTest) -> list[dict]:
    return figures(at)


def _open(page: str, prompt: str | None = None) -> AppTest:
    at = open_app_page(page, **({"prompt": prompt} if prompt is not None else {}))
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def mlp_page() -> AppTest:
    return _open("pages/mlp.py")


def test_mlp_page_draws_every_view(mlp_page: AppTest) -> None:
    titles = [s["layout"]["title"]["text"] for s in _specs(mlp_page)]
    assert len(titles) == 4
    assert "stage by stage" in titles[0] and "SwiGLU" in titles[0]
    stages = _specs(mlp_page)[0]["layout"]["annotations"]
    assert any("(1536,)" in a["text"] for a in stages) and any("(576,)" in a["text"] for a in stages)
    heat = _specs(mlp_page)[1]["data"][0]
    assert len(heat["x"]) == 16 and len(heat["y"]) == mlp_page.session_state["position"] + 1  # every token
    assert "neuron" in titles[3]
    assert not mlp_page.error


def test_neurons_add_up_to_the_mlp_bar(mlp_page: AppTest) -> None:
    text = next(c.value for c in mlp_page.caption if "add up to" in c.value)
    total, bar = (float(x) for x in re.findall(r"([+-]\d+\.\d+), the block's MLP bar.*\(([+-]\d+\.\d+)\)", text)[0])
    assert total == pytest.approx(bar, abs=2e-3)


def test_switching_a_neuron_off_moves_the_prediction(mlp_page: AppTest) -> None:
    neuron = mlp_page.selectbox(key="mlp_neuron").value
    layer = mlp_page.selectbox(key="layer").value
    mlp_page.multiselect(key=f"mlp_off_{layer}").set_value([neuron]).run()
    assert not mlp_page.exception
    bars = _specs(mlp_page)[-1]["data"]
    assert [b["name"] for b in bars] == ["every neuron on", "chosen neurons off"]
    assert bars[0]["x"] != bars[1]["x"]


def test_block_choice_changes_the_neurons(mlp_page: AppTest) -> None:
    before = _specs(mlp_page)[1]["data"][0]["x"]
    mlp_page.selectbox(key="layer").set_value(3).run()
    assert not mlp_page.exception
    assert _specs(mlp_page)[1]["data"][0]["x"] != before


def test_after_an_edit_on_another_page_the_inputs_come_from_the_capture(monkeypatch) -> None:
    """The prompt captured on Start here: the MLP page reads its MLP inputs from that capture's streams
    and runs no second pass (at 3,500 tokens the pass took 11 s, the streams 1.3 s)."""
    import model.analyses.mlp as mlp

    def second_pass(*args, **kwargs):
        raise AssertionError("the MLP page ran a pass of its own")

    monkeypatch.setattr(mlp, "record_mlp", second_pass)
    at = open_app_page(None, prompt="A lighthouse keeper counted the ships that passed in the night")
    at.switch_page("pages/mlp.py").run()
    assert not at.exception, at.exception
    assert len(_specs(at)) == 4


def test_a_block_and_neuron_chosen_then_a_new_prompt() -> None:
    """Block 5 and a neuron picked, then the prompt edited: the page draws the new prompt's neurons of
    block 5 and the neuron picker offers only neurons it lists, with no exception."""
    at = _open("pages/mlp.py", prompt="The capital of France is Paris and the capital of Italy is")
    at.selectbox(key="layer").select_index(5).run()
    at.selectbox(key="mlp_neuron").select_index(2).run()
    assert not at.exception
    at.sidebar.text_area(key="prompt").set_value("A lighthouse keeper counted the ships").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="layer").value == 5
    neuron = at.selectbox(key="mlp_neuron")
    assert any(option.startswith(f"N{neuron.value} ") for option in neuron.options)
    heat = _specs(at)[1]
    assert "block 5" in heat["layout"]["title"]["text"].lower() and len(heat["data"][0]["y"]) == at.session_state["position"] + 1


def test_a_chosen_neuron_survives_a_reload() -> None:
    """The link names the neuron beside the block and position: a reload (a fresh session on that link)
    shows the same one; a link's neuron outside the block's strongest falls back to the strongest."""
    at = _open("pages/mlp.py", prompt="Paris is a city in")
    at.selectbox(key="layer").select_index(23).run()
    at.selectbox(key="mlp_neuron").select_index(3).run()
    chosen = at.selectbox(key="mlp_neuron").value
    assert at.query_params["neuron"] == str(chosen) and at.query_params["layer"] == "23"
    again = open_app_page("pages/mlp.py", **dict(at.query_params))
    assert not again.exception and again.selectbox(key="mlp_neuron").value == chosen
    odd = open_app_page("pages/mlp.py", **(dict(at.query_params) | {"neuron": "abc"}))
    assert any("Ignored neuron 'abc'" in w.value for w in odd.warning)
    assert odd.selectbox(key="mlp_neuron").index == 0


def test_a_long_prompt_shows_the_strips_window_of_rows() -> None:
    """Past 256 tokens the per-token charts show the token strip's window (one slider moves all three),
    not a row per token (51,500 px of page at 2,000 tokens); moving the slider moves their rows."""
    text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 20)
    at = _open("pages/mlp.py", prompt=text)
    assert not at.exception, at.exception
    n = at.session_state["position"] + 1
    start = at.slider(key="strip_start").value
    heat = _specs(at)[1]
    assert n > 256 and len(heat["data"][0]["y"]) == 256 and heat["data"][0]["y"][0].endswith(f"({start})")
    at.slider(key="strip_start").set_value(0).run()
    heat, cells = _specs(at)[1], _specs(at)[-1]
    assert heat["data"][0]["y"][0].endswith("(0)") and len(heat["data"][0]["y"]) == 256
    assert "(0)" in cells["data"][0]["customdata"][0][0]
    assert any("the token strip's window" in c.value for c in at.caption)


def test_a_moved_window_then_a_short_prompt_then_a_long_one_again() -> None:
    """The strip's window moved on a long prompt, then a short prompt typed: every row again and no
    slider; then another long prompt: the window is back, within the new prompt, no stale rows."""
    long_text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 20)
    at = _open("pages/mlp.py", prompt=long_text)
    at.slider(key="strip_start").set_value(10).run()
    at.sidebar.text_area(key="prompt").set_value("A lighthouse keeper counted the ships").run()
    assert not at.exception, at.exception
    n = at.session_state["position"] + 1
    assert not any(s.key == "strip_start" for s in at.slider) and len(_specs(at)[1]["data"][0]["y"]) == n
    at.sidebar.text_area(key="prompt").set_value(" ".join(["A ship sailed past the old lighthouse at dawn."] * 30)).run()
    assert not at.exception, at.exception
    n, start = at.session_state["position"] + 1, at.slider(key="strip_start").value
    rows = _specs(at)[1]["data"][0]["y"]
    assert n > 256 and 0 <= start <= n - 256 and len(rows) == 256 and rows[0].endswith(f"({start})")


def test_neurons_switched_off_belong_to_their_block_and_survive_a_page_switch(open_page) -> None:
    """N7 of block 2 is not N7 of block 5: each block keeps its own choice, and a visit to another page
    keeps them (the box was emptied by it)."""
    at = open_page("pages/mlp.py")
    at.selectbox(key="layer").set_value(2).run()
    at.multiselect(key="mlp_off_2").set_value([7]).run()
    at.selectbox(key="layer").set_value(5).run()
    assert not at.exception
    assert at.multiselect(key="mlp_off_5").value == []
    assert any("Choose one or more neurons" in i.value for i in at.info)  # nothing switched off in block 5
    at.switch_page("pages/ablation.py").run()
    at.switch_page("pages/mlp.py").run()
    at.selectbox(key="layer").set_value(2).run()
    assert not at.exception
    assert at.multiselect(key="mlp_off_2").value == [7]
