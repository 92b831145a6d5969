"""Logit lens: what the model would predict if it stopped after each block. Widgets and layout
only; the lens itself is computed in model/analyses/logit_lens.py and cached by the kit per prompt."""
from __future__ import annotations

import numpy as np
import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.logit_lens import LogitLens, lens_logits, logit_lens
from model.analyses.patchscope import DEFAULT_IDENTITY, Patchscope, from_capture, identity_prompt, patchscope
from model.core.description import ModelFacts
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit.plotly_chart import plotly_chart
from viz import logit_lens as draw
from viz import model_text
from viz import patchscope as draw_scope

MAX_COLUMNS = 64  # positions per lens: each costs (blocks+1) x vocabulary logits to compute
SCOPE_TOKENS = 3  # greedy tokens each patchscope reading continues with (shown on hover and in the table)


def _lens(lm: LanguageModel, cap: Capture, start: int, end: int) -> LogitLens:
    """One lens per (model, prompt, limit, window): small arrays, but seconds of unembedding to compute."""
    return kit.derived("lens", kit.cache_key(kit.current_key(lm), start, end),
                       lambda: logit_lens(lm, cap, positions=np.arange(start, end)))


def _window(cap: Capture) -> tuple[int, int]:
    """All positions, or a window of MAX_COLUMNS for long prompts, which starts on the one ending at the
    shared position (chosen on another page: opening the lens must not move it to the window's end)."""
    T = cap.n_tokens
    if T <= MAX_COLUMNS:
        return 0, T
    shared = kit.position_of(cap)
    return kit.long.window(T, MAX_COLUMNS, "lens_window", "First position shown", shared - MAX_COLUMNS + 1,
                           help=f"{T} tokens: the lens reads {MAX_COLUMNS} positions at a time (each position "
                           f"costs {cap.summary.n_layers + 1} full vocabulary scorings).")


def _texts(lm: LanguageModel, ids: np.ndarray) -> np.ndarray:
    """Readable token strings shaped like ids, decoding each distinct id once."""
    unique, inverse = np.unique(ids, return_inverse=True)
    names = np.array(readable_tokens(lm.tokenizer, [int(i) for i in unique]), dtype=object)
    return names[inverse].reshape(ids.shape)


def _contrast(lm: LanguageModel, cap: Capture, pos: int) -> None:
    """Token A (and a rival B) read at every depth: where does the model start to prefer A over B?"""
    st.subheader("3 · Why A and not B, at every depth")
    choice = kit.contrast_token(lm, cap, pos)
    tokens = [choice.a] + ([choice.b] if choice.b is not None else [])
    logits = lens_logits(lm, cap, pos, tokens)  # (L+1, 1 or 2)
    values = logits[:, 0] - (logits[:, 1] if choice.b is not None else 0.0)
    plotly_chart(draw.metric_figure(values, choice.metric, pos), key="lens_contrast")
    if choice.b is not None:
        st.caption("Above zero the stream read at that depth already prefers A to B; the last point is the "
                   "model's own difference.")


def _follow(lm: LanguageModel, cap: Capture, lens: LogitLens, targets: np.ndarray) -> int:
    st.subheader("2 · One position through the blocks")
    pos = kit.select_position(cap, "Position to follow", [int(p) for p in lens.positions])
    col = lens.column(pos)
    plotly_chart(draw.tracked_figure(lens, pos, targets[col]), key="lens_tracked")
    first = lens.first_top_layer(pos)
    names = draw.row_names(lens.top_ids.shape[0])
    st.caption(("The model's final choice is top-1 from " + names[first] + " on.") if first is not None
               else "The final choice is never top-1 before the end (it can win only at the last row).")
    rows = [{"read at": names[r], "probability": float(lens.target_probs[r, col]),
             "rank": int(lens.target_ranks[r, col]) + 1} for r in range(len(names))]
    st.dataframe(rows, hide_index=True, column_config={
        "probability": st.column_config.ProgressColumn(format=kit.PROBABILITY, min_value=0.0, max_value=1.0)})
    _contrast(lm, cap, pos)
    return pos


def _reading(lm: LanguageModel, cap: Capture, pos: int, text: str) -> Patchscope:
    """Every stream at one position read through the identity prompt: one batched pass, cached per
    (model, prompt, limit, position, identity prompt)."""
    identity = identity_prompt(lm, text)  # a PromptError before anything is cached
    cells = [(row, pos) for row in range(cap.summary.n_layers + 1)]
    return kit.derived("patchscope", kit.cache_key(kit.current_key(lm), pos, text),
                       lambda: patchscope(lm, from_capture(cap.residual, cells), cells, identity, n_new=SCOPE_TOKENS))


