"""Information flow: which routes through the heads, MLPs and residual stream fed one prediction
(Ferrando & Voita 2024, as LLM Transparency Tool computes it), and which head on each edge into the
prediction writes logit(A) − logit(B). Widgets and layout only: the edge weights and readings come from
model/analyses/flow.py, the pruning from model/analyses/flow_graph.py, the drawing and the tables from viz/flow.py."""
from __future__ import annotations

import time

import streamlit as st

from model import XrayError
from model.analyses.flow import flow_graph, metric_direction
from model.analyses.flow_graph import DEFAULT_THRESHOLD, EdgeReading, FlowGraph, FlowPaths, flow_paths, read_edges
from model.analyses.sampling import probabilities
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.contrast import Contrast
from pages.kit.plotly_chart import DOWNLOADS_ONLY, plotly_chart
from viz import flow as draw
from viz.attention import LONG
from viz.export import file_name, rows_csv
from viz.labels import percent, short

THRESHOLDS = (0.01, 0.5)  # the threshold slider's range, and what a link may ask for
PROGRESS_AFTER_S = 0.3  # a quicker pruning shows no bar (it would only flicker)
# The graph and its pruning against one whole pass over the same tokens (default model, 2-core machine,
# 512 to 2,000 tokens: 1.3x to 2.4x): a share that grows with the length, as the graph weighs every pair.
PASSES_FIXED, PASSES_PER_TOKEN = 0.93, 7.3e-4

EXPLANATION = """
**Every state of the stream is a sum.** After a block's attention, the vector at a position is what
came in, plus one piece per head and per earlier token: the head's attention weight on that token
times the token's value vector, sent through the head's slice of the output projection. After the
MLP it is that vector plus the MLP's output. The graph asks, for each of these sums: which pieces
made it what it is?

**How a piece is weighed.** Take the sum *y* and one of its pieces *z*. If *z* alone already lands
close to *y*, it mattered; if it points elsewhere, it did not. Closeness is measured with the L1
distance (the sum of absolute differences, coordinate by coordinate): the piece scores
‖y‖₁ − ‖y − z‖₁, how much nearer to *y* it gets than the zero vector is. A score below zero counts as
(almost) nothing: it is floored at 0.00001. The scores of all the pieces of one sum are then divided
by their total, so the weights of the edges into every state add up to 1. This is the
"proportion" of Ferrando & Voita (2024, *Information flow routes*), in the form LLM Transparency Tool
uses. The output projection's bias belongs to no token and no head: it stays inside the sum but gets
no edge.

**Pruning.** An edge is kept when its weight is above the threshold (an attention edge between two
tokens weighs all its heads together), and only if it lies on a route down from the chosen
prediction: the graph answers "what fed this prediction?". Raise the threshold for the main routes
only; lower it to see more. The method needs one extra pass of the model, about 100 times cheaper
than patching every component.

**Reading it.** Tokens run left to right; the embedding is at the top and every block adds two rows
below it (after its attention, after its MLP), as in every figure of the app, down to the prediction
(the red star). Orange lines are attention heads moving information between tokens, purple bows are
MLPs, grey lines are the residual stream carrying a token's own vector down. Wider = larger share.
Hover an orange dot to see which heads carry the edge; click it to open its largest head on the
Attention page.

**Which head writes "A and not B"?** The weights say how much a piece *looks like* the state it
joins, not what it does to the prediction. So the edges into the predicted position are also read
through the tokens picked below: each head's piece, dotted with the unembedding row of A minus that
of B (through the final norm, its divisor held fixed, as on the Attribution page), gives that piece's
direct effect on logit(A) − logit(B). This reading adds up: an edge's heads sum to the edge, and a
block's edges plus its output bias to the block's attention bar on Attribution. The head named on
each edge is the one with the largest part in the edge's own direction. The two measures can
disagree: a head that pushes B *down* (reading the rival token and writing "not that one") can
write much of the difference through a piece that looks little like the state, and its edge is
pruned from the graph; the second table lists the strongest edges whether the graph keeps them or not.
"""


def _on_pick(points: list[dict]) -> None:
    """A click on an attention edge's dot: remember its head; the page opens it below."""
    picked = draw.picked_head(points)
    if picked is not None:
        st.session_state["_flow_open"] = picked


def _open_picked_head() -> None:
    """Open the clicked head on the Attention page (the shared layer/head carry it there)."""
    picked = st.session_state.pop("_flow_open", None)
    if picked is not None:
        st.session_state["layer"], st.session_state["head"] = picked
        kit.switch_page("pages/attention.py")


