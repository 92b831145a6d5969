"""Captures for the app: one byte-bounded cache per process, shared by every session, keyed by plain
strings (model, token limit, text) so two sessions with the same prompt share one forward pass."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.generation import ids_key
from model.core.keys import cache_key, model_key
from model.core.settings import settings
from model.engine.capture_cache import CaptureCache
from model.engine.language_model import Hooks
from pages.kit import models, session


@st.cache_resource(show_spinner=False)
def capture_cache() -> CaptureCache:
    """One capture cache per process, shared by every session, bounded by bytes."""
    return CaptureCache(settings().cache_mb * 2**20)


def text_key(lm: LanguageModel, text: str, limit: int) -> str:
    """The key of a text on a model at a token limit."""
    return cache_key(model_key(lm), limit, text)


def current_key(lm: LanguageModel) -> str:
    """The key of the sidebar's prompt on the sidebar's model at the sidebar's token limit."""
    return text_key(lm, session.prompt(), session.token_limit())


def capture_text(lm: LanguageModel, text: str, also: Hooks | None = None) -> Capture:
    """Any text on the sidebar's model, through the shared cache (raises XrayError when refused).
    A text that extends a cached one (Append, typing at the end) runs only its new tokens; `also`
    rides along a whole capture's pass."""
    limit = session.token_limit()
    key = text_key(lm, text, limit)
    return capture_cache().get_or_extend(key, lm, prompt=text, max_tokens=limit, also=also)


def capture_ids(lm: LanguageModel, ids: list[int]) -> Capture:
    """Token ids (e.g. a generated text as it was at one step), through the shared cache."""
    return capture_cache().get_or_extend(ids_key(model_key(lm), ids), lm, ids=list(ids))


def last_capture(lm: LanguageModel) -> Capture | None:
    """The sidebar prompt's capture if a page already made it; never runs the model."""
    return capture_cache().get(current_key(lm))


def current_capture(also: Hooks | None = None) -> Capture | None:
    """The capture of the sidebar's prompt on the sidebar's model (cached), or None after a message.
    `also`: a page's own recording hooks, run on the capture's pass when it has to run whole."""
    lm = models.current_model()
    if lm is None:
        return None
    try:
        with st.spinner("Running the model…"):
            return capture_text(lm, session.prompt(), also)
    except XrayError as exc:
        st.warning(str(exc))
        return None
