"""Ablation views: same tokens before/after, the biggest moves first, KL zero when nothing changed."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.sampling import probabilities
from viz.ablation import biggest_changes, change_rows, comparison_figure, head_label, top_tokens_compared
from viz.labels import points

RNG = np.random.default_rng(5)
BEFORE = (RNG.standard_normal(1000) * 2).astype(np.float32)  # (V,)


def shifted(ids_up):
    """The same logits with the given tokens lifted above the old favourite."""
    after = BEFORE.copy()
    after[list(ids_up)] = BEFORE.max() + 2.0
    return after


def test_nothing_changed_means_zero_everywhere(synthetic_capture):
    row = synthetic_capture.logits[-1]
    comp = top_tokens_compared(row, row.copy(), n=5)
    assert comp.kl_bits == 0.0 and np.all(comp.change == 0) and len(comp.ids) == 5


def test_a_promoted_token_joins_the_bars_and_tops_the_changes():
    after = shifted([7])
    comp = top_tokens_compared(BEFORE, after, n=5)
    assert 7 in comp.ids.tolist() and len(comp.ids) == 6 and comp.kl_bits > 0
    moves = biggest_changes(BEFORE, after, n=4)
    assert int(moves.ids[0]) == 7 and moves.change[0] > 0
    p, q = probabilities(BEFORE), probabilities(after)
    np.testing.assert_allclose(moves.change, (q - p)[moves.ids], atol=1e-12)
    assert np.all(np.diff(np.abs(moves.change)) <= 1e-15)  # largest move first


def test_figure_groups_before_and_after_with_escaped_labels():
    comp = top_tokens_compared(BEFORE, shifted([3]), n=3)
    labels = ["<i>x</i>"] + [f"t{i}" for i in comp.ids[1:]]
    fig = comparison_figure(comp, labels)
    assert fig.layout.barmode == "group" and len(fig.data) == 2
    assert fig.data[0].y[0] == "&lt;i&gt;x&lt;/i&gt;"
    np.testing.assert_allclose(fig.data[1].x, comp.after)
    with pytest.raises(ValueError, match="labels"):
        comparison_figure(comp, ["a"])


def test_changes_of_a_probability_are_percentage_points():
    """0.50 -> 0.45 is -5 percentage points, never '-5.0%' (a tenth of 50% would be -5%)."""
    comp = top_tokens_compared(BEFORE, shifted([3]), n=3)
    fig = comparison_figure(comp, [f"t{i}" for i in comp.ids])
    assert all(t.endswith(" pp") and "%" not in t for t in fig.data[1].text)
    assert fig.data[1].text[0] == f"{100 * comp.change[0]:+.1f} pp"
    assert points(-0.05) == "-5.0 pp" and points(0.0123, 2) == "+1.23 pp"


def test_rows_and_names():
    comp = biggest_changes(BEFORE, shifted([1, 2]), n=2)
    rows = change_rows(comp, ["a", "b"])
    assert {r["id"] for r in rows} == {1, 2} and all(r["change"] > 0 for r in rows)
    assert head_label(3, 5) == "L3 H5"
    with pytest.raises(ValueError, match="shape"):
        top_tokens_compared(BEFORE, BEFORE[:10])


def test_head_scan_effects_and_figure():
    from viz.ablation import head_effects, scan_figure

    rows = [BEFORE.copy(), shifted([4]), shifted([4, 9])]
    effects = head_effects(BEFORE, rows)
    assert effects[0] == 0 and 0 < effects[1] < effects[2]
    fig = scan_figure(effects, layer=2)
    assert list(fig.data[0].x) == ["L2 H0", "L2 H1", "L2 H2"]


def test_metric_changes_rows_and_the_pair_figure():
    from viz.ablation import metric_changes, scan_pair_figure, scan_rows

    rows = [BEFORE.copy(), shifted([4]), shifted([4, 9])]
    moved = metric_changes(BEFORE, rows, a=4, b=9)  # (H,)
    assert moved[0] == 0 and moved[2] == pytest.approx(-float(BEFORE[4] - BEFORE[9]))  # both lifted to one value
    assert moved[1] == pytest.approx(float(rows[1][4] - rows[1][9]) - float(BEFORE[4] - BEFORE[9]))
    alone = metric_changes(BEFORE, rows, a=4, b=None)
    assert alone[1] == pytest.approx(float(rows[1][4] - BEFORE[4])) and alone[1] > 0
    kl = head_effects_of(rows)
    table = scan_rows(2, kl, moved, "logit(a) − logit(b)")
    assert table[1] == {"head": "L2 H1", "block": 2, "head index": 1, "KL (bits)": kl[1],
                        "change of logit(a) − logit(b)": moved[1]}
    fig = scan_pair_figure(kl, moved, 2, "logit(<a>) − logit(b)")
    assert [list(t.x) for t in fig.data] == [["L2 H0", "L2 H1", "L2 H2"]] * 2
    assert list(fig.data[1].y) == list(moved) and "&lt;a&gt;" in fig.data[1].hovertemplate  # text, not markup


def head_effects_of(rows):
    from viz.ablation import head_effects

    return head_effects(BEFORE, rows)
