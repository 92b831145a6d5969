"""The overview grid (one image, clickable points, badges, selection box) and the head table."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from viz import head_grid, head_table


def _scores(L: int, H: int) -> dict[str, np.ndarray]:
    scores = {k: np.zeros((L, H), dtype=np.float32) for k in head_grid.BADGES}
    scores["previous"][0, 1] = 0.9
    scores["induction"][1, 2] = 0.7
    return scores


def test_thumbnails_are_one_image_with_one_tile_per_head(synthetic_capture) -> None:
    image = head_grid.thumbnails(synthetic_capture.attention, cell=20)
    assert image.shape == (3 * 20, 2 * 20, 3) and image.dtype == np.uint8  # heads down, layers across


def test_thumbnail_draws_a_previous_token_head_as_a_dark_diagonal(capture_builder) -> None:
    T = 10
    prev = np.eye(T, k=-1)
    prev[0, 0] = 1.0
    cap = capture_builder(tokens=[f"t{i}" for i in range(T)], n_layers=1, n_heads=1, attention=prev[None, None])
    tile = head_grid.thumbnails(cap.attention, cell=T + 2)[1:-1, 1:-1].astype(int)  # (T, T, 3)
    assert tile[5, 4].sum() < 300  # dark blue on the previous token
    assert tile[5, 2].sum() > 700  # white: no weight
    assert tuple(tile[2, 7]) == (222, 224, 228)  # grey: masked future


def test_grid_with_a_cached_picture_is_the_same_figure(synthetic_capture) -> None:
    """The Attention page passes the picture it cached for the capture; the figure must not change."""
    uri = head_grid.thumbnail_uri(synthetic_capture.attention, cell=20)
    fresh = head_grid.grid_figure(synthetic_capture.attention, _scores(2, 3), (1, 2), group_size=3, cell=20)
    cached = head_grid.grid_figure(synthetic_capture.attention, _scores(2, 3), (1, 2), group_size=3, cell=20,
                                   image_uri=uri)
    assert cached.to_dict() == fresh.to_dict()


def test_thumbnails_shrink_long_prompts(capture_builder) -> None:
    cap = capture_builder(tokens=[f"t{i}" for i in range(200)], n_layers=2, n_heads=2)
    assert head_grid.thumbnails(cap.attention, cell=36).shape == (72, 72, 3)


def test_grid_is_one_png_plus_clickable_points_and_a_selection_box(synthetic_capture) -> None:
    fig = head_grid.grid_figure(synthetic_capture.attention, _scores(2, 3), (1, 2), group_size=3, cell=20)
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 1 and not any(t.type == "heatmap" for t in fig.data)
    png = Image.open(io.BytesIO(base64.b64decode(images[0].source.split(",", 1)[1])))
    assert png.size == (40, 60)
    points = next(t for t in fig.data if t.name == "pick a head")
    assert len(points.x) == 6 and "L1H2 (kv group 0)" in points.hovertext[5]
    assert "chance taken off (0 = spread evenly" in points.hovertext[5]  # a negative score explained
    box = fig.layout.shapes[0]
    assert (box.x0, box.x1, box.y0, box.y1) == (0.5, 1.5, 1.5, 2.5)


def test_badges_mark_heads_above_the_threshold(synthetic_capture) -> None:
    text = head_grid.badge_text(_scores(2, 3), 0.5)
    assert text[0, 1] == "P" and text[1, 2] == "I" and text[0, 0] == ""


def test_a_click_maps_back_to_layer_and_head() -> None:
    assert head_grid.picked_head([{"x": 4, "y": 2}], n_heads=3) == (4, 2)
    assert head_grid.picked_head([{"x": 3.58, "y": 1.58}], n_heads=3) is None  # a badge, not a head
    assert head_grid.picked_head([], n_heads=3) is None


def test_head_table_has_a_row_per_head_with_kv_groups() -> None:
    L, H = 2, 9
    stats = {k: np.full((L, H), 0.25, dtype=np.float32) for k in head_table.COLUMNS}
    table = head_table.head_table(stats, group_size=3, induction=np.arange(L * H).reshape(L, H) / 100)
    assert len(table) == L * H
    assert table["kv group"].tolist()[:9] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert head_table.row_head(table, 13) == (1, 4)
    assert table[head_table.INDUCTION_REPEATED].iloc[13] == 0.13
    assert "9 query heads share 3 key/value heads" in head_table.gqa_caption(9, 3)


def test_badges_are_dark_haloed_letters_with_a_legend_that_names_them(synthetic_capture) -> None:
    labels = {"previous": "previous-token", "induction": "induction", "first": "first-token (sink)",
              "self": "self", "duplicate": "duplicate-token"}
    fig = head_grid.grid_figure(synthetic_capture.attention, _scores(2, 3), (0, 0), cell=20, labels=labels)
    badges = next(t for t in fig.data if t.name == "badges")
    where = dict(zip(badges.text, zip(badges.x, badges.y)))
    assert sorted(badges.text) == ["I", "P"]  # one label per badged head, none for the others
    assert badges.textfont.size >= 12 and badges.textfont.color == "#111827" and badges.textfont.weight == "bold"
    assert "white" in badges.textfont.shadow  # a white halo: legible on the darkest thumbnail
    assert badges.hoverinfo == "skip"  # a click goes through to the head underneath
    assert where["P"] == (-0.47, 1 - 0.47)  # head (0, 1)'s top-left
    assert not [a for a in fig.layout.annotations if a.xref != "paper"]  # no per-head annotations (slow to draw)
    legend = next(a.text for a in fig.layout.annotations if a.xref == "paper")
    for letter, words in [("P", "previous-token"), ("F", "first-token (sink)"), ("S", "self"),
                          ("D", "duplicate-token"), ("I", "induction")]:
        assert f"<b>{letter}</b> = {words}" in legend
    assert "score ≥ 0.5" in legend


def test_head_table_puts_badge_scores_first_and_fits_with_short_labels() -> None:
    L, H = 2, 9
    stats = {k: np.full((L, H), 0.25, dtype=np.float32) for k in head_table.COLUMNS}
    table = head_table.head_table(stats, group_size=3, induction=np.zeros((L, H)))
    columns = list(table.columns)
    assert columns.index(head_table.INDUCTION_REPEATED) < columns.index("entropy (bits)")  # not off to the right
    assert columns[3:8] == ["previous-token score", "first-token score", "self score", "duplicate-token score",
                            head_table.INDUCTION_REPEATED]
    config = head_table.column_config(table)
    assert set(config) == set(columns)  # every column labelled and sized
    assert sum(c["width"] for c in config.values()) <= 800  # fits beside the sidebar at 1400 px without scrolling sideways
    assert all(len(c["label"]) <= 8 for c in config.values())
    assert "below 0" in config["self score"]["help"]  # negative scores explained where they show
