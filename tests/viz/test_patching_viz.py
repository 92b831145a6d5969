"""Patching figures from plain arrays: labels in the depth vocabulary, a diverging scale centred at 0
with 1 (clean) inside it, both prompts' tokens aligned, and token text never read as markup."""
from __future__ import annotations

import numpy as np
import pytest

from viz.patching import (
    agreement_figure,
    aligned_tokens_html,
    cell_names,
    column_labels,
    layer_labels,
    patching_heatmap,
    position_labels,
)

CLEAN = ["When", "·Mary", "·and", "·John", ",", "·John", "·gave"]
CORRUPTED = ["When", "·Mary", "·and", "·John", ",", "·Mary", "·gave"]


def test_labels_use_the_depth_vocabulary():
    assert layer_labels("residual", 3) == ["embedding", "after block 0", "after block 1"]
    assert layer_labels("mlp_out", 2) == ["block 0", "block 1"]
    assert position_labels(CLEAN, CORRUPTED)[5] == "·John/·Mary (5)"
    assert position_labels(CLEAN, CORRUPTED)[0] == "When (0)"
    assert column_labels("heads", CLEAN, CORRUPTED, 3) == ["head 0", "head 1", "head 2"]
    with pytest.raises(ValueError, match="7 and 6 tokens"):
        position_labels(CLEAN, CORRUPTED[:6])


def test_heatmap_is_diverging_and_centred():
    values = np.array([[0.0, 1.0], [-0.4, 0.2], [0.0, 0.7]])
    ran = values != 0
    fig = patching_heatmap(values, layer_labels("residual", 3), ["a (0)", "b (1)"], "t", ran)
    trace = fig.data[0]
    assert trace.zmid == 0 and trace.zmin == -1 and trace.zmax == 1  # 1 = clean is the full colour
    assert list(trace.y) == ["embedding", "after block 0", "after block 1"]
    assert "not patched" in trace.customdata[0][0] and trace.customdata[0][1] == ""
    big = patching_heatmap(values * 3, layer_labels("residual", 3), ["a (0)", "b (1)"], "t")
    assert big.data[0].zmax == pytest.approx(3.0) and big.data[0].zmin == pytest.approx(-3.0)
    with pytest.raises(ValueError):
        patching_heatmap(values, ["x"], ["a", "b"], "t")


def test_agreement_figure_plots_the_cells_that_ran():
    exact = np.array([[0.0, 1.0], [0.5, 0.1]])
    estimate = np.array([[0.0, 0.8], [0.6, 0.0]])
    ran = np.array([[False, True], [True, True]])
    names = cell_names(["block 0", "block 1"], ["h0", "h1"], ran)
    assert names == ["block 0 · h1", "block 1 · h0", "block 1 · h1"]
    fig = agreement_figure(exact, estimate, ran, names)
    assert list(fig.data[1].x) == [1.0, 0.5, 0.1] and list(fig.data[1].y) == [0.8, 0.6, 0.0]


def test_aligned_tokens_escape_and_mark_differences():
    html = aligned_tokens_html(["<b>", "·x", "·y"], ["<b>", "·z", "·y"])
    assert "<b>" not in html  # the token shows as characters, never as a bold tag
    assert html.count("&lt;b&gt;") == 2
    assert html.count("background:") == 2  # position 1, in both rows
    uneven = aligned_tokens_html(["a", "b"], ["a"])
    assert "—" in uneven and uneven.count("background:") == 2


def test_plain_labels_and_top_rows_are_text_as_is():
    from viz.patching import plain_column_labels, plain_position_labels, top_rows

    assert plain_position_labels(["<b>", "·a"], ["<b>", "·bcdefghijklmnop"]) == ["<b> (0)", "·a/·bcdefghijklmnop (1)"]
    assert plain_column_labels("heads", CLEAN, CORRUPTED, 2) == ["head 0", "head 1"]
    estimate = np.array([[0.1, 0.2], [0.3, 0.4]])
    rows = top_rows([(1, 0, 0.9)], estimate, ["block 0", "block 1"], ["a (0)", "b (1)"])
    assert rows == [{"where": "block 1 · a (0)", "exact": 0.9, "estimate": 0.3, "row index": 1, "column index": 0}]
