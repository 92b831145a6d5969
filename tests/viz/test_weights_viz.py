"""Weights at a glance drawn from a hand-made tally: rows, shares, shapes and the tied note."""
from __future__ import annotations

from model.analyses.weights import WeightKind, WeightTally
from viz.weights import shape_text, tally_figure, tally_rows

TALLY = WeightTally(
    kinds=[WeightKind("embedding", 1, ((100, 8),), 800),
           WeightKind("query", 2, ((8, 8), (8,)), 144),
           WeightKind("norms", 3, ((8,),), 24),
           WeightKind("unembedding", 0, ((100, 8),), 0, "tied: the embedding matrix, reused")],
    total=968, tied=True)


def test_rows_keep_order_shapes_and_shares():
    rows = tally_rows(TALLY)
    assert [r["kind"] for r in rows] == ["embedding", "query", "norms", "unembedding"]
    assert rows[1]["shape"] == "8 × 8 and 8" and rows[0]["share"] == 800 / 968
    assert sum(r["numbers"] for r in rows) == TALLY.total


def test_figure_bars_and_tied_label():
    fig = tally_figure(TALLY)
    bar = fig.data[0]
    assert list(bar.y) == ["embedding", "query", "norms", "unembedding"] and list(bar.x) == [800, 144, 24, 0]
    assert bar.text[-1] == "tied" and "968" in fig.layout.title.text


def test_shape_text():
    assert shape_text(((49152, 576),)) == "49152 × 576"


def test_a_hidden_kind_gives_its_count_away_nowhere():
    """Lesson step 2 asks for the embedding's count: no row, bar label, hover, share or total may give it
    (a total and the shares would let it be worked back by subtraction)."""
    rows = tally_rows(TALLY, hidden=("embedding",))
    assert rows[0]["numbers"] == "? (work it out)" and rows[1]["numbers"] == "144"
    assert all("share" not in r for r in rows) and rows[0]["shape"] == "100 × 8"
    fig = tally_figure(TALLY, hidden=("embedding",))
    shown = " ".join([fig.layout.title.text, *fig.data[0].text, *fig.data[0].customdata])
    assert "800" not in shown and "968" not in shown and "%" not in shown
    assert "100 × 8" in fig.data[0].customdata[0] and fig.data[0].text[1] == "144"


def test_figures_draw_dark_ticks_of_at_least_12_px():
    fig = tally_figure(TALLY)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickfont.size >= 12 and axis.tickfont.color == "#111827"
