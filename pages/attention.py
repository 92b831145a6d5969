"""The Attention page: every head at a glance, one head up close, one query's weights, two heads
compared, and a sortable table of every head. Widgets and layout only; math lives in model/ and viz/.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from model import Capture, LanguageModel
from model.analyses.head_scores import KIND_LABELS, induction_scores, js_divergence_bits, top_heads
from model.core.description import ModelFacts
from pages import kit
from pages.kit.plotly_chart import DOWNLOADS_ONLY, plotly_chart
from viz import attention as va
from viz import head_grid, head_table, model_text


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; how heads share keys and values is this model's."""
    return f"""
**What a head does.** In every block, each token makes three vectors from its current state: a
*query* ("what am I looking for?"), a *key* ("what do I offer?") and a *value* ("what I pass on if
chosen"). A head compares one token's query with every key by a dot product; these *scores* go
through a *softmax*, which turns them into positive weights that add up to 1 across a row. The
token then takes the weighted mix of the values. One row of the heatmap is one such mix.

**The causal mask.** A language model predicts the next token, so a token may only read itself and
tokens before it. Everything above the diagonal is forced to weight 0: we draw those cells grey.

**Many heads, many blocks.** Each block has several heads that look for different things in
parallel; their results are added back into the token's vector, and the next block starts from
that. {model_text.kv_sharing(facts)}

**What to try.**
- Load *A repeated sequence to copy*: heads marked **I** (induction) look, from the second copy
  of a word, at the word that *followed* its first copy: the stripe just off a second diagonal.
- Load *One word, two meanings* and pick the second "mole" in **From one token**: which heads
  look back at "spy", which at "garden"?
- Many heads park most of their weight on the first token (**F**, the "attention sink") when
  they have nothing better to do; early blocks have heads that read the previous token (**P**).
"""
VIEWS = ["One head", "From one token", "Compare two heads", "All heads (table)"]
VIEW_KEPT = "_attention_view_kept"  # the open tab, kept while another page runs
THRESHOLD = 0.5  # a badge needs a head-type score at least this high


def _induction(lm: LanguageModel) -> np.ndarray:
    """(L, H) induction scores: per model, not per prompt, so cached by model name."""
    with st.spinner("Measuring induction heads on a repeated random sequence (once per model)…"):
        return kit.derived("induction", kit.model_key(lm), lambda: induction_scores(lm))


def _select(layer: int, head: int) -> None:
    st.session_state["layer"], st.session_state["head"] = layer, head


def _on_grid_pick(points: list[dict]) -> None:
    """A click on the overview opens that head."""
    picked = head_grid.picked_head(points, st.session_state.get("_n_heads", 1))
    if picked is not None:
        _select(*picked)


def _on_table_pick(key: str) -> None:
    """Selecting a table row opens that head."""
    event = st.session_state.get(key)
    rows = event.selection.rows if event is not None else []
    table = st.session_state.get("_head_table_df")
    if rows and table is not None:
        _select(*head_table.row_head(table, rows[0]))


def _selectors(cap: Capture) -> tuple[int, int]:
    left, right, _ = st.columns([1, 1, 3])
    return kit.select_layer(cap, where=left), kit.select_head(cap, where=right)


def _overview(lm: LanguageModel, cap: Capture, scores: dict[str, np.ndarray], selected: tuple[int, int]) -> None:
    st.subheader("Every head at a glance")
    source, heads = cap.attention, cap.summary.n_layers * cap.summary.n_heads
    with st.spinner(f"Drawing all {heads} heads' patterns over {cap.n_tokens:,} tokens…"):  # past 0.5 s: a long prompt
        image = kit.derived("head_grid_png", kit.current_key(lm), lambda: head_grid.thumbnail_uri(source))
    fig = head_grid.grid_figure(source, scores, selected, cap.summary.group_size, THRESHOLD, labels=KIND_LABELS,
                                image_uri=image)
    plotly_chart(fig, key="head_grid", on_click=_on_grid_pick, config=DOWNLOADS_ONLY)
    st.caption("Blocks left to right, heads top to bottom; each thumbnail is one head's pattern with "
               "every row scaled to its own maximum. Click a head (or use the selectors) to open it. "
               "A letter in a corner marks a head whose head-type score reaches the threshold (legend under the "
               "grid; hover a head for all its scores). Induction is measured on a repeated random sequence, "
               "the other types on this prompt." + kit.long.stats_note(cap))


