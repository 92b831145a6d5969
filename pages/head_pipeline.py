"""Attention step by step: one head's raw scores, the causal mask, the softmax and the value
weighting, from the queries and keys the model really used. Widgets and layout only."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.head_pipeline import HeadPipeline, head_pipeline
from pages import common
from viz import head_pipeline as draw
from viz.labels import short

MAX_SHOWN = 64  # positions per heatmap; longer prompts pick a window


@st.cache_resource(show_spinner=False, max_entries=8)
def _pipeline(key: str, layer: int, _lm: LanguageModel, _cap: Capture) -> HeadPipeline:
    """One recording per (model, prompt, limit, layer): it holds every head of that layer."""
    return head_pipeline(_lm, _cap.token_ids, layer)


def _clamp(key: str, n: int, default: int = 0) -> None:
    if st.session_state.get(key) not in range(n):
        st.session_state[key] = default


def _controls(cap: Capture) -> tuple[int, int]:
    cfg = cap.config
    _clamp("layer", cfg.n_layers)
    _clamp("head", cfg.n_heads)
    cols = st.columns([3, 2])
    layer = cols[0].slider("Layer", 0, cfg.n_layers - 1, key="layer", persist_state="session")
    head = cols[1].selectbox("Head", list(range(cfg.n_heads)), key="head", persist_state="session",
                             format_func=lambda h: f"head {h} (key/value head {h // cfg.group_size})")
    return layer, head


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
            col.plotly_chart(draw.step_figure(pipe, head, cap.tokens, step, window), key=f"pipe_{step}")


def _one_query(pipe: HeadPipeline, head: int, cap: Capture) -> None:
    st.subheader("One query, key by key")
    _clamp("position", cap.n_tokens, cap.n_tokens - 1)
    q = st.selectbox("Query position", list(range(cap.n_tokens)), key="position", persist_state="session",
                     format_func=lambda p: f"{short(cap.tokens[p], 16)} ({p})")
    norms = pipe.value_norms(head)
    rows = [{"key": cap.tokens[k], "pos": k, "score": float(pipe.scores[head, q, k]),
             "masked": bool(pipe.masked[q, k]), "weight": float(pipe.pattern[head, q, k]),
             "|value|": float(norms[k]), "weight×|value|": float(pipe.pattern[head, q, k] * norms[k])}
            for k in range(cap.n_tokens)]
    st.dataframe(rows, hide_index=True, column_config={
        "weight": st.column_config.ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0)})


st.title("Attention step by step")
cap = common.current_capture()
lm = common.current_model()
if cap is not None and lm is not None:
    common.show_token_strip(cap)
    layer, head = _controls(cap)
    try:
        with st.spinner("Recording this layer's queries, keys and values…"):
            pipe = _pipeline(common.capture_key(common.model_name(), cap.prompt, common.token_limit()), layer, lm, cap)
    except XrayError as exc:
        st.info(str(exc))
    else:
        st.caption(draw.head_caption(pipe, head))
        _steps(pipe, head, cap, _window(cap))
        _one_query(pipe, head, cap)
common.explain(
    "How one head turns scores into a pattern",
    "Each token makes a **query** (what am I looking for?) and a **key** (what do I offer?). For one "
    "head, the score of query *i* on key *j* is the dot product of the two vectors, divided by the "
    "square root of their length (64 here) so that scores do not grow with the vector size.\n\n"
    "1. **Raw scores**: every pair, including keys that come *after* the query.\n"
    "2. **Causal mask**: a language model may not look ahead, so every future key gets minus "
    "infinity (grey cells).\n"
    "3. **Softmax**: each row becomes positive weights that add up to 1; minus infinity becomes 0.\n"
    "4. **Weight × value length**: a key with a big weight but a tiny **value** vector changes little; "
    "scaling each weight by the length of that key's value shows what really flows into the output.\n\n"
    "The queries and keys here are exactly those the model used, after its rotary position "
    "embedding. In this model several query heads share one key/value head (grouped-query "
    "attention): their scores differ only through their queries.",
)
