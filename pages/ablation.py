"""Ablation: switch attention heads off (zero, their mean, or resampled from another prompt; at every
position or chosen ones) and watch the next-token prediction change. The ablated pass is cached per
(model, prompt, heads, ablation) in the kit's bounded cache shared by every session."""
from __future__ import annotations

import streamlit as st

from model import PromptError, XrayError
from model.analyses.ablation import Ablation, Values, ablated_logits, heads_key, replacement_values, source_ids
from model.core.description import ModelFacts
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit.contrast import Contrast
from pages.kit.plotly_chart import plotly_chart
from viz import model_text
from viz.ablation import (
    biggest_changes,
    change_rows,
    comparison_figure,
    head_effects,
    head_label,
    metric_changes,
    scan_pair_figure,
    scan_rows,
    top_tokens_compared,
)
from viz.export import file_name, rows_csv
from viz.labels import percent, points
from viz.token_strip import token_strip_html

HOWS = {"zero": "zero", "mean": "its mean over the prompt", "resample": "resample from another prompt"}
WHERE = {"all": "every position", "chosen": "chosen positions"}
OFF_NAMES = {"zero": "chosen heads off", "mean": "chosen heads at their mean", "resample": "chosen heads resampled"}


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; the head width is this model's."""
    return f"""
**Switching a head off.** Every attention head writes a small vector ({model_text.head_width(facts)})
for each token; the attention's output projection mixes the heads' vectors and adds the result to
the residual stream. Switching a head off sets its vector to zero just before that projection, for
every token, so the head contributes nothing, while every other head and every MLP still runs.

If the prediction barely moves, the model did not rely on that head for this prompt (or other heads
do the same job). If it moves a lot, the head was carrying something the prediction needed: try the
heads that copy earlier text on the repeated-sequence example. The grey bars are the normal pass,
the red bars the pass with the chosen heads off, both over the whole vocabulary at temperature 1.
**KL divergence** sums up how far the whole distribution moved, in bits (0 = identical).

**Other ways to switch a head off.** Zero is the bluntest: a head's output is rarely near zero, so
the next layers see something they never saw. *Mean* puts in the head's average output over this
prompt's positions (from the normal pass): the head still adds what it always adds, only what
depends on the token is gone. *Resample* puts in the head's output from a run of another prompt of
the same number of tokens, position by position: the head now says what it would about that prompt
(with the IOI example, another pair of names). *Chosen positions* switches the head off only at the
tokens you pick; positions before the first one cannot change, since attention looks only back.
"""


def _heads(cap) -> list[tuple[int, int]]:
    """The heads to switch off, picked from every (layer, head) of the model."""
    L, H = cap.summary.n_layers, cap.summary.n_heads
    options = [(layer, head) for layer in range(L) for head in range(H)]
    kept = [h for h in st.session_state.get("abl_heads", []) if h in options]
    st.session_state["abl_heads"] = kept  # a model switch drops heads it does not have
    return st.multiselect(f"Heads to switch off ({L} blocks × {H} heads)", options, key="abl_heads",
                          persist_state="session", format_func=lambda h: head_label(*h), placeholder="e.g. L3 H5",
                          select_all=False, wrap=True)  # Enter on "L23 H" picks one head; every chip shows


def _positions(cap) -> tuple[int, ...]:
    """The positions to ablate at, labelled by token and index (labels drawn now, never read back)."""
    options = list(range(cap.n_tokens))
    kept = [p for p in st.session_state.get("abl_positions", []) if p in options]
    st.session_state["abl_positions"] = kept  # another prompt drops positions it does not have
    return tuple(sorted(st.multiselect("Positions", options, key="abl_positions", persist_state="session",
                                       format_func=lambda p: kit.position_label(cap, p), placeholder="pick tokens")))


