"""Ablation: switch attention heads off and watch the next-token prediction change. The ablated
pass is cached per (model, prompt, heads) in a small bounded cache shared by every session."""
from __future__ import annotations

import streamlit as st

from model import XrayError
from model.ablation import LogitsCache, ablated_logits, heads_key
from model.tokens import readable_tokens
from pages import common
from viz.ablation import (
    biggest_changes, change_rows, comparison_figure, head_effects, head_label, scan_figure, top_tokens_compared,
)

EXPLANATION = """
**Switching a head off.** Every attention head writes a small vector (64 numbers for the default
model) for each token; the layer's output projection mixes the heads' vectors and adds the result to
the residual stream. Switching a head off sets its vector to zero just before that projection, for
every token, so the head contributes nothing, while every other head and every MLP still runs.

If the prediction barely moves, the model did not rely on that head for this prompt (or other heads
do the same job). If it moves a lot, the head was carrying something the prediction needed: try the
heads that copy earlier text on the repeated-sequence example. The grey bars are the normal pass,
the red bars the pass with the chosen heads off, both over the whole vocabulary at temperature 1.
**KL divergence** sums up how far the whole distribution moved, in bits (0 = identical).
"""


@st.cache_resource(show_spinner=False)
def ablation_cache() -> LogitsCache:
    """Ablated logits, shared by sessions; at most 16 results / 256 MB."""
    return LogitsCache(max_entries=16, budget_bytes=256 * 2**20)


def _position(cap) -> int:
    """The shared position: the last token unless the user picked another."""
    if st.session_state.get("position") not in range(cap.n_tokens):
        st.session_state["position"] = cap.n_tokens - 1
    return st.selectbox("Predict the token after", list(range(cap.n_tokens)), key="position", persist_state="session",
                        format_func=lambda p: f"{p}: {cap.tokens[p]}")


def _heads(cap) -> list[tuple[int, int]]:
    """The heads to switch off, picked from every (layer, head) of the model."""
    L, H = cap.config.n_layers, cap.config.n_heads
    options = [(layer, head) for layer in range(L) for head in range(H)]
    kept = [h for h in st.session_state.get("abl_heads", []) if h in options]
    st.session_state["abl_heads"] = kept  # a model switch drops heads it does not have
    return st.multiselect(f"Heads to switch off ({L} layers × {H} heads)", options, key="abl_heads", persist_state="session",
                          format_func=lambda h: head_label(*h), placeholder="e.g. L3 H5")


def _prompt_key() -> str:
    return common.capture_key(common.model_name(), common.prompt(), common.token_limit())


def _ablated(lm, cap, heads):
    """(T, V) logits with the heads off, computed once per model, prompt and set of heads."""
    key = _prompt_key() + "\x1fheads\x1f" + heads_key(heads)
    with st.spinner("Running the model with those heads off…"):
        return ablation_cache().get_or_compute(key, lambda: ablated_logits(lm, cap.token_ids.tolist(), heads))


def _scan(lm, cap, pos: int) -> None:
    """Each head of one layer switched off alone: which of them this prediction leans on."""
    st.subheader("Which heads of a layer matter here?")
    cols = st.columns([1, 3])
    layer = cols[0].selectbox("Layer to scan", list(range(cap.config.n_layers)), key="abl_scan_layer", persist_state="session")
    if cols[0].button("Scan this layer", key="abl_scan"):
        st.session_state["abl_scan_done"] = (_prompt_key(), layer)
    if st.session_state.get("abl_scan_done") != (_prompt_key(), layer):
        cols[1].caption(f"Runs the model {cap.config.n_heads} times, once per head of the layer, and shows how far "
                        "each switch-off moves the prediction (KL divergence).")
        return
    bar = st.progress(0.0, text="Switching heads off one by one…")
    rows = []
    for h in range(cap.config.n_heads):
        rows.append(_ablated(lm, cap, [(layer, h)])[pos])  # (V,)
        bar.progress((h + 1) / cap.config.n_heads, text=f"{head_label(layer, h)} done")
    bar.empty()
    cols[1].plotly_chart(scan_figure(head_effects(cap.logits[pos], rows), layer), key="abl_scan_chart")


def _metrics(comp, before_top: float, after_top: float, changed: bool) -> None:
    cols = st.columns(3)
    cols[0].metric("KL divergence", f"{comp.kl_bits:.3f} bits", help="How far the whole distribution moved.")
    cols[1].metric("Probability of the original favourite", f"{after_top:.1%}", f"{after_top - before_top:+.1%}")
    cols[2].metric("Favourite changed", "yes" if changed else "no")


def _compare(lm, cap, pos: int, after, n: int) -> None:
    before_row, after_row = cap.logits[pos], after[pos]  # (V,), (V,)
    comp = top_tokens_compared(before_row, after_row, n)
    _metrics(comp, float(comp.before[0]), float(comp.after[0]), int(after_row.argmax()) != int(before_row.argmax()))
    st.plotly_chart(comparison_figure(comp, readable_tokens(lm.tokenizer, comp.ids)), key="abl_bars")
    moves = biggest_changes(before_row, after_row, n=10)
    st.subheader("The biggest changes")
    st.dataframe(change_rows(moves, readable_tokens(lm.tokenizer, moves.ids)), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("before", "after", "change")})


st.title("Ablation: switch heads off")
common.explain("What switching a head off means", EXPLANATION)
lm = common.current_model()
cap = common.current_capture()
if lm is None or cap is None:
    st.stop()
pos = _position(cap)
common.show_token_strip(cap, highlight=pos)
cols = st.columns([4, 1])
with cols[0]:
    heads = _heads(cap)
with cols[1]:
    n_bars = int(st.number_input("Bars", 3, 40, value=10, key="abl_n", persist_state="session"))
try:
    if heads:
        _compare(lm, cap, pos, _ablated(lm, cap, heads), n_bars)
    else:
        st.info("Choose one or more heads to switch off; the bars then compare the prediction before and after.")
    _scan(lm, cap, pos)
except XrayError as exc:
    st.warning(str(exc))
