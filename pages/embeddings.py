"""Embeddings: where the prompt's vectors sit at one depth, how each token moves through the blocks,
and which vocabulary tokens a vector is closest to. Widgets and layout only; math in model/."""
from __future__ import annotations

import numpy as np
import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import embeddings as emb
from model.core.description import ModelFacts
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.plotly_chart import plotly_chart
from viz import embeddings as draw
from viz import model_text

DEFAULT_WORDS = "man, woman, king, queen, Paris, France, Rome, Italy, cat, dog"
WEAK_COSINE = 0.3  # a best match below this points no more at that token than at many others
KEPT = {"emb_layer": 0, "emb_3d": False, "emb_normalize": True, "emb_skip_first": True, "emb_words": DEFAULT_WORDS}


def _label(cap: Capture, pos: int) -> str:
    return kit.position_label(cap, pos)


def _read_link(n_layers: int) -> None:
    """A session's first visit: the depth from the link (?depth=12)."""
    if st.session_state.get("_emb_link_read"):
        return
    st.session_state["_emb_link_read"] = True
    depth = st.query_params.get("depth")
    if depth is not None and depth.isdigit() and int(depth) <= n_layers:
        st.session_state["emb_layer"] = int(depth)
    elif depth is not None:
        st.warning(f"Ignored depth '{links.quoted(depth)}' from the link (expected 0 to {n_layers}).")


def _controls(cap: Capture) -> tuple[int, bool, bool, bool]:
    """Depth (residual index: 0 = embedding, l = after block l-1), 3-D, normalise, skip-first: the
    choices every view on this page shares. The depth rides in the page's link."""
    n_layers = cap.summary.n_layers
    st.session_state["emb_layer"] = min(st.session_state["emb_layer"], n_layers)  # a smaller model's last depth
    layer = st.select_slider("Depth", list(range(cap.summary.n_layers + 1)), key="emb_layer", persist_state="session",
                             format_func=kit.stream_name)
    cols = st.columns(3)
    three_d = cols[0].toggle("3-D", key="emb_3d", persist_state="session")
    normalize = cols[1].toggle("Scale every vector to length 1", key="emb_normalize", persist_state="session",
                               help="Residual norms grow a lot with depth; without this a few huge vectors "
                               "decide the whole picture.")
    skip_first = cols[2].toggle("Leave out the first token", key="emb_skip_first", persist_state="session",
                                disabled=cap.n_tokens < 3,
                                help="The first token is an attention sink with a huge norm at most depths.")
    links.page_params(depth=str(layer))
    return layer, three_d, normalize, skip_first and cap.n_tokens >= 3


def _reference_words(lm: LanguageModel, layer: int) -> list[emb.WordVector]:
    """The user's reference words at this depth, each read by the model on its own after a short
    lead-in (failures named, not hidden)."""
    text = st.text_input(f"Reference words (comma-separated; each read on its own after “{emb.REFERENCE_LEAD}”)",
                         key="emb_words", persist_state="session")
    words, failed = [], []
    with st.spinner("Placing the reference words…"):
        for word in emb.parse_words(text)[:40]:
            try:
                ids, start = emb.reference_ids(lm.tokenizer, word)
                residual = kit.capture_ids(lm, ids).residual
            except (ValueError, XrayError):
                failed.append(word)
                continue
            words.append(emb.word_at_depth(lm.tokenizer, word, residual, start, layer))
    if failed:
        st.text("No tokens for: " + ", ".join(repr(w) for w in failed))
    return words


def _layer_map(cap: Capture, lm: LanguageModel, layer: int, kept: list[int], three_d: bool, normalize: bool) -> None:
    st.subheader("1 · The prompt's vectors at one depth")
    refs = _reference_words(lm, layer)
    st.caption("Reference words (red diamonds) are placed at the same depth: at the embedding a word's vector "
               "is its row of the embedding table, the same in any context; deeper down it is the vector the "
               f"model makes for the word read alone after “{emb.REFERENCE_LEAD}”, without your prompt's context.")
    points = np.concatenate([cap.residual[layer, kept]] + [r.vector[None] for r in refs])  # (N, D)
    if len(points) < 2:
        st.info("Need at least two vectors to draw a plane: type a longer prompt.")
        return
    proj = emb.fit_pca(emb.prepare(points, normalize), 3 if three_d else 2)
    norms = np.linalg.norm(points, axis=1)  # (N,)
    labels = [cap.tokens[p] for p in kept] + [r.word for r in refs]
    hovers = [f"{cap.tokens[p]} · position {p} · norm {norms[n]:.1f}" for n, p in enumerate(kept)]
    hovers += [f"{r.word} · {r.note} · norm {norms[len(kept) + n]:.1f}" for n, r in enumerate(refs)]
    groups = ["prompt"] * len(kept) + ["reference"] * len(refs)
    title = f"{kit.stream_name(layer)} · PCA of {len(points)} vectors" + (", each scaled to length 1" if normalize else "")
    plotly_chart(draw.token_map_figure(proj.coords, labels, hovers, groups, proj.explained, title), key="emb_map")
    if len(kept) > draw.LABELLED_POINTS:
        st.caption(f"{len(kept):,} prompt tokens: too many to label without covering the map. Hover a point for its token.")
    if kept[0] == 1:
        sink, others = np.linalg.norm(cap.residual[layer, 0]), np.median(norms[: len(kept)])
        st.text(f"Left out: the first token ({cap.tokens[0]}), norm {sink:,.1f} at this depth; the median "
                   f"of the others is {others:,.1f}.")
    split = [r for r in refs if len(r.token_ids) > 1]
    if split:
        st.text("Split into several tokens (drawn at their mean): " + ", ".join(r.note for r in split))


