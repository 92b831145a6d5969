"""Downloads: file names made from the prompt and the view, safe on every file system, and CSV text
of the tables the pages show (a list of dicts, or a grid of values in long form)."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence

import numpy as np

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so would run as a spreadsheet formula


def file_name(prompt: str, view: str, ext: str, max_len: int = 40) -> str:
    """e.g. ('The capital of France is', 'attention_L5H3', 'csv') -> 'attention_L5H3_the-capital-of-france-is.csv'."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:max_len].strip("-") or "prompt"
    view = re.sub(r"[^A-Za-z0-9_-]+", "-", view).strip("-") or "view"
    return f"{view}_{slug}.{ext.lstrip('.')}"


def _cell(value: object) -> object:
    """Text stays text in a spreadsheet (a token '=1+2' or '-' gets a leading '); numbers keep every
    digit numpy gives them (np.float32 -> float, so the CSV reads '0.25', not 'np.float32(0.25)')."""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) else value
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.generic):
        return value.item()
    return "" if value is None else value


def rows_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """A table's rows as CSV text: a header (the first row's keys unless `columns` is given), then
    one line per row. Empty rows give the header alone (or nothing when there are no columns)."""
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if columns:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def grid_rows(values: Mapping[str, np.ndarray], rows: Sequence[str], cols: Sequence[str],
              names: tuple[str, str] = ("row", "column")) -> list[dict]:
    """A grid in long form, one dict per cell, row-major: each axis as its index and its label, then
    one column per named (rows, cols) array (e.g. {"exact": ..., "estimate": ...})."""
    shape = (len(rows), len(cols))
    for name, array in values.items():
        if np.shape(array) != shape:
            raise ValueError(f"{name} has shape {np.shape(array)}, the labels {shape}")
    return [{f"{names[0]} index": r, names[0]: rows[r], f"{names[1]} index": c, names[1]: cols[c],
             **{name: _cell(array[r, c]) for name, array in values.items()}}
            for r in range(shape[0]) for c in range(shape[1])]
