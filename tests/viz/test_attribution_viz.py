"""Attribution figures: one bar per layer for attention and MLP, sign-coloured, escaped token text,
and a summary table whose shares add up."""
from __future__ import annotations

import numpy as np

from model.analyses.attribution import Attribution
from viz.attribution import DOWN, UP, attribution_figure, summary_rows, top_contributors


def _attr() -> Attribution:
    attn = np.array([0.5, -1.0, 2.0])
    mlp = np.array([-0.25, 0.0, 3.0])
    return Attribution(position=4, token_id=7, norm_kind="rms", embedding=-0.5, attn=attn, mlp=mlp,
                       bias=0.0, rest=0.0, logit=3.75, scale=2.0)


def test_bars_per_layer_with_diverging_colours():
    fig = attribution_figure(_attr(), "<Paris>")
    emb, attn, mlp = fig.data[:3]
    assert [t.name for t in fig.data[3:]] == ["pushes up", "pushes down", "attention (solid)", "MLP (hatched)"]
    assert list(attn.x) == ["0", "1", "2"] and list(attn.y) == [0.5, -1.0, 2.0]
    assert list(attn.marker.color) == [UP, DOWN, UP]
    assert list(emb.marker.color) == [DOWN]
    assert mlp.marker.pattern.shape == "/"
    assert "&lt;Paris&gt;" in fig.layout.title.text and "<Paris>" not in attn.hovertemplate


def test_summary_adds_up_and_ranks_contributors():
    rows = {r["part"]: r["logit share"] for r in summary_rows(_attr())}
    assert rows["sum of the shares"] == rows["model's own logit"] == 3.75
    top = top_contributors(_attr(), 2)
    assert [t["part"] for t in top] == ["block 2 MLP", "block 2 attention"]
    assert top_contributors(_attr(), 3)[2]["direction"] == "down"
