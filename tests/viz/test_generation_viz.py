"""Generation history views over hand-made steps."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.generation import Step
from viz.generation import alternatives_rows, history_figure, history_rows, step_labels


def make_steps() -> list[Step]:
    logits = np.zeros(10, dtype=np.float32)
    return [
        Step(0, (1, 2), 5, "·Paris", 0.8, ((5, "·Paris", 0.8), (6, "·<b>", 0.1)), logits),
        Step(1, (1, 2, 5), 7, ".", 0.4, ((8, "·and", 0.5), (7, ".", 0.4)), logits),
    ]


def test_history_bars_follow_steps_and_mark_selection():
    fig = history_figure(make_steps(), selected=1)
    bar = fig.data[0]
    assert list(bar.x) == ["1: ·Paris", "2: ."] and list(bar.y) == [0.8, 0.4]
    assert bar.marker.color[0] != bar.marker.color[1]
    assert "&lt;b&gt;" in bar.customdata[0] and "<b>" not in bar.customdata[0].replace("<br>", "")
    with pytest.raises(ValueError):
        history_figure([])


def test_a_rare_draw_never_reads_zero_and_long_labels_slant():
    """A token drawn at high temperature may have had 0.02%: its bar says '<0.1%', not '0%'; long
    tokens' labels are slanted instead of running into each other."""
    logits = np.zeros(10, dtype=np.float32)
    rare = [Step(i, (1,), 5, "·Approximately", 0.0002, (), logits) for i in range(6)]
    fig = history_figure(rare)
    assert list(fig.data[0].text) == ["<0.1%"] * 6 and fig.layout.xaxis.tickangle == -45
    assert history_figure(make_steps()).layout.xaxis.tickangle == 0  # two short labels stay upright


def test_tables():
    steps = make_steps()
    rows = history_rows(steps)
    assert rows[0]["runner-up"] == "·<b>" and rows[1]["runner-up"] == "·and"
    alts = alternatives_rows(steps[1])
    assert [a["chosen"] for a in alts] == [False, True]
    assert step_labels([Step(0, (1,), 3, "<x>", 1.0, (), np.zeros(2))]) == ["1: &lt;x&gt;"]


def test_a_draw_below_the_alternatives_is_listed_with_its_rank_and_hovers_never_read_zero():
    """A token sampled far down the ranking is a row of its own (ticked, its rank among the logits);
    the history's hovers give tiny probabilities as '<0.1%' or in 3 significant digits, never 0.000."""
    logits = np.array([5, 4, 3, 2, 1, 0, -1, -2], dtype=np.float32)
    step = Step(0, (1,), 6, "·far", 2e-6, ((0, "·a", 0.6), (1, "·b", 0.3)), logits)
    rows = alternatives_rows(step)
    assert [r["chosen"] for r in rows] == [False, False, True] and rows[-1]["rank"] == 7
    assert rows[-1]["probability"] == 2e-6 and rows[-1]["token"] == "·far"
    bar = history_figure([Step(0, (1,), 0, "·a", 0.6, ((0, "·a", 0.6), (1, "·b", 0.00002)), logits)]).data[0]
    assert "·b: <0.1%" in bar.customdata[0] and ".3g" in bar.hovertemplate


def test_rank_of_follows_top_tokens_with_ties():
    from model.analyses.sampling import rank_of, top_tokens

    row = np.array([1.0, 3.0, 3.0, 0.5, 3.0, 2.0], dtype=np.float32)
    order = top_tokens(row, row.size)
    assert [rank_of(row, int(t)) for t in order] == list(range(1, row.size + 1))