def _source(lm, cap) -> tuple[int, ...]:
    """The resampling prompt's ids, its tokens shown; a PromptError says why it cannot be used."""
    text = st.text_input(f"Prompt to resample from ({cap.n_tokens} tokens, like this one)", key="abl_source",
                         persist_state="session", placeholder="e.g. the same sentence with other names")
    if not text:
        raise PromptError(f"Type a prompt of {cap.n_tokens} tokens to resample the heads' outputs from.")
    chat = kit.chat_on(lm)  # wrapped like the prompt, so position i pairs with position i
    ids = lm.encode(text, kit.token_limit(), chat=chat)
    st.html(token_strip_html(readable_tokens(lm.tokenizer, ids), ids))
    return source_ids(lm, text, cap.n_tokens, kit.token_limit(), chat=chat)


def _ablation(lm, cap) -> Ablation | None:
    """How and where the chosen heads are switched off (zero at every position, as before, by
    default); None until chosen positions are picked."""
    cols = st.columns(2)
    how = kit.picker("How to switch a head off", HOWS, key="abl_how", default="zero", where=cols[0], radio=True,
                     horizontal=True, persist_state="session",
                     help="Zero: the head adds nothing. Mean: its average output over this prompt. Resample: its "
                          "output on another prompt, position by position.")
    where = kit.picker("Where", WHERE, key="abl_where", default="all", where=cols[1], radio=True, horizontal=True,
                       persist_state="session")
    positions = _positions(cap) if where == "chosen" else None
    source = _source(lm, cap) if how == "resample" else None
    if positions == ():
        st.info("Choose one or more positions to switch the heads off at.")
        return None
    return Ablation(how, positions, source)


def _values(lm, cap, ablation: Ablation, layers: set[int]) -> Values:
    """What replaces the heads' outputs in these layers, recorded once per prompt, way and source
    (the positions do not change it): one recording serves a whole block scan."""
    if ablation.how == "zero":
        return {}
    recorded = Ablation(ablation.how, None, ablation.source)
    key = kit.cache_key(kit.current_key(lm), recorded.key(), ",".join(map(str, sorted(layers))))
    return kit.derived("ablation_values", key, lambda: replacement_values(lm, cap.token_ids.tolist(), recorded, layers))


def _ablated(lm, cap, heads, ablation: Ablation):
    """The ablated pass's Predictions (any position's logits), once per model, prompt, set of heads and ablation."""
    key = kit.cache_key(kit.current_key(lm), heads_key(heads), *([ablation.key()] if ablation.key() else []))
    with st.spinner("Running the model with those heads off…"):
        return kit.derived("ablation", key, lambda: ablated_logits(
            lm, cap.token_ids.tolist(), heads, ablation, _values(lm, cap, ablation, {layer for layer, _ in heads})))


def _scan(lm, cap, pos: int, choice: Contrast, ablation: Ablation) -> None:
    """Each head of one block switched off alone: which of them this prediction leans on (KL), and
    which way each moves the answer (the change of logit(A) − logit(B), or of logit(A))."""
    st.subheader("Which heads of a block matter here?")
    cols = st.columns([1, 3])
    layer = cols[0].selectbox("Block to scan", list(range(cap.summary.n_layers)), key="abl_scan_layer",
                              persist_state="session")
    if cols[0].button("Scan this block", key="abl_scan"):
        st.session_state["abl_scan_done"] = (kit.current_key(lm), layer)
    if st.session_state.get("abl_scan_done") != (kit.current_key(lm), layer):
        seconds = max(1, round(cap.summary.n_heads * cap.pass_seconds))
        cols[1].caption(f"Runs the model {cap.summary.n_heads} times (about {seconds}"
                        " s here, a pass as long as this prompt's capture), once per head of the block, and shows how "
                        f"far each switch-off moves the prediction (KL divergence) and how it moves {choice.metric}.")
        return
    bar = st.progress(0.0, text="Switching heads off one by one…")
    rows = []
    for h in range(cap.summary.n_heads):
        rows.append(lm.logits_of(_ablated(lm, cap, [(layer, h)], ablation), pos))  # (V,)
        bar.progress((h + 1) / cap.summary.n_heads, text=f"{head_label(layer, h)} done")
    bar.empty()
    before = lm.logits_at(cap, pos)  # (V,)
    kl = head_effects(before, rows)  # (H,)
    moved = metric_changes(before, rows, choice.a, choice.b)  # (H,)
    table = scan_rows(layer, kl, moved, choice.metric)
    with cols[1]:
        plotly_chart(scan_pair_figure(kl, moved, layer, choice.metric), key="abl_scan_chart")
        st.dataframe(table, hide_index=True, column_order=[c for c in table[0] if c not in ("block", "head index")],
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in list(table[0])[3:]})
        _download("Download the scan (CSV)", rows_csv(table), f"ablation_scan_L{layer}_pos{pos}", cap.prompt,
                  "abl_scan_csv")


