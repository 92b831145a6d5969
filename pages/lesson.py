"""The guided lesson: twelve steps from text to sampled tokens, each with a short text, the live figure
of the learner's own prompt, a task checked on that run, and a link to the full page. The step lives
in the URL (?step=5), so a teacher can send a class to one step with one prompt."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from model import Capture, LanguageModel
from model.lesson_checks import Check
from pages import kit, lesson_attention, lesson_input, lesson_output, lesson_progress, links
from pages.lesson_text import STEPS

DRAW: tuple[Callable[[LanguageModel, Capture], Check | None], ...] = (  # one per STEPS entry, same order
    lesson_input.tokens, lesson_input.embedding_matrix, lesson_input.directions,
    lesson_attention.scores, lesson_attention.mask, lesson_attention.pattern, lesson_attention.values,
    lesson_attention.heads,
    lesson_output.mlp, lesson_output.logits, lesson_output.temperature, lesson_output.sampling,
)
PRESETS: dict[int, Callable[[Capture], dict[str, int]]] = {  # step -> shared values set when the learner arrives
    6: lesson_attention.sink_head,
}
STEP = "lesson_step"  # session key, 1-based like the URL
_SEEN = "_lesson_seen_step"  # the step the presets were last applied for


def _read_url() -> None:
    """A session's first visit: take ?step= from the link (a bad value gets a notice, not an error)."""
    if st.session_state.get("_lesson_url_read"):
        return
    st.session_state["_lesson_url_read"] = True
    raw = st.query_params.get("step")
    if raw is None:
        return
    if raw.isdigit() and 1 <= int(raw) <= len(STEPS):
        st.session_state[STEP] = st.session_state[_SEEN] = int(raw)  # a link's own layer/head stay
    else:
        st.warning(f"Ignored step '{raw[:20]}' from the link (the lesson has steps 1-{len(STEPS)}).")


def _go(step: int) -> None:
    st.session_state[STEP] = max(1, min(len(STEPS), step))


def _label(step: int) -> str:
    mark = "✓ " if step in lesson_progress.done() else ""
    return f"{mark}{step} · {STEPS[step - 1].title}"


def _stepper() -> None:
    done = len(lesson_progress.done())
    # A count, not st.progress: a progress bar says "work running" (the settle checks read it so too)
    st.caption(f"**{done} of {len(STEPS)} tasks done** · ✓ marks a finished step")
    st.radio("Steps", list(range(1, len(STEPS) + 1)), key=STEP, format_func=_label, persist_state="session",
             label_visibility="collapsed")


def _apply_presets(step: int, cap: Capture) -> None:
    """Arriving at a step from another step sets its preset view (once; the learner may change it)."""
    seen = st.session_state.get(_SEEN)
    st.session_state[_SEEN] = step
    if seen is not None and seen != step and step in PRESETS:
        st.session_state.update(PRESETS[step](cap))


def _step(step: int, lm: LanguageModel, cap: Capture) -> None:
    info = STEPS[step - 1]
    st.subheader(f"Step {step} of {len(STEPS)} · {info.title}")
    st.markdown(info.text)
    with st.container(border=True):
        st.markdown(f"**Try this.** {info.task}")
        check = DRAW[step - 1](lm, cap)
        lesson_progress.verdict(step, check)
    cols = st.columns([1, 1, 2])
    cols[0].button("← Previous", key="lesson_prev", on_click=_go, args=(step - 1,), disabled=step == 1,
                   width="stretch")
    cols[1].button("Next →", key="lesson_next", on_click=_go, args=(step + 1,), disabled=step == len(STEPS),
                   width="stretch", type="primary")
    cols[2].page_link(info.deeper, label=f"Go deeper: {info.deeper_title}", icon=":material/open_in_new:")


st.title("Lesson: inside a transformer, step by step")
_read_url()
current = int(st.session_state.setdefault(STEP, 1))  # the stepper's value (drawn last: its ✓ marks are fresh)
links.page_params(step=str(current))
lm, cap = kit.current_model(), kit.current_capture()
left, right = st.columns([1, 3], gap="large")
if lm is not None and cap is not None:
    _apply_presets(current, cap)
    with right:
        _step(current, lm, cap)
with left:
    _stepper()
    st.caption("The prompt is the sidebar's: change it and every step follows. The step is in the link: "
               "copy it to send someone here.")
