"""Weights at a glance, as Start here and the lesson show it: the loaded model's parameters by the kind
of matrix they sit in (counted once per model), a bar chart and a table."""
from __future__ import annotations

import streamlit as st

from model import LanguageModel
from model.analyses.weights import WeightTally, model_weights
from pages import kit
from pages.kit.plotly_chart import plotly_chart
from viz.weights import tally_figure, tally_rows

# Counts a chart must not print, by chart key: lesson step 2 asks how many numbers the embedding holds.
ASKED: dict[str, tuple[str, ...]] = {"lesson_weights": ("embedding",)}


def weights(lm: LanguageModel) -> WeightTally:
    """The model's parameters by kind, counted once per model."""
    return kit.derived("weights", kit.model_key(lm), lambda: model_weights(lm))


def show(lm: LanguageModel, key: str, hidden: tuple[str, ...] | None = None) -> WeightTally:
    """The chart and the table; `key` names the chart (one per page). `hidden`: kinds whose count is left
    out, so a task can ask for it (default: ASKED for this key, none elsewhere)."""
    tally = weights(lm)
    hidden = ASKED.get(key, ()) if hidden is None else hidden
    plotly_chart(tally_figure(tally, hidden=hidden), key=key)
    config = {"numbers": st.column_config.NumberColumn(format="localized"),
              "share": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)}
    st.dataframe(tally_rows(tally, hidden), hide_index=True, column_config={} if hidden else config)
    return tally
