"""Lesson steps 1-3, the input side: tokens, the embedding matrix (and every other weight), and
directions in the embedding space. Each draws its live figure and returns its task's verdict
(None until the learner answers). Widgets and layout only; numbers come from model/, figures from viz/."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel
from model.analyses import embeddings as emb
from model.analyses import lesson_checks as checks
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import weights_panel
from pages.kit.plotly_chart import plotly_chart
from viz import meaning
from viz.labels import short

EXAMPLE_ANALOGY = ("king - man + woman", "queen")
SHOWN_PIECES = 40  # a pasted paragraph's tokens are not all listed
KEPT = {"lesson_word": "", "lesson_expr": EXAMPLE_ANALOGY[0], "lesson_expected": EXAMPLE_ANALOGY[1]}


def tokens(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    kit.token_strip(cap)
    st.caption(f"{cap.n_tokens} tokens; their ids: {', '.join(str(i) for i in cap.token_ids[:40])}"
               + (" …" if cap.n_tokens > 40 else ""))
    kit.set_defaults(KEPT)
    word = st.text_input("A word to cut", key="lesson_word", persist_state="session").strip()
    if not word:
        return None
    ids = emb.word_ids(lm.tokenizer, word)
    pieces = readable_tokens(lm.tokenizer, ids[:SHOWN_PIECES]) + (["…"] if len(ids) > SHOWN_PIECES else [])
    st.text(f"{short(word, 60)!r} → {len(ids)} token(s): " + " | ".join(pieces))
    return checks.split_word(word, len(ids))


def embedding_matrix(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    tally = weights_panel.show(lm, "lesson_weights")
    table = next(k for k in tally.kinds if k.kind == "embedding")
    rows, cols = table.shapes[0][:2]
    st.caption(f"The embedding matrix is {rows:,} rows (one per token) × {cols} numbers. The prompt's first "
               f"token, {cap.tokens[0]}, reads row {int(cap.token_ids[0])}.")
    answer = st.number_input("Numbers in the embedding matrix", min_value=0, value=None, step=1,
                             key="lesson_embedding_count", persist_state="session")
    return None if answer is None else checks.count(answer, table.params, "numbers in the embedding matrix")


def directions(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    kit.set_defaults(KEPT)
    cols = st.columns([2, 1])
    expr = cols[0].text_input("Expression (words joined by + and -)", key="lesson_expr", persist_state="session")
    expected = cols[1].text_input("Expected answer", key="lesson_expected", persist_state="session")
    try:
        arith = emb.vector_arithmetic(lm.tokenizer, lm.embedding_matrix, expr, expected, k=8)
    except ValueError as exc:
        st.warning("This expression cannot be computed.")
        st.text(str(exc))
        return None
    points, names, kinds, arrows = emb.arithmetic_points(lm.tokenizer, lm.embedding_matrix, arith, n_nearest=6)
    proj = emb.fit_pca(points, 2)
    plotly_chart(meaning.arithmetic_figure(proj.coords, names, kinds, proj.explained, arrows, expr),
                 key="lesson_arrows")
    nearest = readable_tokens(lm.tokenizer, [i for i, _ in arith.nearest])
    st.text("Nearest tokens: " + ", ".join(f"{t} ({s:.2f})" for t, (_, s) in zip(nearest, arith.nearest)))
    if not expected.strip():
        return None
    return checks.analogy(expr, arith.expected_rank, EXAMPLE_ANALOGY[0])
