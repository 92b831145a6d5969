"""Patchscope on the Logit lens page, acted in sequence on the real default model: off until asked for,
then one row per stream beside the lens; another position reads that position (its embedding row reads
its own token back); an edited identity prompt reads again, a bad one is a message, and the other
settings stay as they were."""
from __future__ import annotations

from apptest_session import open_app_page
from page_charts import figures
from streamlit.testing.v1 import AppTest

from model.analyses.patchscope import DEFAULT_IDENTITY


def _scope(at: AppTest) -> dict:
    """The patchscope figure (the page's last chart, after the lens, the followed position and A vs B)."""
    specs = figures(at)
    assert len(specs) == 4
    return specs[-1]


def _first_column(spec: dict) -> list[str]:
    """Patchscope's top token at every stream (the column after the lens's)."""
    return [row[1] for row in spec["data"][0]["text"]]


def test_patchscope_beside_the_lens_in_sequence() -> None:
    at = open_app_page("pages/logit_lens.py")
    assert not at.exception
    assert len(figures(at)) == 3  # nothing computed until asked for
    at.toggle(key="lens_patchscope").set_value(True).run()
    assert not at.exception and not at.warning
    spec = _scope(at)
    assert len(spec["data"][0]["y"]) == 31  # the embedding and after each of 30 blocks
    assert spec["data"][0]["x"][:2] == ["logit lens", "patchscope #1"]
    last = spec["data"][0]["text"]
    assert last[-1][0] == "·Paris"  # the lens's last row: the model's own answer
    table = at.dataframe[-1].value
    assert table["read at"][0] == "nothing written" and len(table) == 32
    assert table["patchscope"][31] == table["patchscope"][0]  # after the last block, nothing reaches "->"

    at.selectbox(key="position").set_value(3).run()  # "·France" in "The capital of France is"
    assert not at.exception
    moved = _scope(at)
    assert "Position 3" in moved["layout"]["title"]["text"]
    assert _first_column(moved)[0] == "·France"  # written at the embedding, the token itself is repeated
    assert _first_column(moved) != _first_column(spec)

    at.text_input(key="lens_identity").input("cat -> cat; hello -> hello").run()  # no placeholder
    assert not at.exception
    assert "placeholder" in at.warning[0].value
    assert len(figures(at)) == 3

    at.text_input(key="lens_identity").input("dog = dog; 42 = 42; ? =").run()
    assert not at.exception and not at.warning
    again = _scope(at)
    assert again["data"][0]["z"] != moved["data"][0]["z"]  # another identity prompt, another reading
    assert at.selectbox(key="position").value == 3 and at.toggle(key="lens_patchscope").value
    assert at.text_input(key="lens_identity").value != DEFAULT_IDENTITY
