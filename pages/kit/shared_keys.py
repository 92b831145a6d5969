"""The selections every page shares (and the URL carries): layer, head, position and temperature.

Streamlit drops a widget's key when a page without that widget runs; plain mirrors keep the value,
and `carry()` re-binds it at the start of every full run so the next page's widget shows it."""
from __future__ import annotations

import streamlit as st

SHARED_KEYS = ("layer", "head", "position", "temperature")
SIDEBAR_KEYS = ("prompt", "token_limit", "chat_template", "model_choice", "model_custom")  # the sidebar's widgets
_KEEP = "_switch_keep"
_POSITION_PROMPT = "_position_prompt"  # the prompt the shared position points into
TEMPERATURE_RANGE = (0.0, 2.0)  # the slider's range, and what a link may ask for
TEMPERATURE_STEP = 0.05
DEFAULT_TEMPERATURE = 1.0


def _mirror(key: str) -> str:
    return f"_shared_{key}"


def carry() -> None:
    """Carry the values chosen on one page to the widgets of the next. A value re-assigned by code
    binds to whichever widget uses the key next; mirrors bring back keys Streamlit dropped."""
    state = st.session_state
    for key, value in state.pop(_KEEP, {}).items():  # sidebar values kept across switch_page
        state[key] = value
    for key in SHARED_KEYS:
        if key in state:
            state[key] = state[_mirror(key)] = state[key]
        elif _mirror(key) in state:
            state[key] = state[_mirror(key)]


def forget(key: str) -> None:
    """Drop a shared value and its mirror (e.g. the position after the prompt changed), so the next
    page picks its default instead of getting the old value back from the mirror."""
    st.session_state.pop(key, None)
    st.session_state.pop(_mirror(key), None)


def follow_prompt(prompt: str) -> None:
    """A new prompt moves the shared position to its last token: an index into the old prompt means
    another token in the new one. (A link that names a position calls this first, so it stays.)"""
    if st.session_state.get(_POSITION_PROMPT) != prompt:
        if _POSITION_PROMPT in st.session_state:
            forget("position")
        st.session_state[_POSITION_PROMPT] = prompt


def switch_page(page: str) -> None:
    """st.switch_page that keeps the sidebar's choices. A switch started by code reruns with no widget
    values (Streamlit 1.67 clears them all on the page change), so the prompt would fall back to the
    default; `carry()` puts them back at the start of the next run."""
    st.session_state[_KEEP] = {k: st.session_state[k] for k in SIDEBAR_KEYS if k in st.session_state}
    st.switch_page(page)
