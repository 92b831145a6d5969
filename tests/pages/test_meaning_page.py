"""The Meaning page on the real default model: mole in three contexts, and word arithmetic."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from apptest_session import open_app_page
from page_charts import chart_json, charts
from streamlit.testing.v1 import AppTest


def _figures(at: AppTest) -> dict[str, dict]:
    return {el.proto.id: json.loads(chart_json(el)) for el in charts(at)}


def _values(data) -> list[float]:
    """Plotly's JSON packs numpy arrays as base64 'bdata'; unpack them (plain lists pass through)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def _figure(at: AppTest, fragment: str) -> dict:
    """The chart whose title contains fragment."""
    for fig in _figures(at).values():
        if fragment in fig["layout"].get("title", {}).get("text", ""):
            return fig
    raise AssertionError(f"no chart titled with {fragment!r}")


@pytest.fixture(scope="module")
def page() -> AppTest:
    return open_app_page("pages/meaning.py")


def test_default_contexts_give_one_curve_per_pair_starting_at_one(page: AppTest) -> None:
    assert not page.exception
    curves = _figure(page, "Cosine similarity")
    pairs = [t for t in curves["data"] if not t["name"].startswith("yardstick")]
    assert len(pairs) == 6  # 4 contexts -> 6 pairs
    for trace in pairs:
        y = _values(trace["y"])
        assert len(y) == 31  # embedding + 30 blocks
        assert y[0] == pytest.approx(1.0, abs=1e-4)  # same token, same embedding row
        assert min(y) < 0.99  # context moves them apart
    paths = _figure(page, "one PCA basis")
    assert len(paths["data"]) == 4


def test_default_contexts_teach_the_lesson(page: AppTest) -> None:
    """Clues before the word: every pair drifts apart with depth, the two animal moles (2, 3) stay the
    most alike, and the senses end further apart than the old clue-after example (garden/chemistry 0.95)."""
    table = page.dataframe[0].value  # "The numbers, block by block": one row per depth
    assert table["depth"].iloc[0] == "embedding" and table["depth"].iloc[-1] == "after block 29"
    first, last = table.iloc[0], table.iloc[-1]
    pairs = [c for c in table.columns if c.startswith("sentence")]
    for pair in pairs:
        assert last[pair] < first[pair] - 0.1  # lower after the last block than at the embedding
    same_sense = "sentence 2 vs sentence 3"
    for pair in set(pairs) - {same_sense}:
        assert last[pair] < last[same_sense]  # different senses end further apart than the two animals
        assert table[pair].iloc[15] < table[same_sense].iloc[15]  # and already mid-way
    assert last["sentence 2 vs sentence 4"] < 0.9  # garden vs chemistry: no longer "the most alike"


def test_every_arithmetic_example_finds_its_answer(page: AppTest) -> None:
    for example in ["king - man + woman", "Berlin - Germany + France", "walked - walk + swim", "cats - cat + dog"]:
        page.selectbox(key="meaning_example").set_value(example).run()
        assert not page.exception
        assert page.text_input(key="meaning_expr").value == example
        assert any("expected one" in s.value for s in page.success), example  # rank 1 on the default model
    page.text_input(key="meaning_expr").set_value("king - man + woman").run()
    page.text_input(key="meaning_expected").set_value("queen").run()


def test_default_arithmetic_finds_queen(page: AppTest) -> None:
    assert any("expected one" in s.value for s in page.success)
    arrows = _figure(page, "king - man + woman")
    assert len(arrows["layout"]["annotations"]) == 2
    table = page.dataframe[-1].value
    assert table["token"].iloc[0] == "·queen"
    assert not {"·king", "·man", "·woman"} & set(table["token"])


def test_a_miss_is_reported_with_its_rank(page: AppTest) -> None:
    page.text_input(key="meaning_expr").set_value("Paris - France + Italy").run()
    page.text_input(key="meaning_expected").set_value("Rome").run()
    assert not page.exception
    assert any("'Rome' ranks" in t.value for t in page.text)


def test_last_token_option_and_missing_word(page: AppTest) -> None:
    before = _values(_figure(page, "Cosine similarity")["data"][0]["y"])
    page.radio(key="meaning_where").set_value("the last token of each context").run()
    assert not page.exception
    assert _values(_figure(page, "Cosine similarity")["data"][0]["y"]) != before
    page.text_area(key="meaning_contexts").set_value("A mole.\nNo such word here.").run()
    assert not page.exception
    assert any("missing from some contexts" in w.value for w in page.warning)
    assert any("No such word here." in t.value for t in page.text)


def test_inputs_survive_a_page_switch(page: AppTest) -> None:
    page.text_input(key="meaning_expr").set_value("cats - cat + dog").run()
    page.switch_page("pages/overview.py").run()
    page.switch_page("pages/meaning.py").run()
    assert not page.exception
    assert page.text_input(key="meaning_expr").value == "cats - cat + dog"


def test_markdown_in_user_text_is_shown_as_text(page: AppTest) -> None:
    page.text_area(key="meaning_contexts").set_value("A **mole** [x](http://e.com)\nThe mole <b>dug</b>").run()
    page.text_input(key="meaning_expr").set_value("**king** - man").run()
    assert not page.exception
    shown = [t.value for t in page.text]
    assert any("**king**" in t for t in shown)
    rendered = [m.value for m in page.markdown] + [w.value for w in page.warning] + [c.value for c in page.caption]
    assert not any(bad in r for r in rendered for bad in ("**king**", "**mole**", "http://e.com", "<b>dug"))


def test_an_example_loads_again_after_its_fields_were_edited(page: AppTest) -> None:
    """The examples box loads and then empties: it never names an example the fields no longer hold,
    and choosing the same example again brings it back."""
    page.selectbox(key="meaning_example").set_value("cats - cat + dog").run()
    assert page.text_input(key="meaning_expr").value == "cats - cat + dog"
    assert page.selectbox(key="meaning_example").value is None
    page.text_input(key="meaning_expr").set_value("walked - walk + run").run()
    page.selectbox(key="meaning_example").set_value("cats - cat + dog").run()
    assert not page.exception
    assert page.text_input(key="meaning_expr").value == "cats - cat + dog"
    assert page.text_input(key="meaning_expected").value == "dogs"


def test_an_expected_input_word_or_a_zero_result_is_never_called_a_hit(page: AppTest) -> None:
    page.text_input(key="meaning_expr").set_value("king + queen - queen").run()
    page.text_input(key="meaning_expected").set_value("king").run()
    assert not page.exception and not page.success
    assert any("one of the words you typed" in t.value for t in page.text)
    page.text_input(key="meaning_expr").set_value("king - king").run()
    assert not page.exception and not page.success
    assert any("cannot be computed" in w.value for w in page.warning)
    assert any("cancel out" in t.value for t in page.text)


def test_lines_past_the_compared_ones_are_named(page: AppTest) -> None:
    lines = [f"Clue number {n} is about the mole." for n in range(8)]
    page.text_area(key="meaning_contexts").set_value("\n".join(lines)).run()
    assert not page.exception
    assert any("first 6 of the 8 lines" in w.value for w in page.warning)


def test_two_long_contexts_get_a_window_each() -> None:
    """Two contexts past the strip's window (300 tokens each) drew one slider key twice: a crash."""
    at = open_app_page("pages/meaning.py")
    long_line = "The spy who was called the mole " + "walked along the quiet river at night and " * 35
    at.text_area(key="meaning_contexts").set_value(f"{long_line}\nA {long_line}").run()
    assert not at.exception
    assert {s.key for s in at.slider} >= {"meaning_strip_0", "meaning_strip_1"}
