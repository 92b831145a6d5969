"""Lesson steps 9-12, the output side: the MLP, the unembedding and logits, softmax with temperature,
and sampling. Each step returns its task's verdict (None until answered). The MLP step draws the
Attribution page's figure through `mlp_figure`, the one place to swap in a dedicated MLP view."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import lesson_checks as checks
from model.analyses.attribution import direct_logit_attribution
from model.analyses.generation import Decoding, continuation_text, generate
from model.analyses.sampling import probabilities, sample_token, top_tokens
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import session, surprisal_strip
from pages.kit.plotly_chart import plotly_chart
from pages.kit.weights_panel import weights
from pages.lesson_steps import progress
from viz import model_text
from viz.attribution import attribution_figure
from viz.generation import history_figure
from viz.labels import literal
from viz.next_token import next_token_figure

N_BARS = 10
TARGET = "Paris"
GENERATED = 8  # tokens the sampling step writes


def _top(lm: LanguageModel, cap: Capture) -> tuple[int, str]:
    top = int(top_tokens(cap.logits[-1], 1)[0])
    return top, readable_tokens(lm.tokenizer, [top])[0]


def _bars(lm: LanguageModel, cap: Capture, temperature: float, key: str, chosen: int | None = None) -> None:
    fig, _ = next_token_figure(cap.logits[-1], lambda ids: readable_tokens(lm.tokenizer, ids), N_BARS, temperature,
                               chosen=chosen)
    st.caption(f"The next token after your prompt at T = {temperature:.2f} (outlined: T = 1, the model's own).")
    plotly_chart(fig, key=key)


def mlp_figure(lm: LanguageModel, cap: Capture):
    """The MLP step's figure and the per-block MLP shares it shows: (figure, (L,) shares) or None."""
    top, name = _top(lm, cap)
    try:
        attr = direct_logit_attribution(lm, cap, cap.n_tokens - 1, top)
    except XrayError as exc:
        st.info(str(exc))
        return None
    return attribution_figure(attr, name), attr.mlp


def mlp(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    drawn = mlp_figure(lm, cap)
    if drawn is None:
        return None
    fig, shares = drawn
    st.caption(model_text.mlp_shape(lm.facts))  # this model's MLP, in words
    plotly_chart(fig, key="lesson_mlp")
    progress.answer_for(kit.current_key(lm), "lesson_mlp_block")
    picked = kit.picker("Block whose MLP pushes the top token up the most", {b: str(b) for b in range(len(shares))},
                        key="lesson_mlp_block", default=None, placeholder="Pick a block…", persist_state="session")
    return None if picked is None else checks.strongest_block(shares, int(picked))


def logits(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    row = cap.logits[-1]
    ids = top_tokens(row, 5)
    names = readable_tokens(lm.tokenizer, ids)
    st.dataframe([{"token": n, "logit": float(row[i]), "probability": float(probabilities(row)[i])}
                  for n, i in zip(names, ids)], hide_index=True)
    _bars(lm, cap, 1.0, "lesson_logits")
    tied = "reuses the embedding matrix (tied)" if weights(lm).tied else "has its own unembedding matrix (untied)"
    st.caption(f"This model {tied}: {cap.summary.vocab_size:,} logits come out at every position.")
    st.markdown("**Every position predicts its next token.** How surprised was the model by the tokens you wrote?")
    surprisal_strip.strip(lm, cap, kit.long.strip_window(cap, None))
    return checks.says(lm.tokenizer.decode([int(ids[0])]), TARGET, cap.prompt, session.DEFAULT_PROMPT)


def temperature(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    t = kit.temperature_slider()
    _bars(lm, cap, t, "lesson_temperature")
    return checks.temperature_below(cap.logits[-1], t)


def _generation(lm: LanguageModel, cap: Capture, t: float, seed: int) -> None:
    """A short sampled continuation at this temperature and seed, kept for this prompt and settings."""
    key = kit.cache_key(kit.current_key(lm), t, seed)
    if st.button(f"Write {GENERATED} tokens with this seed", key="lesson_generate"):
        try:
            with st.spinner("Writing, one token at a time…"):
                steps = generate(lm, cap.token_ids.tolist(), GENERATED, Decoding(greedy=t == 0, temperature=t, seed=seed),
                                 max_tokens=kit.token_limit(), start=cap)
        except XrayError as exc:
            st.info(str(exc))
            return
        st.session_state["lesson_generated"] = (key, steps)
    kept = st.session_state.get("lesson_generated")
    if kept and kept[0] == key and kept[1]:
        written = continuation_text(lm, cap.token_ids.tolist(), [s.token_id for s in kept[1]])
        st.text("…" + cap.prompt[-60:] + written)
        plotly_chart(history_figure(kept[1]), key="lesson_history")


def sampling(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    t = float(st.session_state.get("temperature", 1.0))
    seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=None, step=1, key="lesson_seed",
                           persist_state="session")
    p = probabilities(cap.logits[-1], t)
    drawn = None if seed is None else sample_token(p, int(seed))
    _bars(lm, cap, t, "lesson_sampling", chosen=drawn)
    note = "The orange bar is the seed's draw."
    if drawn is not None and drawn not in top_tokens(cap.logits[-1], N_BARS):
        note = (f"The seed's draw, {literal(_name(lm, drawn))} ({checks.percent(float(p[drawn]))}), is not among the top "
                f"{N_BARS}: its orange bar comes after them, with its rank.")
    st.caption(f"Temperature {t:.2f} (set in the previous step). {note}")
    if seed is None:
        return None
    _generation(lm, cap, t, int(seed))
    return checks.seed_differs(p, int(seed), lambda token: _name(lm, token))


def _name(lm: LanguageModel, token: int) -> str:
    """A token as the bars and verdicts show it."""
    return readable_tokens(lm.tokenizer, [token])[0]