def _prediction(lm, cap, position: int) -> str:
    """The model's top next token at this position, as text with its probability (a long token shortened:
    the metric cuts what does not fit, the probability first)."""
    p = probabilities(lm.logits_at(cap, position), 1.0)
    top = int(p.argmax())
    return f"{short(readable_tokens(lm.tokenizer, [top])[0], 14)} ({percent(float(p[top]))})"


def _late_bar(text: str):
    """A progress callback that shows a bar only once the work has taken PROGRESS_AFTER_S (a short
    job would only flash one), and the slot to empty afterwards. `text` is formatted with `done`."""
    slot, started = st.empty(), time.perf_counter()

    def heard(done: float) -> None:
        if time.perf_counter() - started > PROGRESS_AFTER_S:
            slot.progress(done, text=text.format(done=done))
    return heard, slot


def _graph(lm, cap):
    """The graph, built once per capture (or prefix of it): the checks that every block splits, the MLP edges."""
    def compute():
        heard, slot = _late_bar("Checking that every block splits into its parts: {done:.0%}")
        graph = flow_graph(lm, cap, heard)
        slot.empty()
        return graph
    return kit.derived("flow", kit.cache_key(kit.current_key(lm), cap.n_tokens), compute)


def _reading(lm, cap, graph: FlowGraph, position: int, choice: Contrast) -> EdgeReading | None:
    """The edges into the prediction read through the chosen metric; None (with why) where the logits
    are not a linear readout of the stream (model/analyses/attribution.py refuses, e.g. soft-capped logits)."""
    try:
        return read_edges(graph, position, metric_direction(lm, cap, position, choice.a, choice.b))
    except XrayError as exc:
        st.caption(f"The edges are not read through {choice.metric} for this model: {exc}")
        return None


def _download(label: str, rows: list[dict], kind: str, prompt: str, key: str) -> None:
    """A CSV download of a table's rows; the click does not rerun the page (on_click="ignore")."""
    st.download_button(label, rows_csv(rows), file_name=file_name(prompt, kind, "csv"), mime="text/csv", key=key,
                       on_click="ignore")


def _tables(graph: FlowGraph, paths: FlowPaths, reading: EdgeReading | None, metric: str, prompt: str) -> None:
    """The heaviest kept edges (with their reading where they feed the prediction directly) and, with a
    reading, the edges into the prediction that write the most of the metric, kept or not."""
    pos = paths.position
    st.caption("The heaviest attention edges kept" + ("" if reading is None else
               f"; those into the prediction also give their direct effect on {metric} and the head carrying most of it"))
    st.dataframe(draw.edge_rows(paths, reading=reading, metric=metric), hide_index=True)
    _download("Download every kept attention edge (CSV)", draw.edge_rows(paths, None, reading, metric),
              f"flow_edges_pos{pos}", prompt, "flow_edges_csv")
    if reading is not None:
        st.caption(f"The edges into the prediction with the largest direct effect on {metric}, drawn in the graph or "
                   "not (a small weight can carry a large effect: see “Which head writes” above)")
        rows = draw.reading_rows(reading, paths, graph.weights_into(pos), metric)
        st.dataframe(rows, hide_index=True)
        _download("Download these edges (CSV)", rows, f"flow_effects_pos{pos}", prompt, "flow_effects_csv")


def _paths(graph, position: int, threshold: float):
    """The pruned graph. The first walk through a state weighs its edges (the work grows with the
    length squared): a bar shows when that takes a while, e.g. at a low threshold on a long prompt."""
    heard, slot = _late_bar("Weighing the edges on the routes: {done:.0%} of the blocks")
    paths = flow_paths(graph, position, threshold, heard)
    slot.empty()
    return paths


def _cost_seconds(cap, n_tokens: int) -> float:
    """About how long the graph and its pruning take over the first n_tokens: this machine's whole pass over
    them (the capture's, scaled) times a share that grows with the length (a fixed T² guess said 30 s at
    2,000 tokens, where it took 9 s)."""
    whole_pass = cap.pass_seconds * n_tokens / cap.n_tokens
    return max(1.0, whole_pass * (PASSES_FIXED + PASSES_PER_TOKEN * n_tokens))


