"""The Prompt sets page on the default model, acted on in sequence as a person would: the built-in
indirect-object set opens at once with its strip, the views run on their buttons, a bad template
gives a message and keeps the set, pasted lines with bad rows list each with its reason, a click on a
prompt opens it on a one-prompt page."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
from apptest_session import link_of
from page_charts import chart_json, charts

from model.analyses.patching import answer_id


def _values(data) -> np.ndarray:
    """A trace's numbers as plotly JSON sends them: a list, or typed-array bytes."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return np.asarray(data)


def _built(at, n: int = 20):
    at.number_input(key="set_n").set_value(n)
    at.button(key="set_build_builtin").click().run()
    assert not at.exception
    return at


def test_first_visit_then_views(open_page, default_lm):
    at = _built(open_page("pages/prompt_sets.py"), 12)
    assert "12 prompts run, 12 with a corrupted prompt" in " ".join(m.value for m in at.markdown)
    strip = json.loads(chart_json(charts(at)[0]))["data"]
    diffs = _values(strip[0]["y"])
    assert len(diffs) == 12 and (diffs > 0).mean() > 0.7  # the model mostly names the indirect object
    first = at.selectbox(key="set_pick").format_func(at.selectbox(key="set_pick").value)
    prompt = first.split(": ", 1)[1]
    logits = default_lm.forward(default_lm.encode(prompt), last_only=True).logits
    answers = [m.value for m in at.markdown if m.value.startswith("Answer ")][0]
    a, b = (answer_id(default_lm, t) for t in re.findall(r"`` (.*?) ``", answers))  # shown as code, as written
    assert f"{logits[a] - logits[b]:+.2f}" in answers  # the difference shown is the prompt's own

    at.radio(key="set_view").set_value("Heads: direct share").run()
    assert not at.exception
    assert "over 12 prompts" in chart_json(charts(at)[0])
    at.radio(key="set_view").set_value("Patching").run()
    at.button(key="set_run_estimate").click().run()
    assert not at.exception
    heat = json.loads(chart_json(charts(at)[0]))["data"][0]
    assert heat["x"][-1] == "last" and heat["y"][0] == "embedding"
    at.radio(key="set_patch_view").set_value("MLP output").run()
    at.toggle(key="set_patch_per_block").set_value(True).run()
    at.button(key="set_run_exact_block").click().run()
    assert not at.exception
    blocks = json.loads(chart_json(charts(at)[0]))["data"][0]
    assert blocks["x"] == ["estimate", "exact"] and blocks["y"][-1] == "block 29"
    at.radio(key="set_view").set_value("Head ablation").run()
    at.number_input(key="set_ablate_n").set_value(2).run()
    at.button(key="set_run_ablation").click().run()
    assert not at.exception
    bars = json.loads(chart_json(charts(at)[0]))["data"][0]
    assert len(bars["x"]) == 2
    at.radio(key="set_view").set_value("Head types").run()
    at.button(key="set_run_types").click().run()
    assert not at.exception and charts(at)

    at.radio(key="set_view").set_value("Logit difference").run()  # back to the strip: open a prompt
    at.selectbox(key="set_pick").set_value(4).run()  # the fourth row of the set
    label = at.selectbox(key="set_pick").format_func(at.selectbox(key="set_pick").value)
    assert label.startswith("#4: ")
    shown = [m.value for m in at.markdown if m.value.startswith("Answer ")][0]
    pair = tuple(answer_id(default_lm, t) for t in re.findall(r"`` (.*?) ``", shown))
    at.button(key="set_open_Attribution").click().run()
    assert not at.exception
    assert at.session_state["prompt"] == label.split(": ", 1)[1]
    assert any(t.value.startswith("Attribution") for t in at.title)
    assert (at.selectbox(key="attr_token").value, at.selectbox(key="contrast_token").value) == pair  # the set's A and B
    at.switch_page("pages/prompt_sets.py").run()  # back: the prompt chosen is still the one chosen
    assert not at.exception and at.selectbox(key="set_pick").value == 4


def test_bad_input_keeps_the_set(open_page):
    at = _built(open_page("pages/prompt_sets.py"), 10)
    at.radio(key="set_source").set_value("Template").run()
    at.text_input(key="set_template").set_value("When {A} met {Nobody}, {A} said").run()
    at.button(key="set_build_template").click().run()
    assert not at.exception
    assert any("Nobody" in e.value for e in at.error)
    assert "10 prompts run" in " ".join(m.value for m in at.markdown)  # the earlier set stays

    at.radio(key="set_source").set_value("Pasted lines").run()
    at.text_area(key="set_lines").set_value(
        "The capital of France is | Paris | Rome\n"
        "The capital of Japan is | Tokyo | Christopherson\n"
        "no separators here\n"
        "The capital of Italy is | Rome | Paris | The capital of the United Kingdom is"
    ).run()
    at.button(key="set_build_lines").click().run()
    assert not at.exception
    summary = " ".join(m.value for m in at.markdown)
    assert "1 prompt run" in summary and any(e.label == "3 rows left out, and why" for e in at.expander)
    reasons = at.dataframe[0].value
    assert list(reasons["row"]) == [2, 3, 4]
    assert "token" in reasons["reason"][1] or "token" in " ".join(reasons["reason"])
    at.text_area(key="set_lines").set_value("  \n ").run()  # an empty box: said, and the set stays
    at.button(key="set_build_lines").click().run()
    assert any("Nothing is pasted yet" in w.value for w in at.warning)
    assert "1 prompt run" in " ".join(m.value for m in at.markdown)


def test_a_copied_link_opens_the_same_built_in_set_and_view(open_page):
    """A built-in set, its size and the view ride in the link; a fresh session from it builds the same set
    and opens the view; a set of one's own leaves the set out of the link (its rows cannot ride in it)."""
    at = open_page("pages/prompt_sets.py")
    at.selectbox(key="set_builtin").set_value("Capital cities")
    _built(at, 20)
    at.radio(key="set_view").set_value("Heads: direct share").run()
    link = link_of(at)
    assert (link["set"], link["set_n"], link["set_view"]) == ("Capital cities", "20", "heads")
    summary = " ".join(m.value for m in at.markdown)
    again = open_page("pages/prompt_sets.py", **link)
    assert not again.exception and again.radio(key="set_view").value == "Heads: direct share"
    assert " ".join(m.value for m in again.markdown) == summary
    at.radio(key="set_source").set_value("Pasted lines").run()
    at.text_area(key="set_lines").set_value("The capital of France is | Paris | Rome").run()
    at.button(key="set_build_lines").click().run()
    assert "set" not in at.query_params and at.query_params["set_view"] in ("heads", ["heads"])
    bad = open_page("pages/prompt_sets.py", set="No such set", set_view="nope")
    assert sum("Ignored" in w.value for w in bad.warning) == 2 and not bad.exception
