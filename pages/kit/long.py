"""Long prompts: past LONG tokens a page reads heads a block at a time (head/rows/pooled) and shows a
window of positions, never every head's (T, T) pattern at once (1.5 GB at 1,024 tokens)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import streamlit as st

from model import Capture
from model.analyses.head_scores import head_stats
from pages.kit import captures, pickers, results
from viz.attention import LONG

STATS_TOKENS = LONG  # head statistics of a long prompt read its first STATS_TOKENS positions


def is_long(cap: Capture) -> bool:
    """Past LONG tokens views go blockwise and windowed; below, every view is drawn whole as always."""
    return cap.n_tokens > LONG


def window_stats(cap: Capture) -> dict[str, np.ndarray]:
    """Head statistics (model/analyses/head_scores.head_stats) of a long prompt over its first
    STATS_TOKENS positions: a causal head's first rows see only the first keys, so that square is the
    exact pattern of the prompt's start, read a layer at a time (never the whole (L, H, T, T); stacking
    every layer's square first cost more in fresh memory than the statistics themselves)."""
    source, n = cap.attention, STATS_TOKENS
    ids = cap.token_ids[:n]
    layers = [head_stats(SimpleNamespace(attention=source.layer_rows(layer, 0, n, keys=n)[None],  # type: ignore[arg-type]
                                         token_ids=ids)) for layer in range(cap.summary.n_layers)]
    return {name: np.concatenate([layer[name] for layer in layers]) for name in layers[0]}


def stats(lm, cap: Capture) -> dict[str, np.ndarray]:
    """Per-head numbers for a page, cached per capture: the whole prompt, or its start when long."""
    compute = (lambda: window_stats(cap)) if is_long(cap) else (lambda: head_stats(cap))
    return results.derived("head_stats", captures.current_key(lm), compute)


def stats_note(cap: Capture) -> str:
    """What the per-head numbers were read over, for a caption ('' when the whole prompt)."""
    if not is_long(cap):
        return ""
    return (f" This prompt has {cap.n_tokens:,} tokens: the head scores and the table are read over its first "
            f"{STATS_TOKENS} (every head's whole pattern would not fit in memory at once).")


def strip_window(cap: Capture, highlight: int | None, *, where=st, key: str = "strip_start") -> tuple[int, int]:
    """The token strip's positions [start, stop): all of them, or past LONG a window of LONG moved by a
    slider under `key`. It starts on the window holding `highlight`, and goes to it again when another
    position is chosen out of view (the slider alone may leave the highlight behind)."""
    T = cap.n_tokens
    if T <= LONG:
        return 0, T
    default = (highlight if highlight is not None else T - 1) - LONG // 2
    chosen_now = highlight is not None and st.session_state.get(key + "_at") != highlight
    st.session_state[key + "_at"] = highlight
    start = st.session_state.get(key)
    if chosen_now and isinstance(start, int) and not start <= highlight < start + LONG:
        st.session_state[key] = min(T - LONG, max(0, default))
    return window(T, LONG, key, "Tokens shown from", default,
                  help=f"{T:,} tokens: the strip shows {LONG} at a time.", where=where)


def window(n: int, size: int, key: str, label: str, default: int, *, help: str | None = None,
           where=st) -> tuple[int, int]:
    """Positions [start, start + size) of n, start on a slider whose value is re-bound every run: one past
    a shorter prompt's last window falls back to `default` (clipped to the windows there are)."""
    last = n - size
    pickers.bind(key, range(last + 1), min(last, max(0, default)))
    start = int(where.slider(label, 0, last, key=key, help=help))
    return start, start + size
