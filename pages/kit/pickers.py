"""Pickers whose value is the option itself (a token id, a step, a neuron, a head), never its label.

Streamlit sends a selectbox's or radio's value to the browser as its label and reads the browser's
answer back by label. A label that carries a number or a mark (a probability, an effect, a ✓) can
change between runs; the browser keeps the old one, and it comes back as a raw string that matches
no option (issue 26: the Lesson's crash, stale percentages on Attribution). Every picker here
re-binds its value by code before drawing, which makes Streamlit send this run's label with it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")


def bind(key: str, options: Sequence[T], default: T | None) -> T | None:
    """Re-bind a picker's value before its widget is drawn, every run (see the module's docstring);
    a value no longer offered (another prompt, another model) falls back to `default`."""
    value = st.session_state.get(key)
    if value not in options:
        value = default
    st.session_state[key] = value
    return value


def picker(label: str, labels: Mapping[T, str], *, key: str, default: T | None, where=st, radio: bool = False,
           **kwargs: Any) -> T | None:
    """A selectbox (or radio) over `labels`' keys, whose labels are computed now, from the current
    capture, and never parsed back. `default=None` starts empty (a lesson answer not given yet)."""
    options = list(labels)
    bind(key, options, default)
    draw = where.radio if radio else where.selectbox
    if default is None:  # an empty box until answered (None is never an option: it would show empty)
        kwargs["index"] = None
    return draw(label, options, key=key, format_func=labels.__getitem__, **kwargs)
