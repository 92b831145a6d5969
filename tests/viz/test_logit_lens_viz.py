"""The logit lens figures: top token as escaped cell text, probability as colour, hover with the
tracked token, and a per-layer line for one position."""
from __future__ import annotations

import html

import numpy as np
import pytest

from model.analyses.logit_lens import LogitLens
from viz.labels import percent
from viz.logit_lens import MIN_TEXT_CELL_PX, PLOT_PX, lens_heatmap, row_names, tracked_figure


def _lens(n_rows: int, T: int, seed: int = 0, start: int = 0) -> LogitLens:
    rng = np.random.default_rng(seed)
    return LogitLens(
        top_ids=rng.integers(0, 50, size=(n_rows, T)).astype(np.int64),
        top_probs=rng.uniform(0, 1, size=(n_rows, T)).astype(np.float32),
        target_ids=rng.integers(0, 50, size=T).astype(np.int64),
        target_probs=rng.uniform(0, 1, size=(n_rows, T)).astype(np.float32),
        target_ranks=rng.integers(0, 100, size=(n_rows, T)).astype(np.int64),
        positions=np.arange(start, start + T, dtype=np.int64),
    )


def test_heatmap_cells_show_escaped_top_tokens(capture_builder):
    cap = capture_builder(tokens=["<b>x</b>", "·y", "z"], n_layers=2)
    lens = _lens(3, 3)
    top = np.array([["<i>", "a", "b"], ["c", "d", "e"], ["f", "g", "&"]], dtype=object)
    fig = lens_heatmap(lens, cap.tokens, top, ["<script>", "p", "q"])
    trace = fig.data[0]
    assert trace.text[0][0] == "&lt;i&gt;" and trace.text[2][2] == "&amp;"
    assert list(trace.y) == ["embedding", "after block 0", "after block 1"]
    assert np.allclose(np.asarray(trace.z), lens.top_probs)
    hover = trace.customdata[1][0]
    assert "&lt;b&gt;x&lt;/b&gt;" in hover and "&lt;script&gt;" in hover and "<script>" not in hover
    assert f"rank {int(lens.target_ranks[1, 0]) + 1}" in hover
    assert all("<b>" not in label for label in trace.x)


@pytest.mark.parametrize("T", [4, 12, 30, 64])
def test_cell_text_is_cut_to_its_cell_and_never_overlaps(T):
    long = "strug<0x91>struggle"
    top = np.full((4, T), long, dtype=object)
    fig = lens_heatmap(_lens(4, T), [f"t{i}" for i in range(T)], top, ["a"] * T)
    assert "strug" in fig.data[0].customdata[0][0]  # the whole token stays in the hover
    if PLOT_PX / T < MIN_TEXT_CELL_PX:  # narrower than two characters: no text at all, the hover names it
        assert fig.data[0].text is None and fig.data[0].texttemplate is None
        return
    cells = [html.unescape(c) for row in fig.data[0].text for c in row]
    fits = int(PLOT_PX / T // 7)
    assert all(len(c) <= fits for c in cells)  # a cell's text is no wider than the cell
    assert all(c in ("", long) or (c.endswith("…") and long.startswith(c[:-1])) for c in cells)
    assert (T == 4) == (cells[0] == long)


def test_chinese_columns_read_as_characters(tokenizer):
    from model.core.tokens import readable_tokens

    tokens = readable_tokens(tokenizer, tokenizer("我是学生")["input_ids"])
    T = len(tokens)
    fig = lens_heatmap(_lens(2, T), tokens, np.full((2, T), ",", dtype=object), [","] * T)
    assert not any("<0x" in x for x in fig.data[0].x) and fig.data[0].x[0] == "我… (0)"
    assert len(set(fig.layout.xaxis.ticktext)) == T  # every column labelled


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="tokens"):
        lens_heatmap(_lens(3, 4), ["a"], np.full((3, 4), "a", dtype=object), ["a"] * 4)


def test_a_window_keeps_true_positions():
    tokens = [f"t{i}" for i in range(10)]
    lens = _lens(2, 3, start=7)
    fig = lens_heatmap(lens, tokens, np.full((2, 3), "a", dtype=object), ["a"] * 3)
    assert list(fig.data[0].x) == ["t7 (7)", "t8 (8)", "t9 (9)"]
    assert np.allclose(tracked_figure(lens, 8, "a").data[0].y, lens.target_probs[:, 1])
    with pytest.raises(ValueError, match="not in the lens"):
        tracked_figure(lens, 2, "a")


def test_tracked_line_follows_one_position():
    lens = _lens(5, 4)
    fig = tracked_figure(lens, 2, "<Paris>")
    prob, rank = fig.data
    assert np.allclose(prob.y, lens.target_probs[:, 2]) and list(prob.x) == row_names(5)
    assert list(rank.y) == list(lens.target_ranks[:, 2] + 1)
    assert "&lt;Paris&gt;" in prob.name and "<Paris>" not in fig.layout.title.text
    assert list(prob.customdata) == [percent(float(p)) for p in lens.target_probs[:, 2]]  # hovers: never a false 0.00%
    with pytest.raises(ValueError):
        tracked_figure(lens, 4, "x")


def test_quote_tokens_use_numeric_entities():
    lens = _lens(2, 2)
    fig = lens_heatmap(lens, ['"', "b"], np.array([['"', "x"], ["y", "z"]], dtype=object), ['"', "b"])
    assert fig.data[0].text[0][0] == '"' and "&quot;" not in str(fig.data[0].customdata)


def test_wide_characters_count_double_in_a_cell():
    from viz.labels import cell_text

    assert cell_text("我喜欢", 7 * 6) == "我喜欢" and cell_text("我喜欢", 7 * 5) == "我喜…"
    assert cell_text("·the", 7 * 1) == "" and cell_text(",", 7) == ","


def test_margins_hold_the_longest_labels_without_a_second_layout():
    """The heatmap draws once: its margins are set from its labels (plotly's automargin would lay out
    its every cell again after measuring them), wide enough for the longest row and column names."""
    tokens = ["我我我我我我", "·supercalifragilistic", "a"]
    fig = lens_heatmap(_lens(31, 3), tokens, np.full((31, 3), "x", dtype=object), ["x"] * 3)
    assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    assert fig.layout.xaxis.tickangle == -90  # column labels run upwards: their length sets the bottom
    char = 6.6  # an 11 px monospace advance
    longest_column = max(len(t) + sum(1 for ch in t if ch == "我") for t in fig.data[0].x)
    assert fig.layout.margin.b >= char * longest_column
    assert fig.layout.margin.l >= char * len("after block 29")
