"""The live temperature bars: a browser component that gets one logits row and redraws the bars,
entropy and "all other tokens" at every slider step without a server round trip (softmax.mjs, the
same float64 math as model/analyses/sampling.py over the full vocabulary), then reports the chosen
temperature back to Python on release so the session, the link and the rest of the page follow.

Files: softmax.mjs (the math, also run by node in the tests), bars.js (the view), bars.css.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

_HERE = Path(__file__).parent
# One ES module: the math's named exports, then the view's default export that uses them.
_JS = (_HERE / "softmax.mjs").read_text() + "\n" + (_HERE / "bars.js").read_text()
_mount = st.components.v2.component("xray_temperature_bars", js=_JS, css=(_HERE / "bars.css").read_text())


def logits_payload(row: np.ndarray) -> str:
    """(V,) logits as base64 little-endian float32: 4 bytes a token (262 KB of text at 49,152 tokens),
    exact for the float32 logits the capture holds (the browser widens them to float64)."""
    row32 = np.asarray(row, dtype="<f4")
    if not np.array_equal(row32, row):
        raise ValueError("logits must be exactly representable in float32")
    return base64.b64encode(row32.tobytes()).decode("ascii")


def _report(key: str, state_key: str, limit: float, then: Callable[[], None] | None) -> None:
    """Callback: the browser's reported temperature -> st.session_state[state_key] (2 decimals)."""
    value = st.session_state[key].get("temperature")
    if isinstance(value, (int, float)) and 0 <= value <= limit:
        st.session_state[state_key] = round(float(value), 2)
        if then is not None:
            then()


def temperature_bars(
    row: np.ndarray, ids: np.ndarray, labels: list[str], *, temperature: float, top_k: int | None,
    top_p: float | None, key: str, state_key: str = "temperature", limit: float = 2.0, step: float = 0.05,
    on_report: Callable[[], None] | None = None,
) -> None:
    """Mount the slider + bars for logits `row` (V,); `ids` are top_tokens(row, N) and `labels` their
    visible texts (drawn as text, never HTML). A released slider writes st.session_state[state_key],
    then calls on_report (e.g. to refresh the shareable link)."""
    if len(labels) != len(ids):
        raise ValueError(f"{len(labels)} labels for {len(ids)} tokens")
    data = {
        "logits": logits_payload(row), "ids": [int(i) for i in ids], "labels": list(labels),
        "temperature": float(temperature), "top_k": int(top_k or 0), "top_p": 1.0 if top_p is None else float(top_p),
        "max": float(limit), "step": float(step),
    }
    _mount(key=key, data=data, on_temperature_change=lambda: _report(key, state_key, limit, on_report))