def _default_trace(cap: Capture, kept: list[int]) -> list[int]:
    """Positions of the longest token text that repeats (e.g. both 'mole's), else the last three."""
    texts = [cap.tokens[p] for p in kept]
    repeated = sorted({t for t in texts if texts.count(t) > 1}, key=len, reverse=True)
    if repeated:
        return [p for p in kept if cap.tokens[p] == repeated[0]][:4]
    return kept[-3:]


def _trajectories(cap: Capture, kept: list[int], three_d: bool, normalize: bool) -> None:
    st.subheader("2 · Paths through the blocks")
    tokens = cap.token_ids.tolist()  # not the prompt: the chat template changes the tokens of the same text
    if st.session_state.get("emb_trace_for") != tokens or any(
            p not in kept for p in st.session_state.get("emb_trace", [])):
        st.session_state["emb_trace"] = _default_trace(cap, kept)
        st.session_state["emb_trace_for"] = tokens
    chosen = st.multiselect("Tokens to trace", kept, key="emb_trace", format_func=lambda p: _label(cap, p),
                            persist_state="session")
    if not chosen or len(kept) < 2:
        st.info("Pick one or more tokens to draw their paths.")
        return
    fit_on = cap.residual[:, kept].reshape(-1, cap.summary.d_model)  # (L+1 * P, D) every layer, every kept token
    proj, paths = emb.project_paths(cap.residual[:, chosen], 3 if three_d else 2, normalize, fit_on=fit_on)
    title = f"One PCA basis for the embedding and all {cap.summary.n_layers} blocks × {len(kept)} tokens"
    if len(fit_on) > emb.MAX_FIT_POINTS:
        title += f" (fitted on an even sample of {emb.MAX_FIT_POINTS:,})"
    fig = draw.trajectory_figure(paths, [_label(cap, p) for p in chosen], proj.explained, title)
    plotly_chart(fig, key="emb_paths")
    st.caption("Markers grow with depth: the smallest dot is the embedding, the largest is after the last block.")
    if len(chosen) >= 2:
        sims = emb.cosine(cap.residual[:, chosen[0]], cap.residual[:, chosen[1]])  # (L+1,)
        st.text(f"Cosine between {_label(cap, chosen[0])} and {_label(cap, chosen[1])}: "
                   f"{sims[0]:.2f} at the embedding, {sims[len(sims) // 2]:.2f} {kit.stream_name(len(sims) // 2)}, "
                   f"{sims[-1]:.2f} after the last block.")


def _nearest(cap: Capture, lm: LanguageModel, layer: int) -> None:
    st.subheader("3 · Nearest vocabulary tokens")
    pos = kit.select_position(cap, "Token")
    found = emb.nearest_tokens(cap.residual[layer, pos], lm.embedding_matrix, k=12)
    ids, scores = [i for i, _ in found], [s for _, s in found]
    st.text(f"Cosine between {_label(cap, pos)} ({kit.stream_name(layer)}) and every row of the embedding matrix.")
    if layer > 0:
        weak = f", below {WEAK_COSINE}: read this list as noise" if scores[0] < WEAK_COSINE else ""
        st.warning(f"Best cosine {scores[0]:.2f}{weak}. The embedding table holds the vectors tokens "
                   "start from; after a few blocks the stream points elsewhere, so in the middle blocks these "
                   "neighbours mean little. For what the model would predict at this depth, see the Logit lens.")
    st.dataframe(draw.nearest_rows(readable_tokens(lm.tokenizer, ids), ids, scores), hide_index=True)


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; what the embedding holds (a position vector or not) is this model's."""
    return (
        "Every token becomes a vector of numbers, one per dimension of the model. We cannot draw hundreds "
        "of dimensions, so **PCA** finds the two (or three) directions along which these vectors differ "
        "most and draws them there; the axis titles say how much of the spread each direction keeps. "
        "Points close together are vectors that point the same way.\n\n"
        f"{model_text.embedding_bullet(facts)} The "
        "reference words come from the same table, so related words (king, queen) tend to sit near each "
        "other. At deeper depths each reference word is read by the model on its own, so you can see where "
        "the same word sits without your prompt's context.\n"
        "- **After each block** the stream has what attention and the MLPs computed: now a token's vector depends on the "
        "words before it. Trace a word that appears twice (try the example *One word, two meanings*): "
        f"{model_text.repeated_word_start(facts)}\n"
        "- **Scaling**: vectors grow much longer with depth and the first token is far larger than the rest, "
        "so by default every vector is scaled to length 1 and the first token is left out. Switch these off "
        "to see the raw picture.\n"
        "- **Nearest tokens** compare a vector with the embedding table by cosine. At the embedding a token finds "
        "itself; deeper down, the stream drifts away from the input table (near the end it leans toward "
        "what may come next)."
    )


lm, cap = kit.page("Embeddings: where the vectors sit")
if cap is not None and lm is not None:
    kit.token_strip(cap, highlight=kit.position_of(cap))
    _read_link(cap.summary.n_layers)
    kit.set_defaults(KEPT)
    layer, three_d, normalize, skip_first = _controls(cap)
    kept = list(range(1 if skip_first else 0, cap.n_tokens))
    _layer_map(cap, lm, layer, kept, three_d, normalize)
    _trajectories(cap, kept, three_d, normalize)
    _nearest(cap, lm, layer)
if lm is not None:
    kit.explain("What am I looking at?", explanation(lm.facts))
