"""Attention step by step: one head's raw scores, the causal mask, the softmax and the value
weighting, from the queries and keys the model really used. Widgets and layout only."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.head_pipeline import HeadPipeline, head_pipeline
from model.core.description import ModelFacts
from pages import kit
from pages.kit.plotly_chart import plotly_chart
from viz import head_pipeline as draw
from viz import model_text

MAX_SHOWN = 64  # positions per heatmap; longer prompts pick a window


def _pipeline(lm: LanguageModel, cap: Capture, layer: int) -> HeadPipeline:
    """One recording per (model, prompt, limit, block): it holds every head of that block."""
    return kit.derived("pipeline", kit.cache_key(kit.current_key(lm), layer), lambda: head_pipeline(lm, cap.token_ids, layer))


def _controls(cap: Capture) -> tuple[int, int]:
    cols = st.columns([3, 2])
    return kit.select_layer(cap, slider=True, where=cols[0]), kit.select_head(cap, where=cols[1])


def _window(cap: Capture) -> tuple[int, int]:
    """All positions, or a user-chosen window of at most MAX_SHOWN for long prompts."""
    T = cap.n_tokens
    if T <= MAX_SHOWN:
        return 0, T
    start = st.slider("First position shown", 0, T - MAX_SHOWN, T - MAX_SHOWN, key="pipe_window",
                      help=f"{T} tokens: the heatmaps show {MAX_SHOWN} positions at a time. Keys before the "
                      "window still count in the softmax; they are just not drawn.")
    return start, start + MAX_SHOWN


def _steps(pipe: HeadPipeline, head: int, cap: Capture, window: tuple[int, int]) -> None:
    steps = list(draw.STEPS)
    for row in range(2):
        cols = st.columns(2)
        for col, step in zip(cols, steps[2 * row: 2 * row + 2]):
            with col:
                plotly_chart(draw.step_figure(pipe, head, cap.tokens, step, window), key=f"pipe_{step}")


def _one_query(pipe: HeadPipeline, head: int, cap: Capture) -> None:
    st.subheader("One query, key by key")
    q = kit.select_position(cap, "Query position")
    norms = pipe.value_norms(head)
    score, weight = pipe.score_rows(head, q, q + 1)[0], pipe.pattern_rows(head, q, q + 1)[0]  # (T,) each
    rows = [{"key": cap.tokens[k], "pos": k, "score": float(score[k]), "masked": bool(pipe.masked[q, k]),
             "weight": float(weight[k]), "|value|": float(norms[k]), "weight×|value|": float(weight[k] * norms[k])}
            for k in range(cap.n_tokens)]
    st.dataframe(rows, hide_index=True, column_config={
        "weight": st.column_config.ProgressColumn(format=kit.PROBABILITY, min_value=0.0, max_value=1.0)})
    note = draw.sink_row_note(pipe, head, q)
    if note:
        st.caption(note)


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; head width, positions and key/value sharing are this model's."""
    return (
        "Each token makes a **query** (what am I looking for?) and a **key** (what do I offer?). For one "
        "head, the score of query *i* on key *j* is the dot product of the two vectors, divided by the "
        f"square root of their length ({facts.shape.head_dim} here) so that scores do not grow with the vector size.\n\n"
        "1. **Raw scores**: every pair, including keys that come *after* the query.\n"
        "2. **Causal mask**: a language model may not look ahead, so every future key gets minus "
        "infinity (grey cells).\n"
        "3. **Softmax**: each row becomes positive weights that add up to 1; minus infinity becomes 0 "
        "(a model with learned attention sinks keeps a share for its sink: the caption under the figure says how much).\n"
        "4. **Weight × value length**: a key with a big weight but a tiny **value** vector changes little; "
        "scaling each weight by the length of that key's value shows what really flows into the output.\n\n"
        f"{model_text.positions_in_attention(facts)} {model_text.kv_sharing(facts)}"
    )


lm, cap = kit.page("Attention step by step")
if cap is not None and lm is not None:
    kit.token_strip(cap, highlight=kit.position_of(cap))
    layer, head = _controls(cap)
    try:
        with st.spinner("Recording this block's queries, keys and values…"):
            pipe = _pipeline(lm, cap, layer)
    except XrayError as exc:
        st.info(str(exc))
    else:
        st.caption(draw.head_caption(pipe, head))
        computed = draw.weights_caption(pipe)
        if computed:
            st.caption(computed)
        _steps(pipe, head, cap, _window(cap))
        sink = draw.sink_caption(pipe, head)
        if sink:
            st.caption(sink)
        _one_query(pipe, head, cap)
if lm is not None:
    kit.explain("How one head turns scores into a pattern", explanation(lm.facts))
