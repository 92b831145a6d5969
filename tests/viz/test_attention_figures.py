"""The one-head heatmap, the query bars, the comparison and the CSV, on synthetic Captures."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from viz import attention as va

HOSTILE = ["<b>bold</b>", "·&amp;", '"q"', "<script>x</script>", "·mole"]


def _traces(fig, name: str) -> list:
    return [t for t in fig.data if t.name == name]


def test_heatmap_draws_weights_and_exactly_the_masked_upper_triangle(synthetic_capture) -> None:
    cap = synthetic_capture
    fig = va.head_heatmap(cap, 1, 2)
    weight, mask = _traces(fig, "weight")[0], _traces(fig, va.MASK_NAME)[0]
    T = cap.n_tokens
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    z_mask, z_weight = np.asarray(mask.z, dtype=float), np.asarray(weight.z, dtype=float)
    assert np.array_equal(~np.isnan(z_mask), upper)  # grey exactly above the diagonal
    assert np.array_equal(np.isnan(z_weight), upper)  # weights exactly on and below it
    assert np.allclose(z_weight[~upper], cap.attention[1, 2][~upper], atol=1e-6)
    assert (weight.zmin, weight.zmax) == (0.0, 1.0)
    assert mask.showlegend and mask.hovertemplate.startswith("masked (future token)")


def test_heatmap_axes_are_labelled_with_unique_tokens_and_queries_run_down(synthetic_capture) -> None:
    fig = va.head_heatmap(synthetic_capture, 0, 0)
    weight = _traces(fig, "weight")[0]
    assert list(weight.y) == list(weight.x) and len(set(weight.x)) == synthetic_capture.n_tokens
    assert weight.x[4] == '"·mole" (pos 4)'
    assert fig.layout.yaxis.autorange == "reversed"
    assert "query" in fig.layout.yaxis.title.text and "key" in fig.layout.xaxis.title.text
    assert "Block 0 · head 0" in fig.layout.title.text


def test_hover_reads_query_key_weight(synthetic_capture) -> None:
    weight = _traces(va.head_heatmap(synthetic_capture, 0, 0), "weight")[0]
    rendered = (weight.hovertemplate.replace("%{y}", weight.y[7]).replace("%{x}", weight.x[1])
                .replace("%{z:.3f}", f"{0.231:.3f}").replace("<extra></extra>", ""))
    assert rendered == 'query "·agency" (pos 7) -> key "·spy" (pos 1): 0.231'


def _shown_strings(fig) -> list[str]:
    """Every label plotly would render: categories, tick texts, hovertemplates, titles."""
    out = [str(fig.layout.title.text)]
    for trace in fig.data:
        out += [str(v) for v in (getattr(trace, "x", None) or [])] + [str(getattr(trace, "hovertemplate", ""))]
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        out += [str(v) for v in (axis.ticktext or [])]
    return out


def test_token_html_is_escaped_everywhere(capture_builder) -> None:
    cap = capture_builder(tokens=HOSTILE)
    figs = [va.head_heatmap(cap, 0, 0), va.query_bars(cap, 0, 0, 4), va.compare_heads(cap, (0, 0), (1, 1))]
    for fig in figs:
        shown = " ".join(_shown_strings(fig))
        assert "<b>" not in shown and "<script>" not in shown and "&amp;amp;" in shown
        assert "&lt;script&gt;" in shown
    assert _traces(figs[0], "weight")[0].x[0] == '"&lt;b&gt;bold&lt;/b&gt;" (pos 0)'


def test_every_query_labelled_up_to_150_tokens_then_thinned(capture_builder) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(150)], n_layers=1, n_heads=1)
    fig = va.head_heatmap(cap, 0, 0)
    assert len(fig.layout.yaxis.ticktext) == 150  # every row carries its token
    assert (fig.layout.height - 270) / 150 >= 13  # ... with room for it
    assert fig.layout.xaxis.tickfont.size >= 11 and fig.layout.xaxis.tickangle == -90  # dark, upright
    cap = capture_builder(tokens=[f"t{i}" for i in range(300)], n_layers=1, n_heads=1)
    fig = va.head_heatmap(cap, 0, 0)
    rows_px = (fig.layout.height - 270) / len(fig.layout.yaxis.ticktext)
    assert rows_px >= 13 and len(fig.layout.xaxis.ticktext) * 13 <= va.PLOT_WIDTH and fig.layout.height <= 2250


def test_token_axes_hold_their_longest_labels_without_a_second_layout(capture_builder) -> None:
    """Each token heatmap draws once: margins set from the labels (plotly's automargin would measure
    them after a first draw and draw every cell again), wide enough for the longest label."""
    tokens = ["我我我我我我", "·supercalifragilistic", "a", "b"]
    cap = capture_builder(tokens=tokens, n_layers=1, n_heads=2)
    char = 6.6  # an 11 px monospace advance
    for fig in (va.head_heatmap(cap, 0, 0), va.compare_heads(cap, (0, 0), (0, 1)), va.query_bars(cap, 0, 0, 3)):
        assert all(axis.automargin is False for axis in (*fig.select_xaxes(), *fig.select_yaxes()))
        longest = max(len(t) + sum(1 for ch in t if ch == "我") for t in fig.layout.xaxis.ticktext)
        assert fig.layout.xaxis.tickangle == -90 and fig.layout.margin.b >= char * longest
        assert fig.layout.margin.l >= (char * longest if fig.layout.yaxis.ticktext else 40)


def test_query_bars_show_only_earlier_tokens_on_a_fixed_scale(synthetic_capture) -> None:
    fig = va.query_bars(synthetic_capture, 1, 0, 4)
    bar = fig.data[0]
    assert len(bar.x) == 5 and np.allclose(bar.y, synthetic_capture.attention[1, 0, 4, :5])
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert bar.hovertemplate.startswith('query "·mole" (pos 4) -> key %{x}')


def test_compare_shares_one_scale_and_diverges_symmetrically(synthetic_capture) -> None:
    fig = va.compare_heads(synthetic_capture, (0, 1), (1, 2))
    weights = _traces(fig, "weight")
    assert len(weights) == 2 and all(t.coloraxis == "coloraxis" for t in weights)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    diff = _traces(fig, "difference")[0]
    c2 = fig.layout.coloraxis2
    assert c2.cmin == -c2.cmax and c2.cmid == 0.0
    a, b = synthetic_capture.attention[0, 1], synthetic_capture.attention[1, 2]
    lower = np.tril(np.ones_like(a, dtype=bool))
    assert np.allclose(np.asarray(diff.z, dtype=float)[lower], (a - b)[lower], atol=1e-6)
    assert c2.cmax == pytest.approx(max(va.DIFF_FLOOR, np.abs(a - b)[lower].max()), rel=1e-5)
    assert len(fig.layout.shapes) == 3 and _traces(fig, va.MASK_NAME)


def test_tiny_differences_stay_pale_and_the_bars_stay_off_the_panels(capture_builder) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(6)], n_layers=1, n_heads=2)
    att = np.array(cap.attention)
    att[0, 1] = att[0, 0] + np.tril(np.full((6, 6), 0.004))  # a 0.004 difference: not dramatic
    fig = va.compare_heads(capture_builder(tokens=cap.tokens, attention=att, n_layers=1, n_heads=2), (0, 0), (0, 1))
    assert fig.layout.coloraxis2.cmax == va.DIFF_FLOOR
    assert "±0.1" in fig.layout.annotations[2].text  # the floor is stated on the panel
    right_edge = fig.layout.xaxis3.domain[1]
    assert fig.layout.coloraxis.colorbar.x > right_edge and fig.layout.coloraxis2.colorbar.x > right_edge


def test_bad_layer_or_head_says_what_is_wrong(synthetic_capture) -> None:
    with pytest.raises(ValueError, match="layer 5, head 0"):
        va.head_heatmap(synthetic_capture, 5, 0)


def test_csv_has_a_row_per_query_and_blank_future_cells(capture_builder) -> None:
    cap = capture_builder(tokens=["=cmd", "a,b", '"q"'], prompt="Hello, World!")
    rows = list(csv.reader(io.StringIO(va.attention_csv(cap, 1, 0))))
    assert rows[0] == ["query \\ key", "0:=cmd", "1:a,b", '2:"q"']
    assert rows[1][2:] == ["", ""] and rows[2][3] == ""
    assert float(rows[3][3]) == pytest.approx(cap.attention[1, 0, 2, 2], abs=1e-6)
    assert va.csv_name(cap, 1, 0) == "attention_L1H0_hello-world.csv"