def _metrics(comp, before_top: float, after_top: float, changed: bool) -> None:
    cols = st.columns(3)
    cols[0].metric("KL divergence", f"{comp.kl_bits:.3f} bits", help="How far the whole distribution moved.")
    cols[1].metric("Probability of the original favourite", percent(after_top), points(after_top - before_top),
                   help="The change is in percentage points (pp): 50% to 45% is −5 pp.")
    cols[2].metric("Favourite changed", "yes" if changed else "no")


def _compare(lm, cap, pos: int, after, n: int, choice: Contrast, ablation: Ablation) -> None:
    before_row, after_row = lm.logits_at(cap, pos), lm.logits_of(after, pos)  # (V,), (V,)
    comp = top_tokens_compared(before_row, after_row, n)
    _metrics(comp, float(comp.before[0]), float(comp.after[0]), int(after_row.argmax()) != int(before_row.argmax()))
    st.metric(choice.metric, f"{choice.of(after_row):+.3f}", f"{choice.of(after_row) - choice.of(before_row):+.3f}",
              help="With the chosen heads off; the change is against the normal pass.")
    off = OFF_NAMES[ablation.how] + ("" if ablation.positions is None else " at chosen positions")
    plotly_chart(comparison_figure(comp, readable_tokens(lm.tokenizer, comp.ids), names=("all heads on", off)),
                 key="abl_bars")
    moves = biggest_changes(before_row, after_row, n=10)
    st.subheader("The biggest changes")
    rows = change_rows(moves, readable_tokens(lm.tokenizer, moves.ids))
    st.dataframe(rows, hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format=kit.PROBABILITY) for c in ("before", "after", "change")})
    _download("Download the biggest changes (CSV)", rows_csv(rows), f"ablation_changes_pos{pos}", cap.prompt,
              "abl_changes_csv")


def _download(label: str, text: str, kind: str, prompt: str, key: str) -> None:
    """A CSV download; the click does not rerun the page (on_click="ignore")."""
    st.download_button(label, text, file_name=file_name(prompt, kind, "csv"), mime="text/csv", key=key,
                       on_click="ignore")


lm, cap = kit.page("Ablation: switch heads off")
if lm is not None:
    kit.explain("What switching a head off means", explanation(lm.facts))
if lm is None or cap is None:
    kit.stop()
pos = kit.select_position(cap, "Predict the token after")
kit.token_strip(cap, highlight=pos)
choice = kit.contrast_token(lm, cap, pos)
cols = st.columns([4, 1])
with cols[0]:
    heads = _heads(cap)
with cols[1]:
    n_bars = int(st.number_input("Bars", 3, 40, value=10, key="abl_n", persist_state="session"))
try:
    ablation = _ablation(lm, cap)
    if ablation is None:
        kit.stop()
    if heads:
        _compare(lm, cap, pos, _ablated(lm, cap, heads, ablation), n_bars, choice, ablation)
    else:
        st.info("Choose one or more heads to switch off; the bars then compare the prediction before and after.")
    _scan(lm, cap, pos, choice, ablation)
except XrayError as exc:
    st.warning(str(exc))
