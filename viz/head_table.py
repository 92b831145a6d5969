"""Every head as one row of numbers: entropy, where its weight goes, head-type scores, kv group.
Pure: (L, H) arrays in, a pandas DataFrame out (the page shows it sortable and selectable).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = {  # head_stats key -> column title; scores first, so the badges' columns are in view
    "score_previous": "previous-token score",
    "score_first": "first-token score",
    "score_self": "self score",
    "score_duplicate": "duplicate-token score",
    "score_induction": "induction score (this prompt)",
    "entropy_bits": "entropy (bits)",
    "to_previous": "→ previous token",
    "to_first": "→ first token",
    "to_self": "→ itself",
}
INDUCTION_REPEATED = "induction score (repeated sequence)"
ID_PX, COLUMN_PX = 48, 64  # 3 x 48 + 10 x 64 = 784 px: the whole table fits beside the sidebar at 1400 px
SCORE_HELP = ("Chance-corrected: 1 = all the weight on this pattern, 0 = no more than a head spreading its "
              "weight evenly would put there, below 0 = less than that (the head avoids it).")
SHOWN = {  # column title -> (short label, hover help): short labels keep every column on screen
    "layer": ("block", "The block (layer), from 0."),
    "head": ("head", "The query head in its block, from 0."),
    "kv group": ("kv", "The key/value head this query head shares (grouped-query attention)."),
    "previous-token score": ("P prev", "Reads the token just before. " + SCORE_HELP),
    "first-token score": ("F first", "Parks its weight on the first token (attention sink). " + SCORE_HELP),
    "self score": ("S self", "Reads its own token. " + SCORE_HELP),
    "duplicate-token score": ("D dup", "Reads earlier copies of the same token. " + SCORE_HELP),
    INDUCTION_REPEATED: ("I ind.", "Induction (copying what followed an earlier copy), measured on a "
                         "repeated random sequence. " + SCORE_HELP),
    "induction score (this prompt)": ("I here", "Induction measured on this prompt (needs repeats). " + SCORE_HELP),
    "entropy (bits)": ("entropy", "How spread out a row is, in bits (0 = all weight on one token), averaged "
                       "over query tokens after the first."),
    "→ previous token": ("→ prev", "Average weight (0..1) on the previous token."),
    "→ first token": ("→ first", "Average weight (0..1) on the first token."),
    "→ itself": ("→ self", "Average weight (0..1) on its own token."),
}


def head_table(
    stats: dict[str, np.ndarray],
    group_size: int,
    induction: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per head, layer-major, so row i is layer i // H, head i % H."""
    L, H = stats["entropy_bits"].shape
    layers, heads = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")  # (L, H) each
    data: dict[str, np.ndarray] = {
        "layer": layers.ravel(),
        "head": heads.ravel(),
        "kv group": heads.ravel() // max(1, group_size),
    }
    if induction is not None:  # next to the badge scores: the one the I badge uses
        data[INDUCTION_REPEATED] = np.round(induction.ravel().astype(np.float64), 3)
    for key, title in COLUMNS.items():
        if key in stats:
            data[title] = np.round(stats[key].ravel().astype(np.float64), 3)
    order = [t for t in ["layer", "head", "kv group", *list(COLUMNS.values())[:4], INDUCTION_REPEATED,
                         *list(COLUMNS.values())[4:]] if t in data]
    return pd.DataFrame({t: data[t] for t in order})


def column_config(table: pd.DataFrame) -> dict[str, dict]:
    """Short labels, narrow widths and a hover explanation per column, so the whole table fits a
    wide page (st.dataframe's column_config, as plain dicts)."""
    return {title: {"label": SHOWN[title][0], "help": SHOWN[title][1],
                    "width": ID_PX if title in ("layer", "head", "kv group") else COLUMN_PX}
            for title in table.columns if title in SHOWN}


def row_head(table: pd.DataFrame, row: int) -> tuple[int, int]:
    """(layer, head) of a selected table row (positional, as st.dataframe reports it)."""
    picked = table.iloc[row]
    return int(picked["layer"]), int(picked["head"])


def gqa_caption(n_heads: int, n_kv_heads: int) -> str:
    """How query heads share key/value heads, in one sentence."""
    if n_kv_heads >= n_heads:
        return f"{n_heads} query heads, each with its own keys and values."
    group = max(1, n_heads // max(1, n_kv_heads))
    return (f"{n_heads} query heads share {n_kv_heads} key/value heads (grouped-query attention): "
            f"heads in the same kv group ({group} each) read the same keys and values, so their patterns "
            "differ only through their queries.")
