"""Every head as one row of numbers: entropy, where its weight goes, head-type scores, kv group.
Pure: (L, H) arrays in, a pandas DataFrame out (the page shows it sortable and selectable).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = {  # head_stats key -> column title
    "entropy_bits": "entropy (bits)",
    "to_previous": "→ previous token",
    "to_first": "→ first token",
    "to_self": "→ itself",
    "score_previous": "previous-token score",
    "score_first": "first-token score",
    "score_self": "self score",
    "score_duplicate": "duplicate-token score",
    "score_induction": "induction score (this prompt)",
}
INDUCTION_REPEATED = "induction score (repeated sequence)"


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
    for key, title in COLUMNS.items():
        if key in stats:
            data[title] = np.round(stats[key].ravel().astype(np.float64), 3)
    if induction is not None:
        data[INDUCTION_REPEATED] = np.round(induction.ravel().astype(np.float64), 3)
    return pd.DataFrame(data)


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
