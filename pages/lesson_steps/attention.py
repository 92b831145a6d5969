"""Lesson steps 4-8, attention: scores, the causal mask, the softmax pattern, values, and every head
of every block. One head's pipeline is the same recording the "Attention step by step" page caches;
the head grid is the Attention page's. Each step returns its task's verdict (None until answered)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import embeddings as emb
from model.analyses import lesson_checks as checks
from model.analyses.head_pipeline import HeadPipeline, head_pipeline
from model.analyses.head_scores import KIND_LABELS, induction_scores
from pages import kit
from pages.kit import session
from pages.kit.plotly_chart import DOWNLOADS_ONLY, plotly_chart
from pages.lesson_steps import progress
from viz import head_grid, meaning
from viz import head_pipeline as pipeline_figures

MAX_SHOWN = 48  # positions per heatmap in the lesson; a longer prompt shows its last ones


def _height(shown: int) -> int:
    """px: a short prompt's figure fits a 1280x720 projector below its task and selectors; a long one
    grows so that its rows stay readable (9 px each)."""
    return min(560, max(360, 180 + 9 * shown))


def _head(cap: Capture) -> tuple[int, int]:
    cols = st.columns(2)
    return kit.select_layer(cap, slider=True, where=cols[0]), kit.select_head(cap, where=cols[1])


def _pipeline(lm: LanguageModel, cap: Capture, layer: int) -> HeadPipeline | None:
    """One block's queries, keys and values, cached under the step-by-step page's key."""
    try:
        with st.spinner("Recording this block's queries, keys and values…"):
            return kit.derived("pipeline", kit.cache_key(kit.current_key(lm), layer),
                               lambda: head_pipeline(lm, cap.token_ids, layer))
    except XrayError as exc:
        st.info(str(exc))
        return None


def _figure(pipe: HeadPipeline, head: int, cap: Capture, step: pipeline_figures.Step, key: str) -> None:
    window = (max(0, cap.n_tokens - MAX_SHOWN), cap.n_tokens)
    figure = pipeline_figures.step_figure(pipe, head, cap.tokens, step, window, height=_height(window[1] - window[0]))
    plotly_chart(figure, key=key)
    if window[0]:
        st.caption(f"The last {MAX_SHOWN} of {cap.n_tokens} positions are drawn.")
    if step != "scores" and (sink := pipeline_figures.sink_caption(pipe, head)):
        st.caption(sink)  # a model with learned attention sinks: its rows add up to less than 1


def _position_answer(lm: LanguageModel, cap: Capture, label: str, key: str) -> int | None:
    progress.answer_for(kit.current_key(lm), key)
    labels = {p: kit.position_label(cap, p) for p in range(cap.n_tokens)}
    return kit.picker(label, labels, key=key, default=None, placeholder="Pick a token…", persist_state="session")


def scores(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    layer, head = _head(cap)
    pipe = _pipeline(lm, cap, layer)
    if pipe is None:
        return None
    _figure(pipe, head, cap, "scores", "lesson_scores")
    picked = _position_answer(lm, cap, "Key with the highest score in the last row", "lesson_top_key")
    if picked is None:
        return None
    last = pipe.n_tokens - 1
    return checks.top_score(pipe.score_rows(head, last, last + 1)[0], pipe.masked[-1], picked)


def mask(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    layer, head = _head(cap)
    pipe = _pipeline(lm, cap, layer)
    if pipe is None:
        return None
    _figure(pipe, head, cap, "masked", "lesson_masked")
    progress.answer_for(kit.current_key(lm), "lesson_hidden_count")
    answer = st.number_input(f"Hidden scores for these {cap.n_tokens} tokens", min_value=0, value=None, step=1,
                             key="lesson_hidden_count", persist_state="session")
    return None if answer is None else checks.count(answer, int(pipe.masked.sum()), "hidden scores")


def pattern(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    layer, head = _head(cap)
    pipe = _pipeline(lm, cap, layer)
    if pipe is None:
        return None
    _figure(pipe, head, cap, "pattern", "lesson_pattern")
    return checks.previous_token_head(cap.attention.head(layer, head))


def _mole_curves(lm: LanguageModel) -> None:
    """The seed lesson's 'mole': one word in contexts whose clue comes before it, block by block."""
    found = []
    for line in session.MOLE_CONTEXTS:
        try:
            cap = kit.capture_text(lm, line)
        except XrayError:
            continue
        positions = emb.word_positions(lm.tokenizer, line, "mole")
        if positions:
            found.append((line, cap.residual, positions[0]))
    if len(found) < 2:
        return
    result = emb.compare_contexts([r for _, r, _ in found], [p for _, _, p in found])
    curves = {f"{i + 1} vs {j + 1}": v for (i, j), v in result.pairs.items()}
    plotly_chart(meaning.similarity_figure(curves, result.baseline, "“mole” in four contexts: cosine, "
                                           "block by block"), key="lesson_moles")
    st.caption("  ·  ".join(f"{n + 1}: {line}" for n, (line, _, _) in enumerate(found)))


def values(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    layer, head = _head(cap)
    pipe = _pipeline(lm, cap, layer)
    if pipe is None:
        return None
    _figure(pipe, head, cap, "value_weighted", "lesson_values")
    last = pipe.n_tokens - 1
    verdict = checks.value_matters(pipe.pattern_rows(head, last, last + 1)[0], pipe.value_weighted_rows(head, last, last + 1)[0])
    _mole_curves(lm)
    return verdict


def _on_grid_pick(points: list[dict]) -> None:
    picked = head_grid.picked_head(points, st.session_state.get("_n_heads", 1))
    if picked is not None:
        st.session_state["layer"], st.session_state["head"] = picked


def heads(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    with st.spinner("Measuring induction heads on a repeated random sequence (once per model)…"):
        induction = kit.derived("induction", kit.model_key(lm), lambda: induction_scores(lm))
    stats = kit.head_stats(lm, cap)
    scores_by_kind = {k.removeprefix("score_"): v for k, v in stats.items() if k.startswith("score_")}
    scores_by_kind["induction"] = induction
    st.session_state["_n_heads"] = cap.summary.n_heads
    layer, head = _head(cap)
    source = cap.attention
    image = kit.derived("head_grid_png", kit.current_key(lm), lambda: head_grid.thumbnail_uri(source))
    fig = head_grid.grid_figure(source, scores_by_kind, (layer, head), cap.summary.group_size, 0.5,
                                labels=KIND_LABELS, image_uri=image)
    plotly_chart(fig, key="lesson_head_grid", on_click=_on_grid_pick, config=DOWNLOADS_ONLY)
    st.caption("Blocks left to right, heads top to bottom: each thumbnail is one head's pattern on your prompt. "
               "Click a head to choose it.")
    return checks.induction_head(float(induction[layer, head]))


def sink_head(lm: LanguageModel, cap: Capture) -> dict[str, int]:
    """Preset for the softmax step: the head that parks the most weight on the first token (a clear
    pattern that is not the previous-token habit the task asks for)."""
    share = kit.head_stats(lm, cap)["to_first"]  # (L, H)
    layer, head = np.unravel_index(int(np.argmax(share)), share.shape)
    return {"layer": int(layer), "head": int(head)}
