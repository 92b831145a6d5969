"""Generate: continue the prompt step by step, keep every step, and walk back through them to see
the bars the model chose from and where one attention head looked at that moment."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from model import Capture, XrayError
from model.analyses.generation import MAX_STEPS, Decoding, Step, continuation_text, generate, ids_key, step_attention
from model.analyses.sampling import rank_of
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.plotly_chart import plotly_chart
from pages.kit.session import CHAT_NO_APPEND
from pages.kit.shared_keys import TEMPERATURE_RANGE
from viz.attention import LONG, head_heatmap, query_bars, row_bars
from viz.generation import alternatives_rows, history_figure, history_rows
from viz.labels import literal, percent
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
    requested: int  # the steps asked for: fewer are made at end-of-text or at the token limit
    steps: list[Step]


def _mode() -> bool:
    """Greedy or sampled, outside the form so the form shows only the settings that apply."""
    mode = st.radio("Choice", ["Greedy", "Sampled"], key="gen_mode", horizontal=True, persist_state="session",
                    help="Greedy always takes the most likely token; Sampled draws with a temperature.")
    return mode == "Greedy"


# A run's settings in the link (?g_mode=sampled&g_steps=20&g_t=1.5&g_k=40&g_p=0.9&g_seed=7&g_step=5): the
# session key each one sets, how it reads, and what is accepted.
LINKED = {
    "g_steps": links.Linked("gen_steps", int, lambda v: 1 <= v <= MAX_STEPS, f"a whole number from 1 to {MAX_STEPS}"),
    "g_t": links.Linked("gen_temperature", float, lambda v: TEMPERATURE_RANGE[0] <= v <= TEMPERATURE_RANGE[1],
                        f"a number from {TEMPERATURE_RANGE[0]:g} to {TEMPERATURE_RANGE[1]:g}"),
    "g_k": links.Linked("gen_top_k", int, lambda v: 0 <= v <= 100_000, "a whole number from 0"),
    "g_p": links.Linked("gen_top_p", float, lambda v: 0 <= v <= 1, "a number from 0 to 1"),
    "g_seed": links.Linked("gen_seed", int, lambda v: 0 <= v < 2**31, "a whole number from 0"),
    "g_step": links.Linked("gen_step", int, lambda v: v >= 1, "a step number from 1"),
}
FROM_LINK = "_gen_from_link"  # the link named a run: generate it on this first visit, without a press


def _read_link() -> None:
    """A session's first visit: a run's settings from the link, generated at once, so a shared link shows
    the same text (greedy, or sampled with its seed). A value that does not read is ignored, and said."""
    if st.session_state.get("_gen_link_read"):
        return
    st.session_state["_gen_link_read"] = True
    mode = st.query_params.get("g_mode")
    if mode is None:
        return
    if mode not in ("greedy", "sampled"):
        st.warning(f"Ignored the run in the link: mode '{links.quoted(mode)}' is neither greedy nor sampled.")
        return
    st.session_state.update({"gen_mode": mode.capitalize(), FROM_LINK: True})
    links.read_linked(LINKED)


def _link(run: Run, step: int) -> None:
    """The shown run's settings and step in the page's link (the shell writes it after a full run)."""
    d = run.settings
    values = {"g_mode": "greedy" if d.greedy else "sampled", "g_steps": str(run.requested), "g_step": str(step)}
    if not d.greedy:
        values.update(g_t=f"{d.temperature:g}", g_k=str(d.top_k or 0), g_p=f"{d.top_p if d.top_p is not None else 1:g}",
                      g_seed=str(d.seed))
    links.page_params(**values)


def _form(greedy: bool) -> tuple[int, Decoding] | None:
    """The generation settings, or None until the button is pressed (or a link names a run). Greedy shows
    no temperature: it does not use one. Generate keeps its own temperature, first taken from the shared one."""
    kit.set_defaults({"gen_temperature": st.session_state.get("temperature", 1.0), "gen_steps": 12, "gen_top_k": 0,
                      "gen_top_p": 1.0, "gen_seed": 0})  # first values in the state: a link may have set others
    with st.form("gen_form", border=True):
        cols = st.columns([1, 2, 1, 1, 1])
        cols[0].number_input("Steps", 1, MAX_STEPS, key="gen_steps", persist_state="session",
                             help=f"Tokens to write: 1 to {MAX_STEPS}.")
        if not greedy:
            kit.temperature_slider(key="gen_temperature", where=cols[1])
            cols[2].number_input("Top-k (0 = off)", 0, 100_000, key="gen_top_k", persist_state="session")
            cols[3].number_input("Top-p (1 = off)", 0.0, 1.0, step=0.05, key="gen_top_p", persist_state="session")
            cols[4].number_input("Seed", 0, 2**31 - 1, key="gen_seed", persist_state="session")
        pressed = st.form_submit_button("Generate", type="primary")
    if not (pressed or st.session_state.get(FROM_LINK)):
        return None
    state = st.session_state
    k, p = int(state["gen_top_k"]), float(state["gen_top_p"])
    settings = Decoding(greedy=greedy, temperature=1.0 if greedy else float(state["gen_temperature"]),
                        top_k=None if greedy or not k else k, top_p=None if greedy or p >= 1 else p,
                        seed=0 if greedy else int(state["gen_seed"]))
    return int(state["gen_steps"]), settings


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
    fig, _ = next_token_figure(step.logits, lambda ids: readable_tokens(lm.tokenizer, ids), n=12, temperature=t,
                               top_k=None if s.greedy else s.top_k, top_p=None if s.greedy else s.top_p,
                               chosen=step.token_id)
    cols = st.columns([3, 2])
    with cols[0]:
        plotly_chart(fig, key="gen_bars")
    rank = rank_of(step.logits, step.token_id)
    cols[1].caption(f"Step {step.index + 1}: chose {literal(step.token)} (the orange bar; rank {rank:,}) with "
                    f"probability {percent(step.probability)}.")
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
    kit.continuation_box(lm, run.ids, continuation_text(lm, list(run.ids), [s.token_id for s in run.steps]))
    if len(run.steps) < run.requested and len(run.ids) + len(run.steps) >= kit.token_limit():
        st.caption(f"Stopped after {len(run.steps)} of the {run.requested} steps: the text reached the token limit "
                   f"({kit.token_limit():,}, in the sidebar).")
    idx = 0
    if len(run.steps) > 1:
        kit.bind("gen_step", range(1, len(run.steps) + 1), len(run.steps))
        idx = st.slider("Step", 1, len(run.steps), key="gen_step", persist_state="session") - 1
    _link(run, idx + 1)
    plotly_chart(history_figure(run.steps, selected=idx), key="gen_history")
    with st.expander("Every step as a table"):
        st.dataframe(history_rows(run.steps), hide_index=True)
    _show_step(lm, cap, run, run.steps[idx])


lm, cap = kit.page("Generate: one token at a time")
kit.explain("What generation does", EXPLANATION)
if lm is None or cap is None:
    kit.stop()
key = kit.current_key(lm)
_read_link()
chosen = _form(_mode())
if chosen is not None:
    n_steps, settings = chosen
    if not st.session_state.pop(FROM_LINK, False):
        st.session_state.pop("gen_step", None)  # a new run opens on its last step; a link's on the step it names
    st.session_state["gen_run"] = Run(key, tuple(cap.token_ids.tolist()), settings, n_steps,
                                      _generate(lm, cap, n_steps, settings))
run = st.session_state.get("gen_run")
if run is None or run.key != key:
    st.info("Press Generate to continue the prompt in the sidebar.")
elif not run.steps:
    st.warning("Nothing was generated: the prompt already fills the token limit.")
else:
    _show(lm, cap, run)
