"""The lesson's words against what it shows (issue 26): step 2 never prints the count it asks for,
step 3 lists none of the typed words, step 6 speaks of a plain share of attention, step 8 explains its
chance-corrected score, and step 4 writes each score in its cell."""
from __future__ import annotations

import json

from apptest_session import open_app_page
from page_charts import figures
from streamlit.testing.v1 import AppTest

EMBEDDING = 49152 * 576  # the default model's embedding matrix


def open_step(step: int, **params: str) -> AppTest:
    at = open_app_page("pages/lesson.py", step=str(step), **params)
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure_words(fig: dict) -> list:
    """What a chart writes (titles, bar texts, hovers), not the data that sets its bars' lengths."""
    words = [json.dumps(fig["layout"].get("title", ""))]
    for trace in fig["data"]:
        words += [json.dumps(trace.get(k, "")) for k in ("text", "customdata", "hovertext", "hovertemplate")]
    return words


def shown_text(at: AppTest) -> str:
    """Every text, table and chart text the page drew, as one string."""
    parts = [word for f in figures(at) for word in figure_words(f)]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [el.value for kind in ("markdown", "caption", "text", "info", "success") for el in at.get(kind)]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # verdicts escape their markdown


def test_step_2_leaves_the_embedding_count_to_the_learner() -> None:
    at = open_step(2)
    shown = shown_text(at)
    assert all(form not in shown for form in (str(EMBEDDING), f"{EMBEDDING:,}", "28.3 M", "21.0%", "21%"))
    assert "49152 × 576" in shown and "work it out" in shown
    at.number_input(key="lesson_embedding_count").set_value(EMBEDDING).run()
    assert any(f"Right: {EMBEDDING:,}" in s.value.replace("\\", "") for s in at.success)


def test_start_here_still_counts_everything() -> None:
    at = open_app_page()
    assert not at.exception
    assert any(f"{EMBEDDING:,}" in json.dumps(f) for f in figures(at))


def test_step_3_lists_no_spelling_of_a_typed_word() -> None:
    at = open_step(3)
    at.text_input(key="lesson_expr").set_value("Paris - France + Italy").run()
    (nearest,) = [t.value for t in at.text if t.value.startswith("Nearest tokens")]
    names = [item.rsplit(" (", 1)[0].lstrip("·").lower() for item in nearest.removeprefix("Nearest tokens: ").split(", ")]
    assert not set(names) & {"paris", "france", "italy"}, nearest


def test_step_6_speaks_of_a_share_of_attention() -> None:
    at = open_step(6)  # arrives on the sink head: not a previous-token head
    (verdict,) = [i.value for i in at.info if "attention goes to the token just before" in i.value]
    assert "On average" in verdict and "%" in verdict and "score" not in verdict


def test_step_4_writes_scores_in_the_cells() -> None:
    at = open_step(4)  # the default prompt: 5 tokens
    heatmap = figures(at)[0]["data"][0]
    assert heatmap["texttemplate"] == "%{text}" and len(heatmap["text"]) == 5


def test_step_8_explains_the_induction_score() -> None:
    at = open_step(8)
    (verdict,) = [v.value for v in (*at.info, *at.success) if "Induction score" in v.value]
    assert "of this head's attention" in verdict and "spread evenly" in verdict
