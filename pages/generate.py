"""Generate: continue the prompt step by step, keep every step, and walk back through them to see
the bars the model chose from and where one attention head looked at that moment."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from model import Capture, XrayError
from model.analyses.generation import MAX_STEPS, Decoding, Step, continuation_text, generate, ids_key, step_attention
from model.analyses.sampling import top_tokens
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit.plotly_chart import plotly_chart
from pages.kit.session import CHAT_NO_APPEND
from viz.attention import LONG, head_heatmap, query_bars, row_bars
from viz.generation import alternatives_rows, history_figure, history_rows
from viz.labels import percent
from viz.next_token import next_token_figure

EXPLANATION = """
**Generation is the next-token prediction in a loop.** The model predicts a distribution for the
token after the prompt; one token is picked, appended, and the longer text goes through the model
again. Nothing else happens: no plan, no look-ahead, just one choice at a time.

**Greedy** always takes the most likely token, so the same prompt always gives the same text (and it
often ends up repeating itself). **Sampled** draws from the distribution after temperature, top-k and
top-p; with the same seed the draws repeat exactly, with another seed the text can branch.

Pick a step to see the bars the model chose from (the orange bar is the token taken) and, for the
text as it was at that step, where one attention head of the last token was looking.
"""


@dataclass(frozen=True)
class Run:
    """One generation kept in the session: what it was made from and every step."""

    key: str  # the capture key of the prompt it continued
    ids: tuple[int, ...]  # the prompt's token ids
    settings: Decoding
    steps: list[Step]


def _mode() -> bool:
    """Greedy or sampled, outside the form so the form shows only the settings that apply."""
    mode = st.radio("Choice", ["Greedy", "Sampled"], key="gen_mode", horizontal=True, persist_state="session",
                    help="Greedy always takes the most likely token; Sampled draws with a temperature.")
    return mode == "Greedy"


def _form(greedy: bool) -> tuple[int, Decoding] | None:
    """The generation settings, or None until the button is pressed. Greedy shows no temperature:
    it does not use one. Generate keeps its own temperature, first taken from the shared one."""
    st.session_state.setdefault("gen_temperature", st.session_state.get("temperature", 1.0))
    t, k, p, seed = 1.0, 0, 1.0, 0
    with st.form("gen_form", border=True):
        cols = st.columns([1, 2, 1, 1, 1])
        n = cols[0].number_input("Steps", 1, MAX_STEPS, value=12, key="gen_steps", persist_state="session")
        if not greedy:
            t = kit.temperature_slider(key="gen_temperature", where=cols[1])
            k = cols[2].number_input("Top-k (0 = off)", 0, 100_000, value=0, key="gen_top_k", persist_state="session")
            p = cols[3].number_input("Top-p (1 = off)", 0.0, 1.0, value=1.0, step=0.05, key="gen_top_p",
                                     persist_state="session")
            seed = cols[4].number_input("Seed", 0, 2**31 - 1, value=0, key="gen_seed", persist_state="session")
        if not st.form_submit_button("Generate", type="primary"):
            return None
    settings = Decoding(greedy=greedy, temperature=float(t), top_k=int(k) or None,
                        top_p=float(p) if p < 1 else None, seed=int(seed))
    return int(n), settings


def _generate(lm, cap: Capture, n: int, settings: Decoding) -> list[Step]:
    """Run the loop with a progress bar that moves after every step; the prompt's capture answers the
    first step."""
    bar = st.progress(0.0, text=f"Generating {n} tokens…")
    steps = generate(lm, cap.token_ids.tolist(), n, settings, n_alternatives=8, max_tokens=kit.token_limit(),
                     on_step=lambda i, total: bar.progress(i / total, text=f"Step {i} of {total}"), start=cap)
    bar.empty()
    return steps


def _use_as_prompt(lm, run: Run, upto: int) -> None:
    """Callback: the prompt plus the generated text up to and including step `upto`."""
    new_ids = [s.token_id for s in run.steps[: upto + 1]]
    st.session_state["prompt"] = kit.prompt() + continuation_text(lm, list(run.ids), new_ids)
    kit.forget("position")


def _step_attention(lm, cap: Capture, step: Step) -> None:
    """The text as it was at this step, and one head's attention over it (captured once, cached); a
    long one's row that the step chose from, with the prompt's capture lending its queries and keys."""
    if len(step.context) > LONG and cap.attention.full is None:
        _long_step_attention(lm, cap, step)
        return
    try:
        step_cap = kit.capture_ids(lm, list(step.context))
    except XrayError as exc:
        st.warning(str(exc))
        return
    kit.token_strip(step_cap, highlight=step_cap.n_tokens - 1)
    cols = st.columns(2)
    layer = kit.select_layer(step_cap, where=cols[0])
    head = kit.select_head(step_cap, where=cols[1])
    if not kit.is_long(step_cap):
        plotly_chart(head_heatmap(step_cap, layer, head), key="gen_attention")
        return
    plotly_chart(query_bars(step_cap, layer, head, step_cap.n_tokens - 1), key="gen_attention")
    _row_caption(step_cap.n_tokens)


def _long_step_attention(lm, cap: Capture, step: Step) -> None:
    """Every head's row for the step's last token, from a pass over the generated tokens alone (a
    capture of the whole context took 10 s and 1 GB at 3,500 tokens), kept for every step opened."""
    context = list(step.context)
    rows = kit.derived("gen_step_attention", ids_key(kit.model_key(lm), context),
                       lambda: step_attention(lm, cap, context))  # (L, H, T)
    cols = st.columns(2)
    layer = kit.select_layer(cap, where=cols[0])
    head = kit.select_head(cap, where=cols[1])
    last = len(context) - 1
    plotly_chart(row_bars(rows[layer, head], readable_tokens(lm.tokenizer, context), last, layer, head),
                 key="gen_attention")
    _row_caption(len(context))


def _row_caption(n_tokens: int) -> None:
    st.caption(f"{n_tokens:,} tokens: too many to draw every token's row here. The bars are the row this step "
               "chose from: what the last token read. The Attention page draws the whole head, as an overview "
               "with a window of exact weights.")


def _show_step(lm, cap: Capture, run: Run, step: Step) -> None:
    s = run.settings
    t = 1.0 if s.greedy else s.temperature
    labels = readable_tokens(lm.tokenizer, top_tokens(step.logits, 12))
    fig, _ = next_token_figure(step.logits, labels, n=12, temperature=t, top_k=None if s.greedy else s.top_k,
                               top_p=None if s.greedy else s.top_p, chosen=step.token_id)
    cols = st.columns([3, 2])
    with cols[0]:
        plotly_chart(fig, key="gen_bars")
    cols[1].caption(f"Step {step.index + 1}: chose this token with probability {percent(step.probability)}.")
    cols[1].dataframe(alternatives_rows(step), hide_index=True)
    chat = kit.chat_on(lm)
    cols[1].button("Use the text up to here as the prompt", key="gen_use", on_click=_use_as_prompt,
                   args=(lm, run, step.index), disabled=chat, help=CHAT_NO_APPEND if chat else None)
    _step_attention(lm, cap, step)


def _made_with(run: Run) -> str:
    """The settings this run was made with: the form may show others until Generate is pressed again."""
    d = run.settings
    how = "greedy" if d.greedy else (f"sampled at T = {d.temperature:.2f}, top-k {d.top_k or 'off'}, "
                                     f"top-p {d.top_p if d.top_p is not None else 'off'}, seed {d.seed}")
    return f"{len(run.steps)} steps, {how}"


def _show(lm, cap: Capture, run: Run) -> None:
    chat = kit.chat_on(lm)  # the model saw the template's text around the prompt: show it
    what = "The conversation as the model read it, and its answer" if chat else "The prompt and its continuation"
    st.caption(f"{what} ({_made_with(run)}; changes in the form apply when you press Generate):")
    start = lm.tokenizer.decode(list(run.ids)) if chat else kit.prompt()
    text = start + continuation_text(lm, list(run.ids), [s.token_id for s in run.steps])
    st.code(text, language=None, wrap_lines=True)
    if len(run.steps) > 1:
        idx = st.slider("Step", 1, len(run.steps), value=len(run.steps), key="gen_step") - 1
    else:
        idx = 0
    plotly_chart(history_figure(run.steps, selected=idx), key="gen_history")
    with st.expander("Every step as a table"):
        st.dataframe(history_rows(run.steps), hide_index=True)
    _show_step(lm, cap, run, run.steps[idx])


lm, cap = kit.page("Generate: one token at a time")
kit.explain("What generation does", EXPLANATION)
if lm is None or cap is None:
    kit.stop()
key = kit.current_key(lm)
chosen = _form(_mode())
if chosen is not None:
    n_steps, settings = chosen
    st.session_state.pop("gen_step", None)
    st.session_state["gen_run"] = Run(key, tuple(cap.token_ids.tolist()), settings, _generate(lm, cap, n_steps, settings))
run = st.session_state.get("gen_run")
if run is None or run.key != key:
    st.info("Press Generate to continue the prompt in the sidebar.")
elif not run.steps:
    st.warning("Nothing was generated: the prompt already fills the token limit.")
else:
    _show(lm, cap, run)