def _patchscope(lm: LanguageModel, cap: Capture, lens: LogitLens, pos: int) -> None:
    """The same streams read a second way: written into an identity prompt, decoded by the model itself."""
    st.subheader("4 · A second reading: patchscope")
    st.markdown(
        "The lens reads a stream with the *unembedding*: the one reading the model learned for its last block. "
        "**Patchscope** (Ghandeharioun et al., 2024) lets the *model* read it: the stream at this position, after "
        "block l, is written over the `?` of an identity prompt such as `cat -> cat; hello -> hello; ? ->` at the "
        "same depth, and the identity prompt runs on from there. Having seen examples of words repeated, the model "
        "says what that vector stands for. Middle streams the lens reads as noise often come out as words here. The "
        "last row (after the final block) reaches no later token, so unless `?` is the identity prompt's last token "
        "it shows the identity prompt's own guess.")
    if not st.toggle("Read this position with patchscope too", key="lens_patchscope", persist_state="session",
                     help=f"One batched pass of {cap.summary.n_layers + 1} rows (one per stream) through the identity prompt."):
        return
    kit.set_defaults({"lens_identity": DEFAULT_IDENTITY})
    text = st.text_input("Identity prompt (its last `?` is where the stream is written)", key="lens_identity",
                         persist_state="session")
    try:
        with st.spinner("Reading every stream at this position through the identity prompt…"):
            reading = _reading(lm, cap, pos, text)
    except XrayError as exc:
        st.warning(str(exc))
        return
    col = lens.column(pos)
    lens_texts = list(_texts(lm, lens.top_ids[:, col]))
    plotly_chart(draw_scope.reading_figure(reading, lens_texts, lens.top_probs[:, col], pos, cap.tokens[pos]),
                 key="lens_patchscope_map")
    _reading_table(lm, reading, lens_texts)


def _reading_table(lm: LanguageModel, reading: Patchscope, lens_texts: list[str]) -> None:
    """Patchscope's top token and continuation per stream, under the identity prompt's own guess."""
    names = draw.row_names(len(reading.cells))
    plain = readable_tokens(lm.tokenizer, [int(reading.plain_ids[0])])[0]
    rows = [{"read at": "nothing written", "logit lens": "", "patchscope": plain,
             "probability": float(reading.plain_probs[0]), "continues": ""}]
    rows += [{"read at": names[r], "logit lens": lens_texts[r], "patchscope": reading.top_texts[r][0],
              "probability": float(reading.top_probs[r, 0]), "continues": reading.continuations[r]}
             for r in range(len(names))]
    st.dataframe(rows, hide_index=True, column_config={
        "probability": st.column_config.ProgressColumn(format=kit.PROBABILITY, min_value=0.0, max_value=1.0)})
    st.caption("The first row is the identity prompt's own guess with nothing written into it: a stream whose reading "
               "is the same guess gave it nothing it could use. \"continues\" is the greedy text after the patched run.")


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; the readout and tied embeddings are this model's."""
    return (
        "At the very end, the model turns its last vector into scores for every word in its vocabulary: "
        f"{model_text.final_step(facts)} "
        "The logit lens applies that same last step *early*: to the embedding, to the vector after "
        "block 0, after block 1, and so on. Each row of the map is therefore the model's guess if it had stopped there.\n\n"
        f"- The top row reads the embedding alone; {model_text.echo_note(facts)}\n"
        "- The bottom row is exactly the model's real output (we check this in the tests).\n"
        "- Early rows often guess something generic (a comma, a space, a full stop, *the*): the vector has "
        "barely been changed by the context yet, and the unembedding reads it as the tokens most frequent in "
        "all text. The right answer tends to surface in the last third of the blocks.\n"
        "- The lens is an approximation: middle blocks were never trained to be read this way, so a low "
        "probability there does not mean the information is absent, only that it is not yet in the "
        "form the unembedding reads.\n"
        "- Patchscope (section 4) is a second reading of the same streams: instead of the unembedding, the model itself "
        "decodes each one, written into an identity prompt (`cat -> cat; ...; ? ->`) in place of `?`. It needs no "
        "training, and it often finds words in middle blocks where the lens sees only noise."
    )


lm, cap = kit.page("Logit lens: the guess after every block")
if cap is not None and lm is not None:
    strip = st.container()  # drawn once the window is known: it highlights the position followed below
    start, end = _window(cap)
    kit.token_strip(cap, highlight=kit.position_of(cap, range(start, end)), where=strip,
                    window=(start, end) if kit.is_long(cap) else None)  # the strip follows the lens' window
    try:
        with st.spinner(f"Reading the embedding and {cap.summary.n_layers} blocks × {end - start} positions "
                        "through the unembedding…"):
            lens = _lens(lm, cap, start, end)
    except XrayError as exc:
        st.info(str(exc))
    else:
        targets = _texts(lm, lens.target_ids)
        st.subheader("1 · Top guess after every block, at every position")
        plotly_chart(draw.lens_heatmap(lens, cap.tokens, _texts(lm, lens.top_ids), list(targets)), key="lens_map")
        st.caption("Each cell shows the start of its top guess, cut to fit the cell (… marks a cut; cells too "
                   "narrow for two characters show none); hover over a cell for the whole token. Early rows guess "
                   "commas, spaces and full stops: there the vector is still mostly the token's own embedding, and "
                   "read out as a prediction it favours the tokens that are most frequent in all text, whatever the "
                   "context.")
        _patchscope(lm, cap, lens, _follow(lm, cap, lens, targets))
if lm is not None:
    kit.explain("What is the logit lens?", explanation(lm.facts))
