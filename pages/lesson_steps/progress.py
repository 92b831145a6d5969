"""The learner's progress through the lesson: which steps' tasks are done, and whether the learner has
acted on a step yet. Progress lives in the session and in the link (?done=1,2,5), so a reload keeps
it; it only ever grows. A verdict's sentence may quote the learner's own text: it is escaped."""
from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

from model.analyses.lesson_checks import Check
from viz.labels import literal, short

DONE = "lesson_done"  # session key: the set of step numbers whose task passed
_ARRIVAL = "_lesson_arrival"  # step -> what the learner's action changes, as it was when they arrived
_ACTED = "_lesson_acted"  # steps where the learner has acted (a pass counts only there)
def done() -> set[int]:
    return st.session_state.setdefault(DONE, set())


def as_param() -> str:
    """The finished steps as the link carries them: '1,2,5'."""
    return ",".join(str(s) for s in sorted(done()))


def read_param(raw: str, n_steps: int) -> str | None:
    """Add the link's finished steps to the session's; a notice when the value is not a list of steps."""
    parts = [p for p in raw.split(",") if p]
    if not all(p.isdigit() and 1 <= int(p) <= n_steps for p in parts):
        return f"Ignored the finished steps '{literal(short(raw, 20))}' from the link (expected steps 1-{n_steps}, e.g. 1,2,5)."
    done().update(int(p) for p in parts)
    return None


def answer_for(prompt_key: str, key: str) -> None:
    """Clear the answer under `key` when it was given for another prompt (call before its widget is
    drawn): the question's numbers are this prompt's, so an old answer would be graded against new ones."""
    tag = f"_{key}_prompt"
    if st.session_state.get(tag) != prompt_key:
        if tag in st.session_state:
            st.session_state[key] = None
        st.session_state[tag] = prompt_key


def acted(step: int, state: Hashable | None) -> bool:
    """Has the learner acted on this step? `state` is what their action changes (the chosen head, the
    prompt, the temperature); None means the step's own answer box is the action. The state at the
    first arrival is the baseline, so a link or a preset can never arrive solved."""
    if state is None:
        return True
    seen: set[int] = st.session_state.setdefault(_ACTED, set())
    arrival: dict[int, Hashable] = st.session_state.setdefault(_ARRIVAL, {})
    if step not in arrival:
        arrival[step] = state
    elif arrival[step] != state:
        seen.add(step)
    return step in seen


def verdict(step: int, check: Check | None) -> None:
    """Show a task's verdict and remember a pass; None means the learner has not answered yet."""
    if check is None:
        return
    if check.passed:
        done().add(step)
        st.success(literal(check.message), icon=":material/check_circle:")
    else:
        st.info(literal(check.message), icon=":material/lightbulb:")
