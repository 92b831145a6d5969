"""Meaning: one word read in several contexts (how alike its vectors stay, block by block) and
directions in the embedding table (king - man + woman). Widgets and layout only; math in model/."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import embeddings as emb
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import session
from pages.kit.plotly_chart import plotly_chart
from viz import embeddings as draw
from viz import meaning, model_text

DEFAULT_CONTEXTS = "\n".join(session.MOLE_CONTEXTS)  # the clue before the word (pages/kit/session.py)
ARITHMETIC_EXAMPLES = {
    "king - man + woman": "queen",
    "Berlin - Germany + France": "Paris",
    "walked - walk + swim": "swam",
    "cats - cat + dog": "dogs",
}
WHERE = ["the word itself", "the last token of each context"]
MAX_CONTEXTS = 6  # lines compared: each is its own capture, and the curves stay legible
KEPT = {"meaning_contexts": DEFAULT_CONTEXTS, "meaning_word": "mole", "meaning_where": WHERE[0],
        "meaning_normalize": True, "meaning_expr": "king - man + woman", "meaning_expected": "queen"}


def _contexts(lm: LanguageModel, word: str, at_end: bool) -> list[tuple[str, Capture, int]]:
    """(context, capture, position) for every line where the word was found; others are named."""
    found, missing = [], []
    lines = [line.strip() for line in st.session_state["meaning_contexts"].splitlines() if line.strip()]
    if len(lines) > MAX_CONTEXTS:
        st.warning(f"Only the first {MAX_CONTEXTS} of the {len(lines)} lines are compared: remove lines to "
                   "compare others.")
    for line in lines[:MAX_CONTEXTS]:
        try:
            cap = kit.capture_text(lm, line)
        except XrayError as exc:
            st.warning("A context could not be captured (user text below, shown as typed).")
            st.text(f"{line!r}: {exc}")
            continue
        positions = emb.word_positions(lm.tokenizer, line, word)
        if not positions:
            missing.append(line)
            continue
        found.append((line, cap, cap.n_tokens - 1 if at_end else positions[0]))
    if missing:
        st.warning("The word is missing from some contexts; they are left out.")
        st.text("Missing in: " + " | ".join(repr(m) for m in missing))
    return found


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _context_view(lm: LanguageModel) -> None:
    st.subheader("1 · Context changes meaning")
    st.text_area("Contexts, one per line", key="meaning_contexts", persist_state="session", height=135)
    cols = st.columns([1, 2, 1.4])
    word = cols[0].text_input("Word to follow", key="meaning_word", persist_state="session").strip()
    where = cols[1].radio("Compare the vectors of", WHERE, key="meaning_where", persist_state="session", horizontal=True)
    normalize = cols[2].toggle("Scale every vector to length 1", key="meaning_normalize", persist_state="session")
    found = _contexts(lm, word, where == WHERE[1]) if word else []
    if len(found) < 2:
        st.info("Give at least two contexts that contain the word.")
        return
    for n, (_line, cap, pos) in enumerate(found):
        st.text(f"Context {n + 1}: token {pos} ({cap.tokens[pos]}) of {cap.n_tokens}")
        kit.token_strip(cap, highlight=pos, key=f"meaning_strip_{n}")  # one window slider per long context
    result = emb.compare_contexts([cap.residual for _, cap, _ in found], [pos for _, _, pos in found])
    names = {pair: f"sentence {pair[0] + 1} vs sentence {pair[1] + 1}" for pair in result.pairs}
    curves = {names[pair]: values for pair, values in result.pairs.items()}
    plotly_chart(meaning.similarity_figure(curves, result.baseline), key="meaning_curves")
    st.caption("Dashed line: the average cosine between the followed vector and the other tokens of the "
               "other contexts (first token left out): how alike unrelated vectors already are at that depth.")
    with st.expander("The numbers, block by block"):
        rows = [{"depth": kit.stream_name(r), **{names[p]: round(float(v[r]), 3) for p, v in result.pairs.items()},
                 "yardstick": round(float(result.baseline[r]), 3)} for r in range(len(result.baseline))]
        st.dataframe(rows, hide_index=True)
    proj, paths = emb.project_paths(result.vectors.transpose(1, 0, 2), 2, normalize)  # (L+1, C, 2)
    labels = [f"{n + 1}. {cap.tokens[pos]} in “{_short(line, 22)}”" for n, (line, cap, pos) in enumerate(found)]
    title = f"The followed vectors in one PCA basis (the embedding and all {paths.shape[0] - 1} blocks of all contexts)"
    fig = draw.trajectory_figure(paths, labels, proj.explained, title, end_labels=[str(n + 1) for n in range(len(found))])
    plotly_chart(fig, key="meaning_paths")
    st.caption("Markers grow with depth: the smallest dot is the embedding, the largest is after the last block.")


def _load_arithmetic_example() -> None:
    """Fill the fields with the chosen example, then empty the box: it loads, it does not name what the
    fields hold (they may be edited next), and choosing the same example again loads it again."""
    chosen = st.session_state.get("meaning_example")
    if chosen in ARITHMETIC_EXAMPLES:
        st.session_state["meaning_expr"] = chosen
        st.session_state["meaning_expected"] = ARITHMETIC_EXAMPLES[chosen]
    st.session_state["meaning_example"] = None


def _arithmetic(lm: LanguageModel, expr: str, expected: str) -> emb.Arithmetic:
    """The expression's nearest tokens over the whole embedding table (0.1 s of cosines): computed
    once per model and expression, not on every rerun of the page."""
    return kit.derived("arithmetic", kit.cache_key(kit.model_key(lm), expr, expected),
                       lambda: emb.vector_arithmetic(lm.tokenizer, lm.embedding_matrix, expr, expected, k=12))


def _directions_view(lm: LanguageModel) -> None:
    st.subheader("2 · Semantic directions")
    st.selectbox("Examples", list(ARITHMETIC_EXAMPLES), index=None, key="meaning_example",
                 on_change=_load_arithmetic_example, placeholder="Load an example…")
    cols = st.columns([2, 1])
    expr = cols[0].text_input("Expression (words joined by + and -)", key="meaning_expr", persist_state="session")
    expected = cols[1].text_input("Expected answer (optional)", key="meaning_expected", persist_state="session")
    try:
        arith = _arithmetic(lm, expr, expected)
    except ValueError as exc:
        st.warning("This expression cannot be computed.")
        st.text(str(exc))
        return
    _verdict(lm, arith)
    left, right = st.columns([1, 2])
    ids = [i for i, _ in arith.nearest]
    left.dataframe(draw.nearest_rows(readable_tokens(lm.tokenizer, ids), ids, [s for _, s in arith.nearest]),
                   hide_index=True)
    points, names, kinds, arrows = emb.arithmetic_points(lm.tokenizer, lm.embedding_matrix, arith, n_nearest=8)
    proj = emb.fit_pca(points, 2)
    with right:
        plotly_chart(meaning.arithmetic_figure(proj.coords, names, kinds, proj.explained, arrows, expr),
                     key="meaning_arrows")
    right.caption(f"The table ranks by direction (cosine), the plane shows positions: the result can point like a "
                  f"token yet sit away from it. The two axes keep {100 * proj.explained.sum():.0f}% of the spread "
                  "of these points.")
    st.text("How each word was placed: " + "; ".join(f"{wv.word}: {wv.note}" for _, wv in arith.terms))


def _verdict(lm: LanguageModel, arith: emb.Arithmetic) -> None:
    """Say plainly whether the expected word came out on top, and where it ranked if not."""
    best = readable_tokens(lm.tokenizer, [arith.nearest[0][0]])[0] if arith.nearest else "?"
    if arith.expected is None:
        st.text(f"Nearest token (inputs excluded): {best}")
        return
    name, total = arith.expected.word, lm.embedding_matrix.shape[0] - len(arith.excluded)
    if arith.expected_typed:
        st.text(f"Nearest: {best}. '{name}' is one of the words you typed (or a spelling of one), which the "
                f"table leaves out, so it has no rank; cosine of the result with it: {arith.expected_cosine:.3f}.")
    elif arith.expected_rank is None:
        st.text(f"Nearest: {best}. '{name}' is several tokens ({arith.expected.note}), so it has no rank; "
                f"cosine of the result with their mean: {arith.expected_cosine:.3f}.")
    elif arith.expected_rank == 1:
        st.success(f"The nearest token is the expected one (cosine {arith.expected_cosine:.3f}).")
    else:
        st.text(f"The model's table does not give '{name}' first: nearest is {best}; '{name}' ranks "
                f"{arith.expected_rank:,} of {total:,} (cosine {arith.expected_cosine:.3f}).")


lm, _ = kit.page("Meaning: context and directions", capture=False)  # its own example sentences
if lm is not None:
    kit.set_defaults(KEPT)
    _context_view(lm)
    kit.explain(
        "Vectors in context: what to notice",
        f"{model_text.embedding_start(lm.facts)} "
        "Each block then mixes in information from the **earlier** tokens, so the vectors move apart as "
        "context is added.\n\n"
        "This model reads left to right: a word's vector can only use the words **before** it, so every "
        "example puts its clue (*spy*, *garden*, *lawn*, *chemist*) before *mole*. The two animal moles "
        "(sentences 2 and 3) stay the most alike; each of them drifts away from the spy and from the chemistry "
        "unit. Put a clue after the word (*The mole dug a tunnel*) and the word cannot see it: switch to "
        "*the last token of each context* to compare vectors that have read the whole line.\n\n"
        "Cosines in the middle layers are high for almost any two tokens (the dashed yardstick), so read "
        "a curve against that line rather than against zero.",
    )
    _directions_view(lm)
    kit.explain(
        "Directions carry meaning",
        "In the embedding table, some differences between words point the same way: the step from *man* "
        "to *woman* resembles the step from *king* to *queen*. Adding and subtracting vectors follows "
        "such a step; we then list the tokens whose vectors point most nearly the same way (cosine), "
        "leaving out the words you typed.\n\n"
        "The plot keeps straight lines straight: the arrow from the first word to the result is parallel "
        "to the arrow from the subtracted word to the added one. A small model often misses: a capital "
        "may come back as another city or as the input word in another spelling (try *Paris - France + "
        "Italy*: *Italy* without its space comes first). The rank says how far off the expected answer is. "
        "Try verb tenses, plurals, countries and capitals, or your own.",
    )
