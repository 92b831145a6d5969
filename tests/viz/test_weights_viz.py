"""Weights at a glance drawn from a hand-made tally: rows, shares, shapes and the tied note."""
from __future__ import annotations

from model.weights import WeightKind, WeightTally
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
