"""Start here: the prompt as tokens, the shape of the pass, the model's next-token guess and how surprised it
was by each token of the prompt."""
from __future__ import annotations

import streamlit as st

from model.analyses.sampling import probabilities, top_tokens
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import surprisal_strip, weights_panel
from pages.lesson_steps.text import STEPS
from viz import model_text

lm, cap = kit.page("Inside a transformer, one prompt at a time")
st.caption(
    "Type a prompt in the sidebar. The model reads it once; every page shows a different part of "
    "that single pass."
)
if lm is not None and cap is not None:
    cfg = cap.summary
    st.subheader(f"1 · Your prompt as {cap.n_tokens} tokens")
    window = kit.long.strip_window(cap, None)  # one slider moves both strips of a long prompt
    kit.token_strip(cap, window=window)
    st.subheader("2 · What happens to them")
    cols = st.columns(4)
    cols[0].metric("Vectors", f"{cap.n_tokens} × {cfg.d_model}", help="One vector per token (the embedding).")
    cols[1].metric("Blocks", cfg.n_layers, help=model_text.block_help(lm.facts))
    cols[2].metric("Heads per block", cfg.n_heads, help=model_text.heads_help(lm.facts))
    cols[3].metric("Vocabulary", f"{cfg.vocab_size:,}", help="Scores (logits) come out for every token.")
    st.subheader("3 · The model's guess for the next token")
    p = probabilities(cap.logits[-1], 1.0)
    tokenizer = lm.tokenizer
    rows = [{"next token": readable_tokens(tokenizer, [i])[0], "probability": float(p[i])} for i in top_tokens(p, 5)]
    st.dataframe(rows, hide_index=True, column_config={
        "probability": st.column_config.ProgressColumn(format=kit.PROBABILITY, min_value=0.0, max_value=1.0)})
    st.subheader("4 · How surprised it was by each of your tokens")
    surprisal_strip.strip(lm, cap, window)
    with st.expander(f"5 · Weights at a glance: {weights_panel.weights(lm).total:,} numbers learned"):
        weights_panel.show(lm, "overview_weights")
    st.page_link("pages/lesson.py", label=f"Take the guided lesson ({len(STEPS)} steps, with tasks) →")
    st.page_link("pages/embeddings.py", label="Next: the vectors the tokens become (Embeddings) →")
kit.explain(
    "How to read this app",
    "A language model never sees letters. It cuts text into **tokens**, turns each token into a long "
    "list of numbers (a **vector**), and then lets those vectors pass through a stack of **blocks** (layers). In "
    "each block, **attention** lets every token gather information from the tokens before it, and an "
    "**MLP** transforms each vector on its own. At the end, the last vector is compared with every "
    "token of the vocabulary to give a score (**logit**) per candidate, and a softmax turns the scores "
    "into probabilities.\n\n"
    "Pages: **Attention** (who looks at whom, in every head of every block), **Embeddings** (where "
    "the vectors sit and how they move through the blocks), **Next token** (the probabilities, with "
    "a live temperature).",
)
