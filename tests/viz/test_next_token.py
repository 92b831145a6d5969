"""Next-token bars over the full vocabulary: N bars + the rest, a T = 1 ghost, escaped labels."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from model.analyses.sampling import probabilities, top_tokens
from viz.next_token import (
    REST_LABEL,
    bars_figure,
    csv_filename,
    next_token_bars,
    next_token_figure,
    table_csv,
)

RNG = np.random.default_rng(3)
ROW = (RNG.standard_normal(49152) * 3).astype(np.float32)  # (V,) a realistic-size logits row


def labels_for(ids):
    return [f"tok{int(i)}" for i in ids]


def traces(fig):
    main = next(t for t in fig.data if t.name.startswith("T = ") and "model" not in t.name)
    ghost = next(t for t in fig.data if "model's own" in t.name)
    return main, ghost


@pytest.mark.parametrize("n", [1, 5, 20])
def test_n_bars_plus_the_rest_sum_to_one(n):
    fig, bars = next_token_figure(ROW, labels_for, n=n, temperature=0.7)
    main, ghost = traces(fig)
    assert len(main.y) == n + 1 and main.y[-1] == REST_LABEL
    assert abs(sum(main.x) - 1) < 1e-9 and abs(sum(ghost.x) - 1) < 1e-9
    np.testing.assert_allclose(main.x[:-1], probabilities(ROW, 0.7)[top_tokens(ROW, n)], atol=1e-12)


def test_ghost_keeps_the_model_own_bars():
    fig, bars = next_token_figure(ROW, labels_for, n=10, temperature=2.5)
    main, ghost = traces(fig)
    np.testing.assert_allclose(ghost.x[:-1], probabilities(ROW, 1.0)[top_tokens(ROW, 10)], atol=1e-12)
    assert main.x[0] < ghost.x[0]  # hotter = flatter: the favourite loses mass
    assert bars.entropy > bars.ghost_entropy


def test_temperature_zero_is_one_bar_at_one():
    fig, bars = next_token_figure(ROW, labels_for, n=20, temperature=0)
    main, _ = traces(fig)
    nonzero = [x for x in main.x if x > 0]
    assert nonzero == [1.0] and main.x[0] == 1.0 and bars.entropy == 0.0
    assert int(bars.ids[0]) == int(np.argmax(ROW))


def test_top_k_zeroes_the_tail():
    _, bars = next_token_figure(ROW, labels_for, n=8, top_k=3)
    assert (bars.probs[:3] > 0).all() and (bars.probs[3:] == 0).all() and bars.rest < 1e-12


def test_labels_are_escaped_and_kept_apart():
    ids = top_tokens(ROW, 3)
    fig = bars_figure(next_token_bars(ROW, 3), ["<b>bold</b>", "a&b", "a&b"])
    main, _ = traces(fig)
    assert main.y[0] == "&lt;b&gt;bold&lt;/b&gt;"
    assert main.y[1] != main.y[2] and str(int(ids[2])) in main.y[2]
    with pytest.raises(ValueError, match="labels"):
        bars_figure(next_token_bars(ROW, 3), ["x"])


def test_ranking_matches_probability_order_with_ties():
    row = np.array([1.0, 3.0, 3.0, 0.5, 3.0], dtype=np.float32)
    assert top_tokens(row, 4).tolist() == [1, 2, 4, 0]
    assert top_tokens(row, 99).tolist() == [1, 2, 4, 0, 3]


def test_csv_download():
    bars = next_token_bars(ROW, 4)
    text = table_csv(bars, ["=cmd", "·the", "b", "c"])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["rank", "token", "id", "probability"]
    assert rows[1][1] == "'=cmd" and rows[2][1] == "·the" and rows[-1][1] == REST_LABEL
    assert abs(sum(float(r[3]) for r in rows[1:]) - 1) < 1e-6
    assert csv_filename("The capital of <France> is!") == "next_token_the_capital_of_france_is.csv"
    assert csv_filename("???") == "next_token_prompt.csv"


def test_quotes_use_an_entity_plotly_decodes():
    fig = bars_figure(next_token_bars(ROW, 2), ['."', "it's"])
    main, _ = traces(fig)
    assert main.y[0] == '."' and main.y[1] == "it's"


def test_a_byte_token_among_the_bars_gets_a_caption():
    from viz.next_token import byte_token_note

    assert byte_token_note(["·Paris", "·the"]) is None
    note = byte_token_note(["·I", "<0xF0><0x9F>", "↵"])
    assert note.startswith("`<0xF0><0x9F>` (#2) is a byte token") and "UTF-8 bytes" in note
    odd = byte_token_note(["a`<0xF0>*b*"])  # not bytes alone: never quoted into markdown
    assert odd.startswith("The token at #1") and "*b*" not in odd


def test_a_chosen_token_outside_the_top_gets_its_own_bar_with_its_rank():
    """A sampled token far down the ranking is drawn after the top N (orange, its rank named), and the
    rest bar is what neither holds; a chosen token inside the top N adds no bar."""
    far = int(top_tokens(ROW, 500)[-1])  # rank 500
    fig, bars = next_token_figure(ROW, labels_for, n=5, temperature=1.3, chosen=far)
    main, _ = traces(fig)
    p = probabilities(ROW, 1.3)
    assert list(main.y) == [*labels_for(top_tokens(ROW, 5)), f"tok{far} (#500)", REST_LABEL]
    assert list(main.marker.color[:5]) == ["#3b6fd8"] * 5 and main.marker.color[5] == "#e8890c"
    assert main.textfont.color[5] == "#e8890c" and main.textfont.color[0] != "#e8890c"  # a hairline bar's number shows it
    assert main.x[5] == pytest.approx(p[far], rel=1e-6, abs=0) and abs(sum(main.x) - 1) < 1e-9
    near = int(top_tokens(ROW, 5)[2])
    fig, bars = next_token_figure(ROW, labels_for, n=5, chosen=near)
    assert len(bars.ids) == 5 and traces(fig)[0].marker.color[2] == "#e8890c"