def _flow_capture(lm, cap):
    """The capture the graph is built on. Short prompts: the whole, at once. Past LONG tokens the page
    says what the graph costs and waits for a choice (once per capture): the whole prompt, or its tokens
    up to a position, whose graph is exact and cheaper (a prediction never sees the tokens after it)."""
    if not kit.is_long(cap):
        return cap
    built = st.session_state.setdefault("_flow_built", {})
    key = kit.current_key(lm)
    if key not in built:
        _offer_window(cap, built, key)
    if key not in built:
        return None
    n = built[key]
    cols = st.columns([5, 1])
    cols[1].button("Another window", key="flow_rewindow", on_click=built.pop, args=(key, None),
                   help="Choose again how much of the prompt the graph covers.")
    if n == cap.n_tokens:
        cols[0].caption(f"The graph covers all {n:,} tokens.")
        return cap
    cols[0].caption(f"The graph covers tokens 0 to {n - 1:,} of {cap.n_tokens:,}: exact for every prediction up to "
                    "there, since no position sees the tokens after it.")
    return kit.derived("flow_prefix", kit.cache_key(key, n), lambda: lm.extend_capture(cap, cap.token_ids[:n].tolist()))


def _offer_window(cap, built: dict, key: str) -> None:
    """The cost of the whole graph, and a cheaper one up to a chosen position: a click records the choice
    (and the offer leaves the page while the graph is built)."""
    T = cap.n_tokens
    slot = st.empty()
    offer = slot.container()
    offer.info(f"This prompt has {T:,} tokens. The graph weighs every pair of positions in every block: about "
               f"{_cost_seconds(cap, T):.0f} s on this machine for the whole prompt (it grows with the square of the "
               "length). A graph of the tokens up to an earlier prediction is exact for it and much cheaper.")
    cols = offer.columns([2, 2, 2])
    end = cols[0].number_input("Up to position", min_value=1, max_value=T - 1, value=min(T - 1, LONG - 1), step=1,
                               key="flow_window_end", help="The last prediction the graph covers.")
    if cols[1].button(f"Build up to position {int(end):,} (~{_cost_seconds(cap, int(end) + 1):.0f} s)", key="flow_build_window"):
        built[key] = int(end) + 1
    if cols[2].button(f"Build the whole graph (~{_cost_seconds(cap, T):.0f} s)", key="flow_build", type="primary"):
        built[key] = T
    if key in built:
        slot.empty()


def _link() -> None:
    """The threshold in the page's link, also while a long prompt's window is being chosen (no slider drawn)."""
    threshold = st.session_state.get("flow_threshold", DEFAULT_THRESHOLD)
    if threshold != DEFAULT_THRESHOLD:
        links.page_params(threshold=f"{threshold:g}")


def _read_link() -> None:
    """A session's first visit: the threshold from the link (?threshold=0.07)."""
    if st.session_state.get("_flow_link_read"):
        return
    st.session_state["_flow_link_read"] = True
    links.read_linked({"threshold": links.Linked(
        "flow_threshold", lambda raw: round(float(raw), 2), lambda v: THRESHOLDS[0] <= v <= THRESHOLDS[1],
        f"a number from {THRESHOLDS[0]} to {THRESHOLDS[1]}")})


lm, cap = kit.page("Information flow: what fed this prediction")
_open_picked_head()
_read_link()
_link()
kit.explain("How the graph is built", EXPLANATION)
cap = _flow_capture(lm, cap) if cap is not None and lm is not None else None
if cap is not None and lm is not None:
    cols = st.columns([2, 2, 2, 1])
    position = kit.select_position(cap, "Prediction at position", where=cols[0])
    threshold = cols[1].slider("Threshold", *THRESHOLDS, DEFAULT_THRESHOLD, step=0.01, key="flow_threshold",
                               persist_state="session",
                               help="Edges with a smaller share than this are dropped (default 0.04).")

    choice = kit.contrast_token(lm, cap, position, where=st.columns([2, 1])[0],
                                label_a="Token A (read through the edges into the prediction)")
    try:
        graph = _graph(lm, cap)
    except XrayError as exc:
        st.info(str(exc))
    else:
        paths = _paths(graph, position, threshold)
        reading = _reading(lm, cap, graph, position, choice)
        cols[2].metric("The model predicts next", _prediction(lm, cap, position))
        cols[3].metric("Edges kept", f"{len(paths.edges):,}",
                       help="Above the threshold and on a route down from the prediction.")
        plotly_chart(draw.flow_figure(paths, reading=reading, metric=choice.metric), key="flow_chart",
                     on_click=_on_pick, config={**DOWNLOADS_ONLY, "scrollZoom": True})
        st.caption("Orange: attention heads (one line per pair of tokens, all heads together; hover the dot for "
                   "the heads and, on an edge into the prediction, its direct effect on "
                   f"{choice.metric}; click it to open the largest head). Purple: MLP. Grey: the residual stream. "
                   "Width: share of the edge in the state it feeds.")
        _tables(graph, paths, reading, choice.metric, cap.prompt)
