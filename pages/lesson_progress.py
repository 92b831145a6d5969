"""The learner's progress through the lesson: which steps' tasks are done (kept in the session) and
how a verdict is shown. A verdict's sentence may quote the learner's own text: it is escaped."""
from __future__ import annotations

import re

import streamlit as st

from model.lesson_checks import Check

DONE = "lesson_done"  # session key: the set of step numbers whose task passed
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def plain(text: str) -> str:
    """Text shown literally inside markdown (no bold, links, LaTeX or emoji codes from user input)."""
    return _MARKDOWN.sub(r"\\\1", text)


def done() -> set[int]:
    return st.session_state.setdefault(DONE, set())


def verdict(step: int, check: Check | None) -> None:
    """Show a task's verdict and remember a pass; None means the learner has not answered yet."""
    if check is None:
        return
    if check.passed:
        done().add(step)
        st.success(plain(check.message), icon=":material/check_circle:")
    else:
        st.info(plain(check.message), icon=":material/lightbulb:")
