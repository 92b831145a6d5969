"""The Patching page on the default model: the indirect-object example draws its estimate at once,
exact patching runs on the button and is compared with it, and prompts of different token lengths
are refused with a message while both token rows stay visible; one block's heads patched position by
position."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from page_charts import chart_json, charts

IOI = ("When Mary and John went to the store, John gave a drink to",  # the first example pair
       "When Mary and John went to the store, Mary gave a drink to")


def test_estimate_then_exact_heads(open_page):
    at = open_page("pages/patching.py")
    assert at.selectbox(key="patch_a").format_func(at.selectbox(key="patch_a").value).startswith("·Mary")
    assert at.selectbox(key="patch_b").format_func(at.selectbox(key="patch_b").value).startswith("·John")
    drawn = charts(at)
    assert len(drawn) == 1  # the residual estimate, at once
    heatmap = json.loads(chart_json(drawn[0]))["data"][0]
    assert heatmap["y"][0] == "embedding" and heatmap["y"][-1] == "after block 29"
    assert "·John/·Mary (9)" in heatmap["x"]  # the differing position names both tokens
    at.radio(key="patch_view").set_value("Attention heads").run()
    at.button(key="patch_run").click().run()
    assert not at.exception
    drawn = charts(at)
    assert len(drawn) == 3  # exact, estimate, and their agreement
    assert "head 8" in chart_json(drawn[0]) and "block 29" in chart_json(drawn[0])
    r = float(at.metric[2].value)
    assert 0.5 < r <= 1.0  # the estimate agrees with exact patching on this example
    assert len(at.dataframe[0].value) == 8


def test_unequal_lengths_are_refused_and_the_typed_pair_survives_a_reload(open_page):
    at = open_page("pages/patching.py")
    shorter = "When Mary went to the store, Mary gave a drink to"
    at.text_input(key="patch_corrupted").set_value(shorter).run()
    assert not at.exception
    assert "same number of tokens" in at.warning[0].value
    assert not charts(at)
    assert any("corrupted" in h.proto.body for h in at.get("html"))  # both rows still shown
    assert at.query_params["corrupted"] == shorter  # the link holds what was typed, though it cannot run yet
    again = open_page("pages/patching.py", **dict(at.query_params))  # a reload
    assert again.text_input(key="patch_corrupted").value == shorter
    assert again.text_input(key="patch_clean").value == IOI[0]


def test_heads_of_one_block_per_position(open_page, default_lm):
    from model.analyses.patching import exact, patch_head, record_pair

    at = open_page("pages/patching.py")
    at.radio(key="patch_view").set_value("Heads of one block, per position").run()
    assert not at.exception
    block = at.selectbox(key="patch_block").value
    assert at.selectbox(key="patch_block").format_func(block) == f"block {block}"
    estimate = json.loads(chart_json(charts(at)[0]))["data"][0]
    assert estimate["y"] == [f"head {h}" for h in range(9)] and "·John/·Mary (9)" in estimate["x"]
    at.selectbox(key="patch_block").set_value(21).run()
    at.button(key="patch_run").click().run()
    assert not at.exception
    drawn = charts(at)
    assert len(drawn) == 3 and "Block 21" in chart_json(drawn[0])
    top = at.dataframe[0].value
    assert len(top) == 8 and top["where"].iloc[0].startswith("head ")
    pair = record_pair(default_lm, *IOI)
    a, b = (default_lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" Mary", " John"))
    head, position = int(top["row index"].iloc[0]), int(top["column index"].iloc[0])
    assert top["exact"].iloc[0] == pytest.approx(patch_head(default_lm, pair, a, b, 21, head, [position]), abs=1e-3)
    whole = exact(default_lm, pair, a, b, "heads").values[21, head]
    assert patch_head(default_lm, pair, a, b, 21, head, list(range(pair.n_tokens))) == pytest.approx(whole, abs=1e-4)
    assert np.isfinite(top["estimate"]).all()


CAPITALS = ("The capital of France is", "The capital of Italy is")


def _labels(at, key: str) -> list[str]:
    return list(at.selectbox(key=key).options)  # AppTest holds the labels the browser is sent


def test_an_example_loads_again_after_an_edit_and_never_names_a_pair_it_is_not(open_page):
    """The box loads an example, then empties: after an edit or a reload it names no example the
    prompts no longer hold, and choosing the same example again loads it again."""
    at = open_page("pages/patching.py")
    at.selectbox(key="patch_preset").set_value("Which capital? (factual recall)").run()
    assert (at.text_input(key="patch_clean").value, at.text_input(key="patch_corrupted").value) == CAPITALS
    assert at.selectbox(key="patch_preset").value is None
    again = open_page("pages/patching.py", **dict(at.query_params))  # a reload: the capitals, no example named
    assert again.text_input(key="patch_clean").value == CAPITALS[0]
    assert again.selectbox(key="patch_preset").value is None
    at.text_input(key="patch_clean").set_value("The capital of Spain is").run()
    at.selectbox(key="patch_preset").set_value("Which capital? (factual recall)").run()
    assert not at.exception
    assert at.text_input(key="patch_clean").value == CAPITALS[0]
    assert at.selectbox(key="patch_a").format_func(at.selectbox(key="patch_a").value).startswith("·Paris")


def test_a_typed_pair_starts_on_its_own_likeliest_tokens(open_page, default_lm):
    """The example's answers (Mary, John) belong to the example: a typed pair starts on each run's own
    top token, and no answer reads 0.0% when it is not 0."""
    from model.analyses.patching import record_pair, top_tokens

    at = open_page("pages/patching.py")
    clean = "When Anna and Peter went to the shop, Peter gave a book to"
    corrupted = "When Anna and Peter went to the shop, Anna gave a book to"
    at.text_input(key="patch_clean").set_value(clean).run()
    at.text_input(key="patch_corrupted").set_value(corrupted).run()
    assert not at.exception
    pair = record_pair(default_lm, clean, corrupted)
    assert at.selectbox(key="patch_a").value == top_tokens(pair.clean, 1)[0]
    assert at.selectbox(key="patch_b").value == top_tokens(pair.corrupted, 1)[0]
    labels = _labels(at, "patch_a")
    assert not any(" 0.0%" in label for label in labels)
    assert not any(label.startswith("·Mary") for label in labels)


def test_a_prompt_over_the_page_limit_names_the_page_limit(open_page):
    at = open_page("pages/patching.py")
    at.text_input(key="patch_clean").set_value("word " * 80).run()
    assert not at.exception
    warning = at.warning[0].value
    assert "limit is 64 tokens (this page's limit" in warning and "sidebar" not in warning


def test_the_run_is_priced_at_the_pace_of_the_last_run(open_page):
    """No price before any exact run (batched runs make a single pass a bad yardstick: it said 22 s
    for 1.5 s); after one, each button is priced at its pace."""
    at = open_page("pages/patching.py")
    assert "about" not in at.button(key="patch_run").label
    at.button(key="patch_run").click().run()  # the residual stream, exactly
    assert not at.exception
    took = next(m for c in at.caption if (m := re.search(r"took ([\d.]+) s for (\d+) patched", c.value)))
    seconds, runs = float(took.group(1)), int(took.group(2))
    at.radio(key="patch_view").set_value("Attention heads").run()
    label = at.button(key="patch_run").label
    n_runs = int(re.search(r"\((\d+) patched runs", label).group(1))
    price = int(re.search(r"about (\d+) s\)", label).group(1))
    assert abs(price - max(1, n_runs * seconds / runs)) <= 1 + 0.05 * price  # the caption's seconds are rounded


def test_a_cancel_notice_stays_with_the_view_it_cancelled(open_page):
    """"Exact patching was cancelled" stayed on every view and pair until the next run. (The Cancel
    button lives only while a run does, so its callback's effect is set here as it sets it.)"""
    at = open_page("pages/patching.py")
    at.button(key="patch_run").click().run()  # the residual stream's key is now among those requested
    (key,) = at.session_state["patch_exact_keys"]
    at.session_state["patch_exact_keys"] = set()
    at.session_state["patch_cancelled"] = key  # what Cancel leaves behind for this view
    at.run()
    notice = "Exact patching was cancelled"
    assert any(notice in i.value for i in at.info)
    at.radio(key="patch_view").set_value("MLP output").run()
    assert not any(notice in i.value for i in at.info)
    at.radio(key="patch_view").set_value("Residual stream").run()
    assert any(notice in i.value for i in at.info)