def _window(cap: Capture) -> tuple[int, int]:
    """The zoom window's first query and first key (default: the last WINDOW of each, the diagonal's end)."""
    last = cap.n_tokens - va.WINDOW
    left, right, _ = st.columns([1, 1, 2])
    starts = []
    for key, label, where in (("attention_q0", "Window: first query", left), ("attention_k0", "first key", right)):
        kit.bind(key, range(last + 1), last)
        starts.append(int(where.number_input(label, 0, last, key=key, step=8, persist_state="session")))
    return starts[0], starts[1]


def _long_head(cap: Capture, layer: int, head: int) -> None:
    """A long prompt's head: a pooled overview of the whole pattern and a window of exact values, both
    read through rows/pooled (never the (L, H, T, T) array)."""
    source = cap.attention
    reduce = st.radio("Overview pixel", ["mean", "max"], horizontal=True, key="attention_reduce",
                      help="Each pixel of the overview is a block of queries x keys: its mean weight, or its largest.")
    q0, k0 = _window(cap)
    q1, k1 = q0 + va.WINDOW, k0 + va.WINDOW
    pooled = source.pooled(layer, head, va.OVERVIEW_BINS, reduce)
    plotly_chart(va.overview_heatmap(pooled, cap.n_tokens, layer, head, (q0, q1, k0, k1), reduce), key="head_overview")
    plotly_chart(va.window_heatmap(source.rows(layer, head, q0, q1)[:, k0:k1], cap.tokens, (q0, k0), layer, head),
                 key="head_window")
    st.caption(f"{cap.n_tokens:,} tokens: too many to draw cell by cell. Top: the whole head, {va.OVERVIEW_BINS} × "
               f"{va.OVERVIEW_BINS} blocks (each the {reduce} of its weights). Below: the window in the red box, "
               "exact weights; move it with the inputs above. Grey: future tokens, hidden by the causal mask.")


def _one_head(cap: Capture, layer: int, head: int) -> None:
    if kit.is_long(cap):
        _long_head(cap, layer, head)
        return
    plotly_chart(va.head_heatmap(cap, layer, head), key="head_heatmap")
    st.caption("Rows: the token reading (query). Columns: the token being read (key). Each row adds up to 1. "
               "Grey: future tokens, hidden by the causal mask.")
    st.download_button("Download this head as CSV", data=lambda: va.attention_csv(cap, layer, head),
                       file_name=va.csv_name(cap, layer, head), mime="text/csv", on_click="ignore",
                       key="attention_csv_download")


@st.fragment
def _from_one_token(cap: Capture, layer: int, head: int) -> None:
    """Only this block redraws when the query token changes."""
    column, _ = st.columns([2, 3])
    position = kit.select_position(cap, "Query token", where=column)
    kit.token_strip(cap, highlight=position)
    plotly_chart(va.query_bars(cap, layer, head, position), key="query_bars")


def _compare(cap: Capture, layer: int, head: int, induction: np.ndarray) -> None:
    best_layer, best_head, _ = top_heads(induction, 1)[0]
    kit.bind("cmp_layer", range(cap.summary.n_layers), best_layer)
    kit.bind("cmp_head", range(cap.summary.n_heads), best_head)
    left, right, metric = st.columns([1, 1, 2])
    other = (int(left.selectbox("Compare with block", range(cap.summary.n_layers), key="cmp_layer",
                                persist_state="session")),
             int(right.selectbox("and head", range(cap.summary.n_heads), key="cmp_head", persist_state="session")))
    if kit.is_long(cap):
        _compare_window(cap, (layer, head), other, metric)
        return
    source = cap.attention
    divergence = js_divergence_bits(source.head(layer, head), source.head(*other))
    metric.metric("Difference (Jensen–Shannon)", f"{divergence:.3f} bits")
    plotly_chart(va.compare_heads(cap, (layer, head), other), key="compare_heads")
    st.caption("Both heads use the same 0..1 colour scale. Right: first minus second, red where the first "
               "head reads more, blue where the second does. The number is the Jensen–Shannon divergence "
               "between the two heads' rows, averaged over query tokens: 0 = identical, 1 bit = no overlap.")


