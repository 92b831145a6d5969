"""The guided lesson: thirteen steps from text to sampled tokens and steering, each with a short text, the live figure
of the learner's own prompt, a task checked on that run, and a link to the full page. The step and the
finished steps live in the URL (?step=5&done=1,2), so a reload keeps the place and a teacher can send a
class to one step with one prompt. No task passes on arrival: the learner's own answer or action counts."""
from __future__ import annotations

from collections.abc import Callable, Hashable

import streamlit as st

from model import Capture, LanguageModel
from model.analyses.lesson_checks import Check
from pages import kit
from pages.kit import links
from pages.lesson_steps import attention as lesson_attention
from pages.lesson_steps import input_side as lesson_input
from pages.lesson_steps import output_side as lesson_output
from pages.lesson_steps import progress as lesson_progress
from pages.lesson_steps import steering as lesson_steering
from pages.lesson_steps.text import STEPS

DRAW: tuple[Callable[[LanguageModel, Capture], Check | None], ...] = (  # one per STEPS entry, same order
    lesson_input.tokens, lesson_input.embedding_matrix, lesson_input.directions,
    lesson_attention.scores, lesson_attention.mask, lesson_attention.pattern, lesson_attention.values,
    lesson_attention.heads,
    lesson_output.mlp, lesson_output.logits, lesson_output.temperature, lesson_output.sampling,
    lesson_steering.steering,
)
PRESETS: dict[int, Callable[[LanguageModel, Capture], dict[str, int]]] = {  # step -> shared values set when the learner arrives
    6: lesson_attention.sink_head,
}
HEAD_STEPS = range(4, 9)  # steps drawn on the shared block and head: each keeps the learner's own
ACTIONS: dict[int, tuple[Callable[[], Hashable], str]] = {  # steps answered by changing a shared value
    6: (lambda: _view(), "Choose a block and a head: the check runs on the head you pick."),
    7: (lambda: _view(), "Choose a block and a head: the check runs on the head you pick."),
    8: (lambda: _view(), "Choose a head (a click on the grid does it): the check runs on the head you pick."),
    10: (lambda: kit.prompt(), "Edit the prompt in the sidebar: the check runs on the prompt you write."),
    11: (lambda: st.session_state.get("temperature"), "Move the slider: the check runs at the temperature you set."),
    13: (lambda: (st.session_state.get("lesson_topic"), st.session_state.get("lesson_steer_coef")),
         "Move the coefficient: the check runs on the push you set."),
}
STEP = "lesson_step"  # session key, 1-based like the URL
_SEEN = "_lesson_seen_step"  # the step the learner was on in the last run
_VIEWS = "_lesson_views"  # step -> the (block, head) the learner left it on


def _view() -> tuple[int | None, int | None]:
    return st.session_state.get("layer"), st.session_state.get("head")


def _read_url() -> None:
    """A session's first visit: take ?step= and ?done= from the link (a bad value gets a notice)."""
    if st.session_state.get("_lesson_url_read"):
        return
    st.session_state["_lesson_url_read"] = True
    raw = st.query_params.get("step")
    if raw is not None and raw.isdigit() and 1 <= int(raw) <= len(STEPS):
        st.session_state[STEP] = st.session_state[_SEEN] = int(raw)  # a link's own layer/head stay
    elif raw is not None:
        st.warning(f"Ignored step '{links.quoted(raw)}' from the link (the lesson has steps 1-{len(STEPS)}).")
    finished = st.query_params.get("done")
    if finished is not None and (notice := lesson_progress.read_param(finished, len(STEPS))):
        st.warning(notice)


def _go(step: int) -> None:
    st.session_state[STEP] = max(1, min(len(STEPS), step))


def _stepper(where) -> None:
    """The steps as one compact picker (a projector shows the step's figure without scrolling), drawn
    last into its place at the top so that its ✓ marks include this run's verdict."""
    finished = lesson_progress.done()
    labels = {n: f"{'✓ ' * (n in finished)}{n} · {info.title}" for n, info in enumerate(STEPS, start=1)}
    kit.picker("Step", labels, key=STEP, default=1, where=where, persist_state="session",
               label_visibility="collapsed")
    # A count, not st.progress: a progress bar says "work running" (the settle checks read it so too)
    where.caption(f"**{len(finished)} of {len(STEPS)} tasks done** · ✓ marks a finished step · the step and "
                  "your progress are in the link: copy it to come back or to send it.")


def _arrive(step: int, lm: LanguageModel, cap: Capture) -> None:
    """Arriving from another step: the step we left keeps its block and head, and this step gets
    back its own (or, on a first arrival, its preset view), so Previous and Next never overwrite an answer."""
    seen = st.session_state.get(_SEEN)
    st.session_state[_SEEN] = step
    if seen is None or seen == step:
        return
    views: dict[int, tuple[int | None, int | None]] = st.session_state.setdefault(_VIEWS, {})
    if seen in HEAD_STEPS:
        views[seen] = _view()
    if step in views:
        st.session_state["layer"], st.session_state["head"] = views[step]
    elif step in PRESETS:
        st.session_state.update(PRESETS[step](lm, cap))


def _step(step: int, lm: LanguageModel, cap: Capture) -> None:
    """The step's text on the left; its task, live figure and answer on the right, side by side."""
    info = STEPS[step - 1]
    text, work = st.columns([2, 3], gap="medium")
    with text:
        st.subheader(f"Step {step} of {len(STEPS)} · {info.title}")
        st.markdown(info.text)
        st.page_link(info.deeper, label=f"Go deeper: {info.deeper_title}", icon=":material/open_in_new:")
    with work, st.container(border=True):
        st.markdown(f"**Try this.** {info.task}")
        check = DRAW[step - 1](lm, cap)
        state, hint = ACTIONS.get(step, (lambda: None, ""))
        did_act = lesson_progress.acted(step, state())  # every run: the first one records the arrival
        if check is not None and check.passed and not did_act:
            st.caption(("You finished this task earlier. " if step in lesson_progress.done() else "") + hint)
            check = None  # what a link or a preset shows is not the learner's answer
        lesson_progress.verdict(step, check)
        cols = st.columns(2)
        cols[0].button("← Previous", key="lesson_prev", on_click=_go, args=(step - 1,), disabled=step == 1,
                       width="stretch")
        cols[1].button("Next →", key="lesson_next", on_click=_go, args=(step + 1,), disabled=step == len(STEPS),
                       width="stretch", type="primary")


def _link(step: int) -> None:
    """The step and the finished steps ride in the link, so a reload keeps the learner's place."""
    links.page_params(step=str(step), **({"done": lesson_progress.as_param()} if lesson_progress.done() else {}))


heading, top = st.columns([3, 2], vertical_alignment="bottom")  # top: the stepper, filled last
lm, cap = kit.page("Lesson: inside a transformer", where=heading)
_read_url()
current = int(kit.bind(STEP, range(1, len(STEPS) + 1), 1))  # type: ignore[arg-type]
_link(current)
if lm is not None and cap is not None:
    _arrive(current, lm, cap)
    _step(current, lm, cap)
_stepper(top)
st.caption("The prompt is the sidebar's: change it and every step follows.")
_link(current)
