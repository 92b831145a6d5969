"""CSV text of the pages' tables: a header and one line per row that a csv reader gives back
exactly, tokens that look like formulas kept as text, numpy numbers written as plain numbers, and
grids in long form (one line per cell, row-major)."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from viz.export import file_name, grid_rows, rows_csv


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_rows_round_trip_through_a_csv_reader():
    rows = [{"token": "·Paris", "id": 6342, "share": np.float32(0.25)},
            {"token": 'say "hi", then\nleave', "id": np.int64(7), "share": -1.5}]
    assert read(rows_csv(rows)) == [["token", "id", "share"], ["·Paris", "6342", "0.25"],
                                    ['say "hi", then\nleave', "7", "-1.5"]]


def test_formula_like_text_stays_text_but_negative_numbers_stay_numbers():
    text = rows_csv([{"token": "=1+2", "value": -0.5}, {"token": "-", "value": 2}, {"token": "@x", "value": None}])
    assert read(text)[1:] == [["'=1+2", "-0.5"], ["'-", "2"], ["'@x", ""]]


def test_columns_choose_and_order_the_fields():
    assert read(rows_csv([{"a": 1, "b": 2}], columns=["b", "a"])) == [["b", "a"], ["2", "1"]]
    assert rows_csv([], columns=["a"]) == "a\n" and rows_csv([]) == ""


def test_grid_rows_are_row_major_with_indices_and_labels():
    exact = np.array([[0.0, 1.0, 0.5], [0.25, -0.5, 0.0]])
    ran = exact != 0
    rows = grid_rows({"exact": exact, "ran": ran}, ["block 0", "block 1"], ["a (0)", "b (1)", "c (2)"],
                     names=("layer", "position"))
    assert len(rows) == 6
    assert rows[4] == {"layer index": 1, "layer": "block 1", "position index": 1, "position": "b (1)",
                       "exact": -0.5, "ran": True}
    assert read(rows_csv(rows))[0] == ["layer index", "layer", "position index", "position", "exact", "ran"]
    with pytest.raises(ValueError, match="exact has shape"):
        grid_rows({"exact": exact}, ["block 0"], ["a"])


def test_file_name_is_safe():
    assert file_name("The capital of France is", "patching exact/heads", "csv") == \
        "patching-exact-heads_the-capital-of-france-is.csv"