def _compare_window(cap: Capture, first: tuple[int, int], second: tuple[int, int], metric) -> None:
    """A long prompt: the divergence over the One head view's window of query rows, read by rows()."""
    source = cap.attention
    q0 = int(st.session_state.get("attention_q0", cap.n_tokens - va.WINDOW))
    q0 = min(max(0, q0), cap.n_tokens - va.WINDOW)
    rows = [source.rows(*h, q0, q0 + va.WINDOW) for h in (first, second)]  # (WINDOW, T) each
    metric.metric("Difference (Jensen–Shannon)", f"{js_divergence_bits(*rows):.3f} bits")
    st.caption(f"{cap.n_tokens:,} tokens: the divergence is averaged over query rows {q0}–{q0 + va.WINDOW - 1} "
               "(the One head view's window), and the side-by-side heatmaps are drawn for prompts of up to "
               f"{va.LONG} tokens only: use the One head view's overview and window for each head.")


def _table(cap: Capture, stats: dict[str, np.ndarray], induction: np.ndarray, selected: tuple[int, int]) -> None:
    """Every head's statistics; a row's tick belongs to the head it opened: another head chosen elsewhere
    (the selectors, the grid) draws a fresh table, no row ticked (a stale tick made the next click clear it)."""
    table = head_table.head_table(stats, cap.summary.group_size, induction)
    st.session_state["_head_table_df"] = table
    st.caption(head_table.gqa_caption(cap.summary.n_heads, cap.summary.n_kv_heads) + kit.long.stats_note(cap))
    key = "head_table_{}_{}".format(*selected)
    st.dataframe(table, key=key, on_select=partial(_on_table_pick, key), selection_mode="single-row",
                 hide_index=True, width="content", height=420, column_config=head_table.column_config(table))
    st.caption("**P, F, S, D, I scores** (the grid's badges) are chance-corrected: 1 = all the weight on that "
               "pattern, 0 = no more than a head spreading its weight evenly over the tokens it may read, "
               "below 0 = less than that: the head avoids the pattern (a self score of −0.5 means it reads its "
               "own token much less than an even spread would). **Entropy**: how spread out a row is (0 bits "
               "= all weight on one token), averaged over query tokens after the first. **→ columns**: average "
               "weight (0..1) on that token. Hover a column title for its meaning, click it to sort; click a "
               "row to open the head.")


def main() -> None:
    lm, cap = kit.page("Attention")
    if cap is None or lm is None:
        return
    kit.explain("What am I looking at?", explanation(lm.facts))
    st.session_state["_n_heads"] = cap.summary.n_heads
    induction = _induction(lm)
    stats = kit.head_stats(lm, cap)
    scores = {k.removeprefix("score_"): v for k, v in stats.items() if k.startswith("score_")}
    scores["induction"] = induction
    layer, head = _selectors(cap)
    _overview(lm, cap, scores, (layer, head))
    st.subheader(f"Block {layer} · head {head}")
    state = st.session_state
    if "attention_view" not in state and VIEW_KEPT in state:  # Streamlit drops a widget's key on another page
        state["attention_view"] = state[VIEW_KEPT]
    tabs = st.tabs(VIEWS, key="attention_view", on_change="rerun")  # only the open tab is built and sent
    state[VIEW_KEPT] = state.get("attention_view")
    views = (lambda: _one_head(cap, layer, head), lambda: _from_one_token(cap, layer, head),
             lambda: _compare(cap, layer, head, induction), lambda: _table(cap, stats, induction, (layer, head)))
    for tab, draw in zip(tabs, views):
        if tab.open:
            with tab:
                draw()

main()
